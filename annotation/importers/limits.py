"""The bounds every import is held to, from the IMPORT_LIMITS setting (docs/security.md, "Imports")."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from django.conf import settings

MB = 1024 * 1024


@dataclass(frozen=True)
class ImportLimits:
    """How big a file, a line and a record may be, and how many errors and records an import keeps."""

    # The largest file the admin accepts (the commands read any file, but line by line under the same bounds).
    max_upload_bytes: int = 100 * MB
    # The longest line of a JSON Lines or CSV file, and the largest element of a JSON array.
    max_line_bytes: int = 4 * MB
    # How deep a record's values may nest (the record's own object is level 1).
    max_depth: int = 64
    # How many line errors an import reports; the rest are counted ("... and 31,699,000 more").
    errors_kept: int = 1000
    # What a parsed file keeps in memory grows with its records (some 40 bytes per output), its prompts (some
    # 500 bytes each) and its ratings (some 2 KB each, with their prompts, outputs and comparisons): these three
    # bound it (bench/bench_imports.py measures each at its limit).
    max_records: int = 1_500_000
    max_prompts: int = 200_000
    max_ratings: int = 50_000
    # Larger uploads are checked and imported by a Celery worker, with progress on the admin page.
    inline_max_bytes: int = 5 * MB


def import_limits() -> ImportLimits:
    """Return the defaults overridden by the IMPORT_LIMITS setting (a dict with any of the fields above)."""
    overrides = getattr(settings, "IMPORT_LIMITS", {}) or {}
    known = {f.name for f in dataclasses.fields(ImportLimits)}
    unknown = set(overrides) - known
    if unknown:
        raise ValueError(f"IMPORT_LIMITS: unknown keys {sorted(unknown)} (known: {sorted(known)})")
    return ImportLimits(**overrides)
