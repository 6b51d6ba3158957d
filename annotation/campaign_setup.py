"""Campaign setup services: generate comparisons by strategy, open / pause / close, choose who may annotate, gold."""

from __future__ import annotations

import itertools
import random
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.contrib.auth.models import Group, User
from django.db import transaction

from annotation.models import Campaign, Comparison, Output, Verdict
from evalplatform.exceptions import DomainError

Strategy = Campaign.PairingStrategy
Status = Campaign.Status

# Which statuses each status may move to; closed is final.
TRANSITIONS: dict[str, set[str]] = {
    Status.DRAFT: {Status.ACTIVE},
    Status.ACTIVE: {Status.PAUSED, Status.CLOSED},
    Status.PAUSED: {Status.ACTIVE, Status.CLOSED},
    Status.CLOSED: set(),
}


@dataclass
class GenerationReport:
    """What generate_comparisons did: pairs created, pairs already there, prompts it could not pair."""

    strategy: str
    created: int = 0
    existing: int = 0
    prompts: int = 0
    skipped_prompts: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        text = (
            f"{self.strategy}: {self.created} comparisons created, {self.existing} already present, "
            f"over {self.prompts} prompts"
        )
        if self.skipped_prompts:
            reasons = sorted(set(self.skipped_prompts.values()))
            text += f"; {len(self.skipped_prompts)} prompts skipped ({'; '.join(reasons)})"
        return text


@transaction.atomic
def generate_comparisons(
    *,
    campaign: Campaign,
    strategy: str | None = None,
    k: int | None = None,
    baseline_model: str | None = None,
    seed: int | None = None,
) -> GenerationReport:
    """Create the campaign's comparisons by strategy (default: the campaign's own settings); existing pairs stay.

    all_pairs: every pair of outputs of each prompt. random_k: up to k pairs per prompt, counting pairs that already
    exist, drawn with `seed`. baseline: the baseline model's output against every other output of the prompt.
    """
    strategy = strategy or campaign.pairing_strategy
    k = k if k is not None else campaign.pairs_per_prompt
    baseline_model = baseline_model or campaign.baseline_model
    _check_strategy(strategy, k, baseline_model)
    if campaign.status == Status.CLOSED:
        raise DomainError(f"campaign {campaign.slug} is closed: no comparisons can be added")
    Campaign.objects.select_for_update().get(pk=campaign.pk)  # one generation at a time per campaign
    outputs = _outputs_by_prompt(campaign)
    existing = _existing_pairs(campaign)
    report = GenerationReport(strategy=strategy, prompts=len(outputs))
    rng = random.Random(seed)
    new: list[Comparison] = []
    for prompt_id, prompt_outputs in outputs.items():
        have = existing.get(prompt_id, set())
        wanted = _wanted_pairs(strategy, prompt_outputs, have, k, baseline_model, rng)
        if isinstance(wanted, str):
            report.skipped_prompts[str(prompt_id)] = wanted
            continue
        report.existing += len(have & wanted)
        new += [
            Comparison(campaign=campaign, prompt_id=prompt_id, output_a_id=a, output_b_id=b)
            for a, b in sorted(wanted - have)
        ]
    Comparison.objects.bulk_create(new, batch_size=1000)
    report.created = len(new)
    return report


def _check_strategy(strategy: str, k: int | None, baseline_model: str | None) -> None:
    if strategy not in Strategy.values:
        raise DomainError(f"unknown pairing strategy {strategy!r}", field="strategy")
    if strategy == Strategy.RANDOM_K and (k is None or k < 1):
        raise DomainError("the random-pairs strategy needs k >= 1 pairs per prompt", field="k")
    if strategy == Strategy.BASELINE and not baseline_model:
        raise DomainError("the baseline strategy needs a baseline model", field="baseline_model")


def _outputs_by_prompt(campaign: Campaign) -> dict[int, list[tuple[int, str | None]]]:
    outputs: dict[int, list[tuple[int, str | None]]] = defaultdict(list)
    rows = Output.objects.filter(prompt__campaign=campaign).order_by("prompt_id", "id")
    for output_id, prompt_id, model_name in rows.values_list("id", "prompt_id", "model_name"):
        outputs[prompt_id].append((output_id, model_name))
    return outputs


def _existing_pairs(campaign: Campaign) -> dict[int, set[tuple[int, int]]]:
    pairs: dict[int, set[tuple[int, int]]] = defaultdict(set)
    for prompt_id, a, b in Comparison.objects.filter(campaign=campaign).values_list(
        "prompt_id", "output_a_id", "output_b_id"
    ):
        pairs[prompt_id].add((a, b))
    return pairs


def _wanted_pairs(
    strategy: str,
    outputs: list[tuple[int, str | None]],
    have: set[tuple[int, int]],
    k: int | None,
    baseline_model: str | None,
    rng: random.Random,
) -> set[tuple[int, int]] | str:
    """Return the pairs (a < b) the prompt should have, or why it cannot be paired."""
    ids = sorted(output_id for output_id, _ in outputs)
    if len(ids) < 2:
        return "fewer than two outputs"
    all_pairs = list(itertools.combinations(ids, 2))
    if strategy == Strategy.ALL_PAIRS:
        return set(all_pairs)
    if strategy == Strategy.RANDOM_K:
        assert k is not None
        missing = [pair for pair in all_pairs if pair not in have]
        drawn = rng.sample(missing, max(0, min(k - len(have), len(missing))))
        return have | set(drawn)
    baseline = next((output_id for output_id, model in outputs if model == baseline_model), None)
    if baseline is None:
        return f"no output of the baseline model {baseline_model}"
    return {(min(baseline, other), max(baseline, other)) for other in ids if other != baseline}


@transaction.atomic
def change_campaign_status(*, campaign: Campaign, status: str) -> Campaign:
    """Move the campaign to `status` if the transition is allowed; opening needs at least one comparison."""
    locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if status not in TRANSITIONS:
        raise DomainError(f"unknown status {status!r}", field="status")
    if status not in TRANSITIONS[locked.status]:
        raise DomainError(
            f"campaign {locked.slug} is {locked.get_status_display().lower()}: it cannot become {status}",
            field="status",
        )
    if status == Status.ACTIVE and not locked.comparisons.exists():
        raise DomainError(f"campaign {locked.slug} has no comparisons: generate them before opening it")
    locked.status = status
    locked.save(update_fields=["status", "updated_at"])
    campaign.status = status
    return locked


def open_campaign(*, campaign: Campaign) -> Campaign:
    """Open a draft or paused campaign to annotators."""
    return change_campaign_status(campaign=campaign, status=Status.ACTIVE)


def pause_campaign(*, campaign: Campaign) -> Campaign:
    """Stop handing out assignments until the campaign is opened again."""
    return change_campaign_status(campaign=campaign, status=Status.PAUSED)


def close_campaign(*, campaign: Campaign) -> Campaign:
    """Close the campaign for good."""
    return change_campaign_status(campaign=campaign, status=Status.CLOSED)


@transaction.atomic
def set_campaign_annotators(*, campaign: Campaign, group: Group | None, users: Iterable[User]) -> None:
    """Let the members of `group` and the listed users annotate the campaign (replacing the previous choice)."""
    campaign.annotator_group = group
    campaign.save(update_fields=["annotator_group", "updated_at"])
    campaign.annotators.set(list(users))


@transaction.atomic
def set_gold_answer(*, comparison: Comparison, verdict: str | None, winner: Output | None = None) -> Comparison:
    """Make the comparison a gold pair with a known answer (verdict None: no longer gold)."""
    if verdict is not None and verdict not in Verdict.values:
        raise DomainError(f"unknown verdict {verdict!r}", field="gold_verdict")
    if verdict == Verdict.WIN and winner is None:
        raise DomainError("a gold win needs the winning output", field="gold_winner")
    if verdict != Verdict.WIN:
        winner = None
    if winner is not None and winner.pk not in (comparison.output_a_id, comparison.output_b_id):
        raise DomainError("the gold winner must be one of the comparison's two outputs", field="gold_winner")
    comparison.gold_verdict = verdict
    comparison.gold_winner = winner
    comparison.save(update_fields=["gold_verdict", "gold_winner"])
    return comparison
