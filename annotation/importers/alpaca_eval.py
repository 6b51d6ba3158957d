"""AlpacaEval / AlpacaFarm annotation files: one rating per annotated row.

Rows with the same (instruction, output_1, output_2) are one comparison rated by several annotators. Outputs
without a generator have no model name and are told apart by their text. Preference 1 means output_1 wins, 2
means output_2 wins, 1.5 or 0 mean a tie (AlpacaEval's own encoding of a draw). The rater is
`alpaca_eval:<annotator>`, or `alpaca_eval:annotator_<annotator_index>`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User

from annotation.importers.errors import ErrorCollector
from annotation.importers.fields import extras, name_field, text_field
from annotation.importers.ratings import (
    PlannedOutput,
    PlannedPrompt,
    PlannedRating,
    RatingsPlan,
    add_output,
    add_prompt,
    add_rating,
    import_plan,
    parse_rated_pairs,
)
from annotation.importers.reading import Progress, Record, Source
from annotation.importers.summary import ImportSummary
from annotation.importers.tags import TAG_FIELDS, tags_field
from annotation.models import Verdict

RATER_PREFIX = "alpaca_eval:"
KNOWN_FIELDS = {
    "instruction",
    "output_1",
    "output_2",
    "generator_1",
    "generator_2",
    "preference",
    "annotator",
    "annotator_index",
    *TAG_FIELDS,
}
TIES = {1.5, 0.0}


@dataclass(frozen=True)
class AlpacaVote:
    line: int
    instruction: str
    output_1: str
    output_2: str
    generator_1: str | None
    generator_2: str | None
    preference: float
    rater: str
    metadata: dict[str, Any]
    tags: tuple[str, ...] = ()

    @property
    def prompt_key(self) -> str:
        return "alpaca-" + hashlib.sha256(self.instruction.encode()).hexdigest()[:16]


def parse_alpaca_eval(name: str, source: Source, *, progress: Progress | None = None) -> RatingsPlan:
    """Return what an AlpacaEval annotation file asks to store, or raise ImportRefused listing bad lines."""
    return parse_rated_pairs(name, source, progress=progress, read_vote=_vote, plan_vote=_plan_vote)


def import_alpaca_eval(
    *, campaign_slug: str, plan: RatingsPlan, owner: User | None, dry_run: bool = False
) -> ImportSummary:
    """Store parsed AlpacaEval votes in the campaign, creating it (owned by `owner`) when needed."""
    return import_plan(campaign_slug=campaign_slug, plan=plan, owner=owner, dry_run=dry_run)


def _vote(record: Record, errors: ErrorCollector) -> AlpacaVote | None:
    before = errors.total
    instruction = text_field(record, "instruction", errors)
    output_1 = text_field(record, "output_1", errors)
    output_2 = text_field(record, "output_2", errors)
    generator_1 = name_field(record, "generator_1", errors, required=False)
    generator_2 = name_field(record, "generator_2", errors, required=False)
    preference = _preference(record, errors)
    rater = _rater(record, errors)
    tags = tags_field(record, errors)
    if output_1 is not None and output_1 == output_2 and generator_1 == generator_2:
        errors.add(record.line, "output_2", "the same output as output_1")
    if generator_1 is not None and generator_1 == generator_2:
        errors.add(record.line, "generator_2", "the same generator as generator_1")
    if errors.total > before or instruction is None or output_1 is None or output_2 is None:
        return None
    if preference is None or rater is None:
        return None
    return AlpacaVote(
        record.line,
        instruction,
        output_1,
        output_2,
        generator_1,
        generator_2,
        preference,
        rater,
        extras(record, KNOWN_FIELDS),
        tags,
    )


def _preference(record: Record, errors: ErrorCollector) -> float | None:
    value = record.data.get("preference")
    if value is None or value == "":
        errors.add(record.line, "preference", "missing field")
        return None
    try:
        preference = float(value)
    except (TypeError, ValueError):
        preference = -1.0
    if preference not in {1.0, 2.0, *TIES}:
        errors.add(record.line, "preference", f"expected 1, 2, or 1.5 / 0 for a tie, got {value!r}")
        return None
    return preference


def _rater(record: Record, errors: ErrorCollector) -> str | None:
    if record.data.get("annotator") not in (None, ""):
        annotator = name_field(record, "annotator", errors)
        return None if annotator is None else RATER_PREFIX + annotator
    index = name_field(record, "annotator_index", errors, required=False)
    if index is None:
        errors.add(record.line, "annotator", "missing field (annotator or annotator_index)")
        return None
    return f"{RATER_PREFIX}annotator_{index}"


def _plan_vote(plan: RatingsPlan, errors: ErrorCollector, seen: dict[Any, int], vote: AlpacaVote) -> None:
    prompt = vote.prompt_key
    add_prompt(plan, errors, prompt, PlannedPrompt(vote.line, vote.instruction, tags=list(vote.tags)))
    left = add_output(plan, errors, prompt, PlannedOutput(vote.line, vote.generator_1, vote.output_1))
    right = add_output(plan, errors, prompt, PlannedOutput(vote.line, vote.generator_2, vote.output_2))
    winner = {1.0: left, 2.0: right}.get(vote.preference)
    verdict = Verdict.TIE if vote.preference in TIES else Verdict.WIN
    metadata = vote.metadata  # the writer adds the file and line
    add_rating(
        plan, errors, seen, PlannedRating(vote.line, prompt, left, right, winner, verdict, vote.rater, None, metadata)
    )
