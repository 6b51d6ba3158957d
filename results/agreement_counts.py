"""Agreement figures counted with numpy over a campaign's ratings as compact columns (``RatingArrays``).

Each function here gives what its ``RatingRow`` counterpart in ``results.agreement`` gives (``collapse``,
``strict_mode``, ``loo_counts``, ``position_consistency``...), without a Python object per rating.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from results.selectors import VALUES, RatingArrays
from scoring.ratings import RatingCodes, rating_codes

HEATMAP_RATERS = 30
A, B, BOTH_BAD, TIE = range(4)  # codes of VALUES
TIE_CLASS = np.array([VALUES.index(tie_class) for tie_class in ("a", "b", "tie", "tie")], np.int8)


@dataclass(frozen=True, eq=False)
class Collapsed:
    """One (unit, rater, value) per rater and comparison, as arrays in order of the first rating of each."""

    unit: NDArray[np.int64]
    rater: NDArray[np.int32]
    value: NDArray[np.int8]

    def __len__(self) -> int:
        return len(self.unit)

    def take(self, index: NDArray[Any]) -> Collapsed:
        """Return the triples at ``index`` (a mask or positions)."""
        return Collapsed(self.unit[index], self.rater[index], self.value[index])

    def codes(self, raters: Sequence[str], *, values: NDArray[Any] | None = None) -> RatingCodes:
        """Return the triples as scoring's RatingCodes (values mapped through ``values`` when given)."""
        if values is None:
            return rating_codes(self.unit, self.rater, self.value, raters=raters, categories=VALUES)
        return rating_codes(self.unit, self.rater, values[self.value], raters=raters, categories=VALUES)


def collapse_arrays(rows: RatingArrays) -> Collapsed:
    """Return one triple per rater and comparison; contradicting repeat ratings become "tie" (as ``collapse``)."""
    if not len(rows):
        return Collapsed(np.zeros(0, np.int64), np.zeros(0, np.int32), np.zeros(0, np.int8))
    key = rows.comparison * max(len(rows.raters), 1) + rows.rater
    order = np.argsort(key, kind="stable")
    ordered = key[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    values = rows.value[order]
    low, high = np.minimum.reduceat(values, starts), np.maximum.reduceat(values, starts)
    first = order[starts]
    sequence = np.argsort(first, kind="stable")
    collapsed = np.where(low == high, low, np.int8(TIE)).astype(np.int8)
    return Collapsed(rows.comparison[first][sequence], rows.rater[first][sequence], collapsed[sequence])


def gate(rows: RatingArrays) -> tuple[RatingArrays, int]:
    """Return the ratings with each inconsistent judge pair made one tie, the rating that showed output_a on the
    left, and the number of such pairs.

    A pair is exactly two ratings by one judge on one comparison, one in each order, with different values (as
    ``results.selectors.inconsistent_judge_pairs`` finds them).
    """
    is_judge = np.array([kind == "judge" for kind in rows.kinds], dtype=bool)
    judged = np.flatnonzero(is_judge[rows.rater]) if len(rows.kinds) else np.zeros(0, np.int64)
    key = rows.comparison[judged] * max(len(rows.raters), 1) + rows.rater[judged]
    order = np.argsort(key, kind="stable")
    ordered = key[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]]) if len(ordered) else np.zeros(0, np.int64)
    sizes = np.diff(np.r_[starts, len(ordered)])
    pairs = starts[sizes == 2]
    first, second = judged[order[pairs]], judged[order[pairs + 1]]
    inconsistent = (rows.a_left[first] != rows.a_left[second]) & (rows.value[first] != rows.value[second])
    first, second = first[inconsistent], second[inconsistent]
    value = rows.value.copy()
    left = np.where(rows.a_left[first], first, second)
    value[left] = TIE
    keep = np.ones(len(rows), dtype=bool)
    keep[np.where(rows.a_left[first], second, first)] = False
    kept = RatingArrays(
        rows.comparison, rows.rater, value, rows.a_left, rows.time_ms, rows.gold, rows.raters, rows.kinds
    )
    return kept.take(keep), len(first)


def by_rater(rows: RatingArrays) -> dict[int, RatingArrays]:
    """Return each rater's ratings (in id order) by rater code."""
    order = np.argsort(rows.rater, kind="stable")
    ordered = rows.rater[order]
    if not len(ordered):  # no ratings selected (every rater excluded, say): no raters
        return {}
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.r_[starts[1:], len(ordered)]
    return {int(ordered[s]): rows.take(order[s:e]) for s, e in zip(starts, ends, strict=True)}


def share(agree: int, total: int) -> dict[str, Any]:
    """Return a proportion with its counts (value None when there is nothing to count)."""
    return {"agree": agree, "n": total, "value": round(agree / total, 6) if total else None}


def strict_modes(unit: NDArray[np.int64], value: NDArray[Any]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Return the units (sorted) whose values have a strict mode, and that mode (as ``strict_mode``)."""
    units, inverse = np.unique(unit, return_inverse=True)
    counts = np.zeros((len(units), len(VALUES)), np.int64)
    np.add.at(counts, (inverse.ravel(), value.astype(np.int64)), 1)
    top = counts.max(axis=1) if len(units) else np.zeros(0, np.int64)
    strict = (counts == top[:, None]).sum(axis=1) == 1
    return units[strict], counts.argmax(axis=1)[strict] if len(units) else np.zeros(0, np.int64)


def consensus(triples: Collapsed) -> NDArray[np.int64]:
    """Return per triple [compared, agrees]: whether the other raters of its comparison have a strict mode, and
    whether the triple's value is that mode (as ``loo_counts`` and ``annotator_report``)."""
    if not len(triples):
        return np.zeros((0, 2), np.int64)
    units, inverse = np.unique(triples.unit, return_inverse=True)
    counts = np.zeros((len(units), len(VALUES)), np.int64)
    value = triples.value.astype(np.int64)
    np.add.at(counts, (inverse.ravel(), value), 1)
    others = counts[inverse.ravel()]
    others[np.arange(len(value)), value] -= 1
    top = others.max(axis=1)
    compared = (top > 0) & ((others == top[:, None]).sum(axis=1) == 1)
    agrees = compared & (others.argmax(axis=1) == value)
    return np.column_stack([compared, agrees]).astype(np.int64)


def position_consistency_arrays(rows: RatingArrays) -> dict[str, Any]:
    """Return the share of comparisons rated in both orders whose verdicts agree (as ``position_consistency``:
    with several ratings in one order, the last one counts)."""
    key = rows.comparison * 2 + rows.a_left
    reversed_keys = key[::-1]
    keys, last = np.unique(reversed_keys, return_index=True)
    values = rows.value[::-1][last]
    both = np.flatnonzero((keys[1:] == keys[:-1] + 1) & (keys[:-1] % 2 == 0))
    return share(int((values[both] == values[both + 1]).sum()), len(both))


def annotator_reports(rows: RatingArrays, triples: Collapsed) -> list[dict[str, Any]]:
    """Return per rater: agreement with the others' consensus, gold accuracy, median time and share of "left"."""
    n = len(rows.raters)
    agreed = consensus(triples)
    compared = np.bincount(triples.rater, weights=agreed[:, 0], minlength=n) if len(triples) else np.zeros(n)
    agrees = np.bincount(triples.rater, weights=agreed[:, 1], minlength=n) if len(triples) else np.zeros(n)
    count = np.bincount(rows.rater, minlength=n)
    has_gold = rows.gold >= 0
    gold_n = np.bincount(rows.rater[has_gold], minlength=n)
    gold_right = np.bincount(rows.rater[has_gold & (rows.value == rows.gold)], minlength=n)
    decisive = rows.value <= B
    left_n = np.bincount(rows.rater[decisive], minlength=n)
    left = np.bincount(rows.rater[decisive & ((rows.value == A) == rows.a_left)], minlength=n)
    medians = median_times(rows)
    return [
        {
            "rater": rows.raters[code],
            "kind": rows.kinds[code],
            "n_ratings": int(count[code]),
            "agreement_with_consensus": share(int(agrees[code]), int(compared[code])),
            "gold_accuracy": share(int(gold_right[code]), int(gold_n[code])),
            "median_time_ms": medians.get(code),
            "left_share": {
                "left": int(left[code]),
                "n": int(left_n[code]),
                "value": round(int(left[code]) / int(left_n[code]), 6) if left_n[code] else None,
            },
        }
        for code in np.flatnonzero(count).tolist()
    ]


def median_times(rows: RatingArrays) -> dict[int, float | int]:
    """Return each rater's median time_ms over the ratings that have one (as ``statistics.median``)."""
    timed = rows.time_ms >= 0
    rater, times = rows.rater[timed], rows.time_ms[timed].astype(np.int64)
    order = np.lexsort((times, rater))
    rater, times = rater[order], times[order]
    starts = np.flatnonzero(np.r_[True, rater[1:] != rater[:-1]]) if len(rater) else np.zeros(0, np.int64)
    sizes = np.diff(np.r_[starts, len(rater)])
    out: dict[int, float | int] = {}
    for start, size in zip(starts.tolist(), sizes.tolist(), strict=True):
        middle = start + size // 2
        out[int(rater[start])] = int(times[middle]) if size % 2 else (int(times[middle - 1]) + int(times[middle])) / 2
    return out


def rater_heatmap(triples: Collapsed, raters: Sequence[str], *, limit: int = HEATMAP_RATERS) -> dict[str, Any]:
    """Return pairwise agreement (share of shared comparisons with the same value) of the most active raters:
    the ``limit`` raters with most comparisons (ties: the first to appear), by name."""
    activity = np.bincount(triples.rater, minlength=len(raters))
    first = np.full(len(raters), len(triples), np.int64)
    np.minimum.at(first, triples.rater, np.arange(len(triples)))
    active = np.flatnonzero(activity)
    chosen = np.sort(active[np.lexsort((first[active], -activity[active]))][:limit])
    n = len(chosen)
    index = np.full(len(raters), -1, np.int64)
    index[chosen] = np.arange(n)
    mine = triples.take(index[triples.rater] >= 0)
    shared = pair_counts(mine.unit, index[mine.rater], n)
    agree = sum(
        (pair_counts(mine.unit[mine.value == v], index[mine.rater[mine.value == v]], n) for v in range(len(VALUES))),
        np.zeros((n, n), np.int64),
    )
    matrix = [
        [round(agree[i, j] / shared[i, j], 4) if shared[i, j] and i != j else None for j in range(n)] for i in range(n)
    ]
    return {"raters": [raters[c] for c in chosen.tolist()], "matrix": matrix, "shared": shared.tolist()}


def pair_counts(unit: NDArray[np.int64], column: NDArray[np.int64], n: int) -> NDArray[np.int64]:
    """Return n x n counts of units holding both columns i != j (``column`` < 62 distinct per unit, once each)."""
    if not len(unit):
        return np.zeros((n, n), np.int64)
    units, inverse = np.unique(unit, return_inverse=True)
    masks = np.zeros(len(units), np.int64)
    np.bitwise_or.at(masks, inverse.ravel(), np.left_shift(np.int64(1), column.astype(np.int64)))
    distinct, weights = np.unique(masks, return_counts=True)
    bits = (distinct[:, None] >> np.arange(n)[None, :]) & 1
    counts: NDArray[np.int64] = (bits * weights[:, None]).T @ bits
    np.fill_diagonal(counts, 0)
    return counts
