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
from annotation.importers.limits import import_limits
from annotation.importers.reading import Progress, Record, Source, read_records
from annotation.importers.summary import ImportSummary
from annotation.importers.tags import MAX_TAGS, merge_tags, prompt_tags
from annotation.importers.writing import BATCH_SIZE, batched, check_campaign_accepts_imports, run_atomically
from annotation.models import Campaign, Comparison, Output, Prompt, Rater, Rating
from annotation.rendering import render_markdown
from annotation.style_features import style_counts
from evalplatform.exceptions import DomainError

# An output is identified within its prompt by its model name when it has one, else by its text.
OutputKey = tuple[str, str]


@dataclass
class PlannedPrompt:
    line: int
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)  # the file's tags/category (annotation/importers/tags.py)
    user_turns: list[str] | None = None  # for the built-in taggers; None: the text is the only turn


@dataclass
class PlannedOutput:
    line: int
    model_name: str | None
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> OutputKey:
        return ("model", self.model_name) if self.model_name else ("text", self.text)


@dataclass(frozen=True, slots=True)
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
    # A dry run is rolled back: it checks every constraint but does not spend time rendering markdown.
    html = _no_html if dry_run else render_markdown
    return run_atomically(lambda: _write_plan(campaign_slug, plan, owner, html), dry_run=dry_run)


def _no_html(text: str) -> str:
    return ""


def _write_plan(campaign_slug: str, plan: RatingsPlan, owner: User | None, html: Callable[[str], str]) -> ImportSummary:
    campaign, campaign_created = _campaign(campaign_slug, owner)
    errors = ErrorCollector(plan.name)
    summary = plan.summary()
    summary.campaign_created = campaign_created
    prompts, new_prompts = _store_prompts(campaign, plan, errors, html)
    errors.raise_if_any()
    outputs, new_outputs = _store_outputs(plan, prompts, errors, html)
    errors.raise_if_any()
    comparisons, new_comparisons = _store_comparisons(campaign, plan, prompts, outputs)
    raters, new_raters = _store_raters(plan, errors)
    errors.raise_if_any()
    new_ratings = _store_ratings(plan, comparisons, outputs, raters, errors)
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


# The writers below keep primary keys, not model instances, and create rows a batch at a time: a file of
# 100,000 ratings would otherwise hold several hundred thousand instances at once.


def _store_prompts(
    campaign: Campaign, plan: RatingsPlan, errors: ErrorCollector, html: Callable[[str], str]
) -> tuple[dict[str, int], int]:
    stored: dict[str, int] = {}
    for keys in batched(plan.prompts, BATCH_SIZE):
        rows = Prompt.objects.filter(campaign=campaign, external_id__in=keys).values_list("pk", "external_id", "text")
        for pk, external_id, text in rows:
            stored[external_id] = pk
            planned = plan.prompts[external_id]
            if planned.text and text and planned.text != text:
                errors.add(planned.line, "prompt", f"prompt {external_id} is already stored with a different text")
    new = [key for key in plan.prompts if key not in stored]
    for keys in batched(new, BATCH_SIZE):
        created = Prompt.objects.bulk_create(
            Prompt(
                campaign=campaign,
                external_id=key,
                text=plan.prompts[key].text,
                html=html(plan.prompts[key].text),
                metadata=plan.prompts[key].metadata,
                tags=_tags(plan.prompts[key]),
            )
            for key in keys
        )
        stored.update((p.external_id, p.pk) for p in created)
    return stored, len(new)


def _tags(prompt: PlannedPrompt) -> list[str]:
    return prompt_tags(given=prompt.tags, user_turns=prompt.user_turns or [prompt.text])


def _store_outputs(
    plan: RatingsPlan, prompts: dict[str, int], errors: ErrorCollector, html: Callable[[str], str]
) -> tuple[dict[tuple[str, OutputKey], int], int]:
    prompt_keys = {pk: key for key, pk in prompts.items()}
    stored: dict[tuple[str, OutputKey], int] = {}
    for pks in batched(prompt_keys, BATCH_SIZE):
        rows = (
            Output.objects.filter(prompt_id__in=pks).order_by("id").values_list("pk", "prompt_id", "model_name", "text")
        )
        for pk, prompt_id, model_name, text in rows:
            prompt_key = prompt_keys[prompt_id]
            keys = [(prompt_key, ("model", model_name))] if model_name else []
            keys.append((prompt_key, ("text", text)))
            for key in keys:
                if key in stored:
                    continue
                stored[key] = pk
                planned = plan.outputs.get(key)
                if planned is not None and planned.text and text and planned.text != text:
                    errors.add(
                        planned.line, "output", f"{planned.model_name} already has a different output for {key[0]}"
                    )
    new = [key for key in plan.outputs if key not in stored]
    for keys in batched(new, BATCH_SIZE):
        created = Output.objects.bulk_create(
            Output(
                prompt_id=prompts[key[0]],
                model_name=plan.outputs[key].model_name,
                text=plan.outputs[key].text,
                html=html(plan.outputs[key].text),
                metadata=plan.outputs[key].metadata,
                style_features=style_counts(plan.outputs[key].text),
            )
            for key in keys
        )
        stored.update((key, output.pk) for key, output in zip(keys, created, strict=True))
    return stored, len(new)


def _store_comparisons(
    campaign: Campaign,
    plan: RatingsPlan,
    prompts: dict[str, int],
    outputs: dict[tuple[str, OutputKey], int],
) -> tuple[dict[tuple[int, int], int], int]:
    stored: dict[tuple[int, int], int] = {}
    for pks in batched(prompts.values(), BATCH_SIZE):
        rows = Comparison.objects.filter(prompt_id__in=pks).values_list("output_a_id", "output_b_id", "pk")
        stored.update(((a, b), pk) for a, b, pk in rows)
    new: dict[tuple[int, int], int] = {}
    for rating in plan.ratings:
        pair = _pair(outputs[(rating.prompt, rating.left)], outputs[(rating.prompt, rating.right)])
        if pair not in stored and pair not in new:
            new[pair] = prompts[rating.prompt]
    for pairs in batched(new.items(), BATCH_SIZE):
        created = Comparison.objects.bulk_create(
            Comparison(campaign=campaign, prompt_id=prompt, output_a_id=pair[0], output_b_id=pair[1])
            for pair, prompt in pairs
        )
        stored.update((pair, comparison.pk) for (pair, _), comparison in zip(pairs, created, strict=True))
    return stored, len(new)


def _pair(first: int, second: int) -> tuple[int, int]:
    a, b = sorted((first, second))
    return a, b


def _store_raters(plan: RatingsPlan, errors: ErrorCollector) -> tuple[dict[str, int], int]:
    names = {r.rater: r.line for r in reversed(plan.ratings)}
    stored: dict[str, int] = {}
    for batch in batched(names, BATCH_SIZE):
        for pk, name, kind in Rater.objects.filter(name__in=batch).values_list("pk", "name", "kind"):
            stored[name] = pk
            if kind != Rater.Kind.HUMAN:
                errors.add(names[name], "rater", f"{name} is an LLM judge's rater name, not a human's")
    new = [name for name in names if name not in stored]
    for batch in batched(new, BATCH_SIZE):
        stored.update(
            (r.name, r.pk) for r in Rater.objects.bulk_create(Rater(kind=Rater.Kind.HUMAN, name=n) for n in batch)
        )
    return stored, len(new)


def _store_ratings(
    plan: RatingsPlan,
    comparisons: dict[tuple[int, int], int],
    outputs: dict[tuple[str, OutputKey], int],
    raters: dict[str, int],
    errors: ErrorCollector,
) -> int:
    already: set[tuple[int, int, int | None]] = set()
    for pks in batched(comparisons.values(), BATCH_SIZE):
        rows = Rating.objects.filter(rater_id__in=list(raters.values()), comparison_id__in=pks)
        already.update(rows.values_list("comparison_id", "rater_id", "left_output_id"))
    for planned in plan.ratings:
        left = outputs[(planned.prompt, planned.left)]
        comparison = comparisons[_pair(left, outputs[(planned.prompt, planned.right)])]
        if (comparison, raters[planned.rater], left) in already:
            errors.add(planned.line, "rater", f"duplicate row: {planned.rater} already rated this item in this order")
    errors.raise_if_any()
    now = timezone.now()
    for batch in batched(plan.ratings, BATCH_SIZE):
        Rating.objects.bulk_create(_rating(plan.name, planned, comparisons, outputs, raters, now) for planned in batch)
    return len(plan.ratings)


def _rating(
    file: str,
    planned: PlannedRating,
    comparisons: dict[tuple[int, int], int],
    outputs: dict[tuple[str, OutputKey], int],
    raters: dict[str, int],
    now: dt.datetime,
) -> Rating:
    left = outputs[(planned.prompt, planned.left)]
    return Rating(
        comparison_id=comparisons[_pair(left, outputs[(planned.prompt, planned.right)])],
        rater_id=raters[planned.rater],
        rater_kind=Rater.Kind.HUMAN,
        source=Rating.Source.IMPORT,
        verdict=planned.verdict,
        winner_id=outputs[(planned.prompt, planned.winner)] if planned.winner else None,
        left_output_id=left,
        metadata={"file": file, "line": planned.line, **planned.metadata},
        created_at=planned.created_at or now,
    )


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
    if first is not prompt:
        first.tags = merge_tags(first.tags, prompt.tags)[:MAX_TAGS]
        first.user_turns = first.user_turns or prompt.user_turns


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
    max_ratings = import_limits().max_ratings
    for record in read_records(name, source, errors, progress=progress, max_records=max_ratings, unit="ratings"):
        vote = read_vote(record, errors)
        if vote is not None:
            plan_vote(plan, errors, seen, vote)
    errors.raise_if_any()
    return plan
