"""Judge configuration versions and model families: what the judge report groups and audits by.

A version is the hash of a judge's request-relevant settings (what it sends and how it reads the reply), so two
runs of one judge are comparable exactly when their versions are equal. Families map model names to a vendor's
line by the patterns of `ModelFamily`.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
from collections.abc import Iterable

from judging.models import JudgeConfig, ModelFamily

# Settings that change the request or how its reply is read; not limits, prices, endpoints or keys.
VERSIONED_FIELDS = (
    "model",
    "template",
    "system_prompt",
    "custom_template",
    "verdict_format",
    "verdict_pattern",
    "temperature",
    "max_tokens",
)


def config_version(judge: JudgeConfig) -> str:
    """Return the 12-hex-digit version of the judge's request-relevant settings."""
    settings = {field: getattr(judge, field) for field in VERSIONED_FIELDS}
    canonical = json.dumps(settings, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def family_of(model_name: str | None, families: Iterable[ModelFamily]) -> str | None:
    """Return the name of the first family (by name) with a pattern matching the model name, or None."""
    if not model_name:
        return None
    name = model_name.lower()
    for family in sorted(families, key=lambda f: f.name):
        if any(fnmatch.fnmatchcase(name, pattern.lower()) for pattern in family.pattern_list()):
            return family.name
    return None


def judge_family(judge: JudgeConfig, families: Iterable[ModelFamily]) -> str | None:
    """Return the judge's family: its own when set, else its model name's (or, failing that, the name's part before
    a colon, as the local server's `local-judge:position=0.3` or a tag like `llama3:8b`)."""
    if judge.family_id is not None:
        return judge.family.name if judge.family else None
    families = list(families)
    return family_of(judge.model, families) or family_of(judge.model.split(":", 1)[0], families)
