"""Battle counts of a campaign, kept per rater in a snapshot and brought up to date incrementally.

A leaderboard needs the number of battles per (shown-left model, shown-right model, outcome). Aggregating every
rating costs seconds at a million ratings, so the counts are stored per rater in BattleCountSnapshot up to a
rating id, and a request only aggregates the ratings past it (a primary-key range scan). A change in PostgreSQL's
update or delete counts of the ratings table makes the next request recount from scratch, and so does the
background refresh (``full=True``), which also picks up any rating whose transaction committed after a larger id
had been counted.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from annotation.models import Campaign
from results.categories import category_battle_rows, comparisons_in_category
from results.models import BattleCountSnapshot
from results.raters import RaterSelection
from results.selectors import (
    BattleRow,
    arena_battle,
    inconsistent_judge_pairs,
    rater_battle_rows,
    ratings_version,
    selected_rater_ids,
)


@dataclass
class BattleTally:
    """Battles per (model_a, model_b, winner) label, plus the ratings that could not become battles."""

    counts: dict[tuple[str, str, str], int] = field(default_factory=dict)
    skipped_unnamed: int = 0
    inconsistent_pairs: int = 0

    def add(self, left: str | None, right: str | None, winner: str, n: int) -> None:
        """Count n battles (negative n takes them back); a battle with an unnamed model counts as skipped."""
        if left is None or right is None:
            self.skipped_unnamed += n
            return
        key = (left, right, winner)
        self.counts[key] = self.counts.get(key, 0) + n
        if not self.counts[key]:
            del self.counts[key]

    @property
    def n_battles(self) -> int:
        return sum(self.counts.values())


def rater_counts(campaign: Campaign, *, full: bool = False) -> list[BattleRow]:
    """Return the campaign's battle counts per rater, updating its snapshot to the current ratings."""
    version = ratings_version()
    changes = version.updated + version.deleted
    snapshot, _ = BattleCountSnapshot.objects.get_or_create(campaign=campaign)
    stale = full or snapshot.changes != changes or snapshot.max_rating_id > version.max_id
    if not stale and snapshot.max_rating_id == version.max_id:
        return [tuple(row) for row in snapshot.rows]
    after = 0 if stale else snapshot.max_rating_id
    fresh = rater_battle_rows(campaign, after_id=after, upto_id=version.max_id)
    rows = fresh if stale else merge(snapshot.rows, fresh)
    # Conditional on the id we read, so that a slower concurrent request does not overwrite newer counts.
    BattleCountSnapshot.objects.filter(pk=snapshot.pk, max_rating_id=snapshot.max_rating_id).update(
        rows=rows, max_rating_id=version.max_id, changes=changes
    )
    return rows


def merge(old: list[list[object]], new: list[BattleRow]) -> list[BattleRow]:
    """Return the sum of two lists of counted rows."""
    total: Counter[tuple[object, ...]] = Counter()
    for row in [*old, *new]:
        total[tuple(row[:4])] += int(row[4])  # type: ignore[call-overload]
    return [(*key, n) for key, n in total.items()]  # type: ignore[misc]


def battle_tally(
    campaign: Campaign,
    selection: RaterSelection,
    *,
    full: bool = False,
    consistent: bool = False,
    category: str | None = None,
) -> BattleTally:
    """Return the campaign's battles by the selected raters.

    ``consistent`` is the consistency gate: a comparison a judge decided differently in its two orders counts as
    one tie (output_a's model on the left) instead of its two votes; humans and consistent pairs are untouched.
    ``category``: only the ratings on prompts with this tag, counted in SQL per request (``results.categories``).
    """
    rows = category_battle_rows(campaign, category) if category is not None else rater_counts(campaign, full=full)
    keep = selected_rater_ids(selection, {row[0] for row in rows})
    tally = BattleTally()
    for rater_id, left, right, winner, n in rows:
        if rater_id in keep:
            tally.add(left, right, winner, n)
    if consistent:
        pairs = inconsistent_judge_pairs(campaign, selection)
        if category is not None:
            inside = comparisons_in_category([pair.comparison_id for pair in pairs], category)
            pairs = [pair for pair in pairs if pair.comparison_id in inside]
        for pair in pairs:
            if pair.rater_id not in keep:
                continue
            for a_left, value in pair.votes:
                tally.add(*arena_battle(pair.model_a, pair.model_b, a_left, value), -1)
            tally.add(pair.model_a, pair.model_b, "tie", 1)
            tally.inconsistent_pairs += 1
    return tally
