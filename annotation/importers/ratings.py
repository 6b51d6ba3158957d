"""Write imported ratings: prompts, outputs, comparisons, raters and ratings planned from a parsed file.

Battles and AlpacaEval files both come down to a RatingsPlan; one writer stores it with a handful of queries
(one SELECT and one batched INSERT per table).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from django.contrib.auth.models import User
from django.utils import timezone

from annotation.importers.errors import ErrorCollector
from annotation.importers.reading import Progress, Record, Source, read_records
from annotation.importers.summary import ImportSummary
from annotation.importers.writing import BATCH_SIZE, check_campaign_accepts_imports, run_atomically
from annotation.models import Campaign, Comparison, Output, Prompt, Rater, Rating
from annotation.rendering import render_markdown
from evalplatform.exceptions import DomainError

# An output is identified within its prompt by its model name when it has one, else by its text.
OutputKey = tuple[str, str]


@dataclass
class PlannedPrompt:
    line: int
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class PlannedOutput:
    line: int
    model_name: str | None
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> OutputKey:
        return ("model", self.model_name) if self.model_name else ("text", self.text)


@dataclass(frozen=True)
class PlannedRating:
    line: int
    prompt: str
    left: OutputKey
    right: OutputKey
    winner: OutputKey | None
    verdict: str
    rater: str
    created_at: dt.datetime | None
    metadata: dict[str, Any]


@dataclass
class RatingsPlan:
    """Everything one file asks to store, keyed by external ids; built by a parser, stored by write_plan."""

    name: str
    prompts: dict[str, PlannedPrompt] = field(default_factory=dict)
    outputs: dict[tuple[str, OutputKey], PlannedOutput] = field(default_factory=dict)
    ratings: list[PlannedRating] = field(default_factory=list)

    def summary(self) -> ImportSummary:
        return ImportSummary(
            file=self.name,
            records=len(self.ratings),
            prompts=len(self.prompts),
            models=len({o.model_name for o in self.outputs.values() if o.model_name}),
            outputs=len(self.outputs),
            comparisons=len({(r.prompt, frozenset((r.left, r.right))) for r in self.ratings}),
            raters=len({r.rater for r in self.ratings}),
            ratings=len(self.ratings),
        )


def import_plan(*, campaign_slug: str, plan: RatingsPlan, owner: User | None, dry_run: bool = False) -> ImportSummary:
    """Store a plan in the campaign (created, as a draft owned by `owner`, when it does not exist)."""
    return run_atomically(lambda: _write_plan(campaign_slug, plan, owner), dry_run=dry_run)


def _write_plan(campaign_slug: str, plan: RatingsPlan, owner: User | None) -> ImportSummary:
    campaign, campaign_created = _campaign(campaign_slug, owner)
    errors = ErrorCollector(plan.name)
    summary = plan.summary()
    summary.campaign_created = campaign_created
    prompts, new_prompts = _store_prompts(campaign, plan, errors)
    errors.raise_if_any()
    outputs, new_outputs = _store_outputs(plan, prompts, errors)
    errors.raise_if_any()
    comparisons, new_comparisons = _store_comparisons(campaign, plan, prompts, outputs)
    raters, new_raters = _store_raters(plan, errors)
    errors.raise_if_any()
    new_ratings = _store_ratings(plan, comparisons, outputs, raters, errors)
    errors.raise_if_any()
    summary.created = {
        "prompts": new_prompts,
        "outputs": new_outputs,
        "comparisons": new_comparisons,
        "raters": new_raters,
        "ratings": new_ratings,
    }
    return summary


def _campaign(slug: str, owner: User | None) -> tuple[Campaign, bool]:
    campaign = Campaign.objects.select_for_update().filter(slug=slug).first()
    if campaign is not None:
        check_campaign_accepts_imports(campaign)
        return campaign, False
    if owner is None:
        raise DomainError(
            f"campaign {slug} does not exist and there is no owner for it: "
            "pass --owner USERNAME or create a superuser first"
        )
    return Campaign.objects.create(name=slug, slug=slug, owner=owner), True


def _store_prompts(campaign: Campaign, plan: RatingsPlan, errors: ErrorCollector) -> tuple[dict[str, Prompt], int]:
    stored = {p.external_id: p for p in Prompt.objects.filter(campaign=campaign, external_id__in=list(plan.prompts))}
    for external_id, prompt in stored.items():
        planned = plan.prompts[external_id]
        if planned.text and prompt.text and planned.text != prompt.text:
            errors.add(planned.line, "prompt", f"prompt {external_id} is already stored with a different text")
    new = [
        Prompt(campaign=campaign, external_id=key, text=p.text, html=render_markdown(p.text), metadata=p.metadata)
        for key, p in plan.prompts.items()
        if key not in stored
    ]
    stored.update((p.external_id, p) for p in Prompt.objects.bulk_create(new, batch_size=BATCH_SIZE))
    return stored, len(new)


def _store_outputs(
    plan: RatingsPlan, prompts: dict[str, Prompt], errors: ErrorCollector
) -> tuple[dict[tuple[str, OutputKey], Output], int]:
    by_prompt_id = {p.pk: key for key, p in prompts.items()}
    stored: dict[tuple[str, OutputKey], Output] = {}
    for output in Output.objects.filter(prompt__in=list(prompts.values())).order_by("id"):
        prompt_key = by_prompt_id[output.prompt_id]
        if output.model_name:
            stored[(prompt_key, ("model", output.model_name))] = output
        stored.setdefault((prompt_key, ("text", output.text)), output)
    new = []
    for key, planned in plan.outputs.items():
        existing = stored.get(key)
        if existing is None:
            new.append(
                (
                    key,
                    Output(
                        prompt=prompts[key[0]],
                        model_name=planned.model_name,
                        text=planned.text,
                        html=render_markdown(planned.text),
                        metadata=planned.metadata,
                    ),
                )
            )
        elif planned.text and existing.text and planned.text != existing.text:
            errors.add(planned.line, "output", f"{planned.model_name} already has a different output for {key[0]}")
    Output.objects.bulk_create([output for _, output in new], batch_size=BATCH_SIZE)
    stored.update(new)
    return stored, len(new)


def _store_comparisons(
    campaign: Campaign,
    plan: RatingsPlan,
    prompts: dict[str, Prompt],
    outputs: dict[tuple[str, OutputKey], Output],
) -> tuple[dict[tuple[int, int], Comparison], int]:
    stored = {(c.output_a_id, c.output_b_id): c for c in Comparison.objects.filter(prompt__in=list(prompts.values()))}
    new: dict[tuple[int, int], Comparison] = {}
    for rating in plan.ratings:
        pair = _pair(outputs[(rating.prompt, rating.left)], outputs[(rating.prompt, rating.right)])
        if pair not in stored and pair not in new:
            new[pair] = Comparison(
                campaign=campaign, prompt=prompts[rating.prompt], output_a_id=pair[0], output_b_id=pair[1]
            )
    Comparison.objects.bulk_create(list(new.values()), batch_size=BATCH_SIZE)
    stored.update(new)
    return stored, len(new)


def _pair(first: Output, second: Output) -> tuple[int, int]:
    a, b = sorted((first.pk, second.pk))
    return a, b


def _store_raters(plan: RatingsPlan, errors: ErrorCollector) -> tuple[dict[str, Rater], int]:
    names = {r.rater: r.line for r in reversed(plan.ratings)}
    stored = {r.name: r for r in Rater.objects.filter(name__in=list(names))}
    for name, rater in stored.items():
        if rater.kind != Rater.Kind.HUMAN:
            errors.add(names[name], "rater", f"{name} is an LLM judge's rater name, not a human's")
    new = [Rater(kind=Rater.Kind.HUMAN, name=name) for name in names if name not in stored]
    stored.update((r.name, r) for r in Rater.objects.bulk_create(new, batch_size=BATCH_SIZE))
    return stored, len(new)


def _store_ratings(
    plan: RatingsPlan,
    comparisons: dict[tuple[int, int], Comparison],
    outputs: dict[tuple[str, OutputKey], Output],
    raters: dict[str, Rater],
    errors: ErrorCollector,
) -> int:
    already = set(
        Rating.objects.filter(rater__in=list(raters.values()), comparison__in=list(comparisons.values())).values_list(
            "comparison_id", "rater_id", "left_output_id"
        )
    )
    now = timezone.now()
    new = []
    for planned in plan.ratings:
        left = outputs[(planned.prompt, planned.left)]
        comparison = comparisons[_pair(left, outputs[(planned.prompt, planned.right)])]
        rater = raters[planned.rater]
        if (comparison.pk, rater.pk, left.pk) in already:
            errors.add(planned.line, "rater", f"duplicate row: {planned.rater} already rated this item in this order")
            continue
        winner = outputs[(planned.prompt, planned.winner)] if planned.winner else None
        new.append(
            Rating(
                comparison=comparison,
                rater=rater,
                rater_kind=rater.kind,
                source=Rating.Source.IMPORT,
                verdict=planned.verdict,
                winner=winner,
                left_output=left,
                metadata=planned.metadata,
                created_at=planned.created_at or now,
            )
        )
    if not errors:
        Rating.objects.bulk_create(new, batch_size=BATCH_SIZE)
    return len(new)


def add_rating(
    plan: RatingsPlan,
    errors: ErrorCollector,
    seen: dict[tuple[str, frozenset[OutputKey], str, OutputKey], int],
    rating: PlannedRating,
) -> None:
    """Add a rating to the plan unless the same rater rated the same item in the same order on an earlier line."""
    key = (rating.prompt, frozenset((rating.left, rating.right)), rating.rater, rating.left)
    if key in seen:
        errors.add(
            rating.line, "rater", f"duplicate row: {rating.rater} rated this item in this order on line {seen[key]}"
        )
        return
    seen[key] = rating.line
    plan.ratings.append(rating)


def add_output(plan: RatingsPlan, errors: ErrorCollector, prompt: str, output: PlannedOutput) -> OutputKey:
    """Add an output to the plan (once per prompt and key) and return its key."""
    first = plan.outputs.setdefault((prompt, output.key), output)
    if first is not output and output.text and first.text and first.text != output.text:
        errors.add(output.line, "output", f"{output.model_name}'s output for {prompt} differs from line {first.line}")
    return output.key


def add_prompt(plan: RatingsPlan, errors: ErrorCollector, key: str, prompt: PlannedPrompt) -> None:
    """Add a prompt to the plan once; a different text for the same id is a conflict."""
    first = plan.prompts.setdefault(key, prompt)
    if first is not prompt and prompt.text and first.text and first.text != prompt.text:
        errors.add(prompt.line, "prompt", f"conflicting text for prompt {key} (line {first.line})")
    elif first is not prompt and prompt.text and not first.text:
        first.text = prompt.text


Vote = TypeVar("Vote")


def parse_rated_pairs(
    name: str,
    source: Source,
    *,
    progress: Progress | None = None,
    read_vote: Callable[[Record, ErrorCollector], Vote | None],
    plan_vote: Callable[[RatingsPlan, ErrorCollector, dict[Any, int], Vote], None],
) -> RatingsPlan:
    """Return what a file of rated pairs asks to store, or raise ImportRefused listing its bad lines."""
    errors = ErrorCollector(name)
    plan = RatingsPlan(name=name)
    seen: dict[Any, int] = {}
    for record in read_records(name, source, errors, progress=progress):
        vote = read_vote(record, errors)
        if vote is not None:
            plan_vote(plan, errors, seen, vote)
    errors.raise_if_any()
    return plan
