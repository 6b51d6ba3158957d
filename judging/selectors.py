"""Reads: run progress, position consistency and inconsistent comparisons."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Avg, Count, Q, QuerySet, Sum

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


def run_progress(run: JudgeRun) -> RunProgress:
    """Return the counts, tokens, cost and latency of a run's verdicts, in one query."""
    row = JudgeVerdict.objects.filter(run=run).aggregate(
        total=Count("id"),
        pending=Count("id", filter=Q(state=_S.PENDING)),
        claimed=Count("id", filter=Q(state=_S.CLAIMED)),
        done=Count("id", filter=Q(state=_S.DONE)),
        parse_failed=Count("id", filter=Q(state=_S.PARSE_FAILED)),
        failed=Count("id", filter=Q(state=_S.FAILED)),
        from_cache=Count("id", filter=Q(cached=True)),
        tokens_in=Sum("tokens_in", default=0),
        tokens_out=Sum("tokens_out", default=0),
        cost=Sum("cost", default=Decimal(0)),
        mean_latency_ms=Avg("latency_ms", filter=Q(cached=False)),
    )
    return RunProgress(**row)


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


def position_consistency(judge: JudgeConfig, *, run: JudgeRun | None = None) -> Consistency:
    """Return the judge's position consistency over comparisons parsed in both orders (optionally in one run)."""
    verdicts = JudgeVerdict.objects.filter(judge=judge, state=_S.DONE)
    if run is not None:
        verdicts = verdicts.filter(comparison__in=JudgeVerdict.objects.filter(run=run).values("comparison"))
    outcomes: dict[int, dict[str, str]] = defaultdict(dict)
    for comparison_id, order, outcome in verdicts.values_list("comparison_id", "order", "parsed__outcome"):
        outcomes[comparison_id][order] = outcome
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


def verdicts_of_run(run: JudgeRun) -> QuerySet[JudgeVerdict]:
    """Return a run's verdicts with what the admin shows."""
    return JudgeVerdict.objects.filter(run=run).select_related("judge", "comparison")
