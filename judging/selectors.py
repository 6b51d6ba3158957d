"""Reads: run progress, position consistency and inconsistent comparisons."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db.models import Avg, Count, Max, Q, QuerySet, Sum

from judging.models import JudgeConfig, JudgeRun, JudgeVerdict

_S = JudgeVerdict.State


@dataclass(frozen=True)
class RunProgress:
    total: int
    pending: int
    claimed: int
    done: int
    parse_failed: int
    failed: int
    from_cache: int
    tokens_in: int
    tokens_out: int
    cost: Decimal
    mean_latency_ms: float | None

    @property
    def finished(self) -> int:
        """Return how many verdicts reached an end state (judged, unparseable or failed)."""
        return self.done + self.parse_failed + self.failed


def _progress_aggregates(path: str = "") -> dict[str, Any]:
    """Return the aggregates of RunProgress over verdicts reached through `path` ("" from verdicts themselves)."""
    state, cached = f"{path}state", f"{path}cached"
    return {
        "total": Count(f"{path}id"),
        "pending": Count(f"{path}id", filter=Q(**{state: _S.PENDING})),
        "claimed": Count(f"{path}id", filter=Q(**{state: _S.CLAIMED})),
        "done": Count(f"{path}id", filter=Q(**{state: _S.DONE})),
        "parse_failed": Count(f"{path}id", filter=Q(**{state: _S.PARSE_FAILED})),
        "failed": Count(f"{path}id", filter=Q(**{state: _S.FAILED})),
        "from_cache": Count(f"{path}id", filter=Q(**{cached: True})),
        "tokens_in": Sum(f"{path}tokens_in", default=0),
        "tokens_out": Sum(f"{path}tokens_out", default=0),
        "cost": Sum(f"{path}cost", default=Decimal(0)),
        "mean_latency_ms": Avg(f"{path}latency_ms", filter=Q(**{cached: False})),
    }


_FIELDS = tuple(f.name for f in fields(RunProgress))


def run_progress(run: JudgeRun) -> RunProgress:
    """Return the counts, tokens, cost and latency of a run's verdicts, in one query."""
    return RunProgress(**JudgeVerdict.objects.filter(run=run).aggregate(**_progress_aggregates()))


def with_progress(runs: QuerySet[JudgeRun]) -> QuerySet[JudgeRun]:
    """Return the runs annotated with their progress (read it with progress_of), in the same query."""
    return runs.annotate(**{f"progress_{k}": v for k, v in _progress_aggregates("verdicts__").items()})


def progress_of(run: JudgeRun) -> RunProgress:
    """Return the progress of a run annotated by with_progress, else query it."""
    if not hasattr(run, "progress_total"):
        return run_progress(run)
    return RunProgress(**{name: getattr(run, f"progress_{name}") for name in _FIELDS})


@dataclass(frozen=True)
class RunHealth:
    """Whether a running run's work is moving: claims whose lease ended (their worker died) and work due now."""

    expired_claims: int
    uncovered_expired_claims: int  # of those, the ones whose lease ended after `covered_until`
    live_claims: int
    due_pending: int
    last_lease_end: datetime | None


def run_health(run: JudgeRun, *, current: datetime, covered_until: datetime | None = None) -> RunHealth:
    """Return the run's expired and live claims and its pending verdicts due now, in one query.

    A resume re-sends the claims still live then for when their leases end: `covered_until` (the last of those
    leases) tells the claims it already took care of from those that expired since.
    """
    claimed = Q(state=_S.CLAIMED)
    expired = claimed & Q(claimed_until__lt=current)
    uncovered = expired if covered_until is None else expired & Q(claimed_until__gt=covered_until)
    row = JudgeVerdict.objects.filter(run=run).aggregate(
        expired_claims=Count("id", filter=expired),
        uncovered_expired_claims=Count("id", filter=uncovered),
        live_claims=Count("id", filter=claimed & Q(claimed_until__gte=current)),
        due_pending=Count("id", filter=Q(state=_S.PENDING) & (Q(retry_at__isnull=True) | Q(retry_at__lte=current))),
        last_lease_end=Max("claimed_until", filter=claimed),
    )
    return RunHealth(**row)


@dataclass(frozen=True)
class Consistency:
    """How often a judge gives the same verdict when the two outputs swap places."""

    pairs: int
    consistent: int
    inconsistent_comparison_ids: tuple[int, ...]

    @property
    def rate(self) -> float | None:
        """Return the share of both-order pairs that agree, None when no comparison was judged in both orders."""
        return self.consistent / self.pairs if self.pairs else None


def position_consistency(
    judge: JudgeConfig, *, run: JudgeRun | None = None, within: QuerySet[JudgeVerdict] | None = None
) -> Consistency:
    """Return the judge's position consistency over comparisons parsed in both orders (optionally in one run, which
    must be the judge's, or among the verdicts `within`, e.g. those of the campaigns a user may read)."""
    if run is not None:
        return runs_consistency([run])[run.pk]
    verdicts = (JudgeVerdict.objects if within is None else within).filter(judge=judge, state=_S.DONE, repeat=0)
    outcomes: dict[int, dict[str, str]] = defaultdict(dict)
    for comparison_id, order, outcome in verdicts.values_list("comparison_id", "order", "parsed__outcome"):
        outcomes[comparison_id][order] = outcome
    return _consistency(outcomes)


def runs_consistency(runs: list[JudgeRun]) -> dict[int, Consistency]:
    """Return each run's position consistency (its judge's, over the comparisons the run holds), in two queries."""
    if not runs:
        return {}
    judge_of = {run.pk: (run.judge_id, run.repeat) for run in runs}  # a stability repeat: its own verdicts
    members = JudgeVerdict.objects.filter(run_id__in=judge_of).values_list("run_id", "comparison_id").distinct()
    comparisons_of: dict[int, set[int]] = defaultdict(set)
    for run_id, comparison_id in members:
        comparisons_of[run_id].add(comparison_id)
    verdicts = JudgeVerdict.objects.filter(
        state=_S.DONE,
        judge_id__in={judge_id for judge_id, _ in judge_of.values()},
        repeat__in={repeat for _, repeat in judge_of.values()},
        comparison__in=JudgeVerdict.objects.filter(run_id__in=judge_of).values("comparison"),
    )
    outcomes: dict[tuple[tuple[int, int], int], dict[str, str]] = defaultdict(dict)
    rows = verdicts.values_list("judge_id", "repeat", "comparison_id", "order", "parsed__outcome")
    for judge_id, repeat, comparison_id, order, outcome in rows:
        outcomes[(judge_id, repeat), comparison_id][order] = outcome
    return {
        run_id: _consistency({c: outcomes[key, c] for c in comparisons_of[run_id] if (key, c) in outcomes})
        for run_id, key in judge_of.items()
    }


def _consistency(outcomes: dict[int, dict[str, str]]) -> Consistency:
    pairs = consistent = 0
    inconsistent: list[int] = []
    for comparison_id, by_order in sorted(outcomes.items()):
        if len(by_order) < 2:
            continue
        pairs += 1
        if orders_agree(by_order[JudgeVerdict.Order.AB], by_order[JudgeVerdict.Order.BA]):
            consistent += 1
        else:
            inconsistent.append(comparison_id)
    return Consistency(pairs, consistent, tuple(inconsistent))


def orders_agree(outcome_ab: str, outcome_ba: str) -> bool:
    """Return whether two outcomes name the same winner once the swap is undone (A in one order is B in the other)."""
    swapped = {"A": "B", "B": "A"}.get(outcome_ba, outcome_ba)
    return outcome_ab == swapped


def run_verdicts(
    run: JudgeRun, *, state: str | None = None, outcome: str | None = None, parse_failed: bool | None = None
) -> QuerySet[JudgeVerdict]:
    """Return a run's verdicts in id order with their comparison, filtered by state, parsed outcome, parse failure."""
    verdicts = JudgeVerdict.objects.filter(run=run).select_related("comparison").order_by("id")
    if state is not None:
        verdicts = verdicts.filter(state=state)
    if outcome is not None:
        verdicts = verdicts.filter(parsed__outcome=outcome)
    if parse_failed is not None:
        verdicts = verdicts.filter(state=_S.PARSE_FAILED) if parse_failed else verdicts.exclude(state=_S.PARSE_FAILED)
    return verdicts


def recent_errors(run: JudgeRun, *, limit: int = 5) -> list[tuple[str, int]]:
    """Return the run's most frequent error reasons (failed, unparseable or retrying verdicts) with their counts."""
    rows = (
        JudgeVerdict.objects.filter(run=run)
        .exclude(reason="")
        .exclude(state=_S.DONE)
        .values("reason")
        .annotate(n=Count("id"))
        .order_by("-n", "reason")[:limit]
    )
    return [(row["reason"], row["n"]) for row in rows]
