"""What an import wrote (or, in a dry run, would write)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ImportSummary:
    """Counts of rows in the file and rows created; `dry_run` when everything was rolled back."""

    file: str
    records: int = 0
    prompts: int = 0
    models: int = 0
    outputs: int = 0
    comparisons: int = 0
    raters: int = 0
    ratings: int = 0
    created: dict[str, int] = field(default_factory=dict)
    campaign_created: bool = False
    dry_run: bool = False
    # Duplicate groups holding the file's prompts (annotation/prompt_hygiene.py); empty when not checked.
    duplicates: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        """Return one human line: what the file holds and what was new."""
        held = [
            f"{count} {name}"
            for name, count in (
                ("prompts", self.prompts),
                ("models", self.models),
                ("outputs", self.outputs),
                ("comparisons", self.comparisons),
                ("raters", self.raters),
                ("ratings", self.ratings),
            )
            if count or name == "prompts"
        ]
        new = ", ".join(f"{count} {name}" for name, count in self.created.items())
        verb = "would create" if self.dry_run else "created"
        line = f"{self.file}: {self.records} records: {', '.join(held)}; {verb} {new or 'nothing (all present)'}"
        from annotation.prompt_hygiene import describe_import_duplicates

        return line + describe_import_duplicates(self.duplicates)
