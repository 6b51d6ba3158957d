"""The agreement figures LLM-evaluation papers report: MT-Bench vote pairs and AlpacaEval leave-one-out.

MT-Bench (Zheng et al. 2023, Table 5): every pair of votes cast by *different* raters on the same unit counts
once; it agrees when both name the same winner or both are ties ("tie" and "tie (bothbad)" are one class). The
"without ties" figure leaves out every pair that contains a tie.

AlpacaEval (Dubois et al. 2023): each rating is compared with the mode of the *other* ratings of its unit
(optionally keeping only the first ``max_per_unit`` ratings of each unit, in input order); the agreement is
the mean over all compared ratings. When the others' mode is not unique the rating scores 1/k if it is one of
the k modes (the expected agreement under a uniformly random tie-break), else 0.

Both also take compact ``RatingCodes`` (``scoring.ratings.rating_codes``), counted with numpy per unit, with
the same results as the triples they stand for (leave-one-out sums of more than four ratings of a unit may
differ in the last bit, being added in category order rather than input order).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Collection, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from scoring.bootstrap import safe_ratio, unique_rows, unit_bootstrap
from scoring.ratings import RatingCodes

Votes = Iterable[Sequence[Any]] | RatingCodes

DEFAULT_TIES = ("tie", "tie (bothbad)")
Array = NDArray[np.float64]


@dataclass(frozen=True)
class MTBenchAgreement:
    """MT-Bench vote-pair agreement with and without tie-containing pairs."""

    value: float
    agree: int
    pairs: int
    value_without_ties: float
    agree_without_ties: int
    pairs_without_ties: int
    n_units: int
    n_raters: int
    n_ratings: int
    ci: tuple[float, float] | None = None
    ci_without_ties: tuple[float, float] | None = None
    metric: str = "mtbench_agreement"

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "metric": self.metric,
            "value": self.value,
            "n_units": self.n_units,
            "n_raters": self.n_raters,
            "n_ratings": self.n_ratings,
            "ci": None if self.ci is None else list(self.ci),
            "agree": self.agree,
            "pairs": self.pairs,
            "value_without_ties": self.value_without_ties,
            "agree_without_ties": self.agree_without_ties,
            "pairs_without_ties": self.pairs_without_ties,
            "ci_without_ties": None if self.ci_without_ties is None else list(self.ci_without_ties),
        }


@dataclass(frozen=True)
class LooModeAgreement:
    """AlpacaEval leave-one-out agreement with the mode of the other raters."""

    value: float
    agree: float
    compared: int
    n_units: int
    n_raters: int
    n_ratings: int
    ci: tuple[float, float] | None = None
    metric: str = "loo_mode_agreement"

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "metric": self.metric,
            "value": self.value,
            "n_units": self.n_units,
            "n_raters": self.n_raters,
            "n_ratings": self.n_ratings,
            "ci": None if self.ci is None else list(self.ci),
            "agree": self.agree,
            "compared": self.compared,
        }


def _by_unit(ratings: Iterable[Sequence[Any]]) -> tuple[dict[Hashable, list[tuple[Hashable, Hashable]]], int]:
    """Group (unit, rater, value) ratings by unit in input order; return groups and the number of raters."""
    groups: dict[Hashable, list[tuple[Hashable, Hashable]]] = defaultdict(list)
    raters = set()
    for unit, rater, value in ratings:
        groups[unit].append((rater, value))
        raters.add(rater)
    if len(raters) < 2:
        raise ValueError(f"agreement needs ratings from at least 2 raters; found {len(raters)}")
    return groups, len(raters)


def _pairs(votes: list[tuple[Hashable, Hashable]]) -> int:
    """Return the number of vote pairs by different raters."""
    m = len(votes)
    same = sum(c * (c - 1) // 2 for c in Counter(r for r, _ in votes).values())
    return m * (m - 1) // 2 - same


def _unit_counts(votes: list[tuple[Hashable, Hashable]], ties: Collection[Hashable]) -> list[int]:
    """Return [agree, pairs, agree without ties, pairs without ties] for one unit."""
    classed = [(r, "\0tie" if v in ties else v) for r, v in votes]
    decisive = [(r, v) for r, v in classed if v != "\0tie"]
    agree = sum(_pairs([x for x in classed if x[1] == value]) for value in {v for _, v in classed})
    agree_decisive = sum(_pairs([x for x in decisive if x[1] == value]) for value in {v for _, v in decisive})
    return [agree, _pairs(classed), agree_decisive, _pairs(decisive)]


def _sizes(codes: RatingCodes) -> tuple[int, int, int]:
    """Return units, raters and ratings of RatingCodes; raise ValueError below two raters (as ``_by_unit``)."""
    n_raters = len(np.unique(codes.rater))
    if n_raters < 2:
        raise ValueError(f"agreement needs ratings from at least 2 raters; found {n_raters}")
    return len(np.unique(codes.unit)), n_raters, codes.n_ratings


def _same_pairs(unit: NDArray[np.int64], group: NDArray[np.int64], n_units: int) -> NDArray[np.int64]:
    """Return per unit the number of pairs of votes falling in the same group (``group`` < 2**31 within a
    unit)."""
    keys, counts = np.unique(unit.astype(np.int64) << 31 | group.astype(np.int64), return_counts=True)
    pairs = counts.astype(np.int64) * (counts - 1) // 2
    return np.bincount(keys >> 31, weights=pairs, minlength=n_units).astype(np.int64)


def _mtbench_codes(codes: RatingCodes, ties: Collection[Hashable]) -> NDArray[np.int64]:
    """Return [agree, pairs, agree without ties, pairs without ties] per unit present, from RatingCodes."""
    tie_code = len(codes.categories)
    is_tie = np.array([c in set(ties) for c in codes.categories] + [True], dtype=bool)
    classed = np.where(is_tie[codes.value], tie_code, codes.value)
    n_units = codes.n_units
    q = tie_code + 1

    def counts(keep: NDArray[np.bool_]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        unit, rater, value = codes.unit[keep], codes.rater[keep], classed[keep]
        everyone = np.zeros(len(unit), np.int64)
        pairs = _same_pairs(unit, everyone, n_units) - _same_pairs(unit, rater, n_units)
        agree = _same_pairs(unit, value, n_units) - _same_pairs(unit, rater * q + value, n_units)
        return agree, pairs

    agree, pairs = counts(np.ones(len(classed), dtype=bool))
    agree_decisive, pairs_decisive = counts(classed != tie_code)
    present = np.bincount(codes.unit, minlength=n_units) > 0
    return np.column_stack([agree, pairs, agree_decisive, pairs_decisive])[present]


def mtbench_agreement(
    ratings: Votes,
    *,
    ties: Collection[Hashable] = DEFAULT_TIES,
    bootstrap: int = 0,
    rng: np.random.Generator | None = None,
) -> MTBenchAgreement:
    """Return MT-Bench agreement over all vote pairs by different raters on the same unit."""
    if isinstance(ratings, RatingCodes):
        per_unit, n_units, n_raters, n_ratings = _mtbench_codes(ratings, ties), *_sizes(ratings)
    else:
        rows = list(ratings)
        groups, n_raters = _by_unit(rows)
        tie_set = set(ties)
        per_unit = np.array([_unit_counts(votes, tie_set) for votes in groups.values()], dtype=np.int64)
        n_units, n_ratings = len(groups), len(rows)
    features, weights = unique_rows(per_unit)
    totals = weights @ features
    with_ties = unit_bootstrap(features.astype(float), weights, lambda s: safe_ratio(s[:, 0], s[:, 1]), bootstrap, rng)
    without = unit_bootstrap(features.astype(float), weights, lambda s: safe_ratio(s[:, 2], s[:, 3]), bootstrap, rng)
    return MTBenchAgreement(
        value=with_ties[0],
        agree=int(totals[0]),
        pairs=int(totals[1]),
        value_without_ties=without[0],
        agree_without_ties=int(totals[2]),
        pairs_without_ties=int(totals[3]),
        n_units=n_units,
        n_raters=n_raters,
        n_ratings=n_ratings,
        ci=with_ties[1],
        ci_without_ties=without[1],
    )


def _loo_scores(values: list[Hashable]) -> tuple[float, int]:
    """Return the summed leave-one-out scores of one unit and how many ratings were compared."""
    if len(values) < 2:
        return 0.0, 0
    counts = Counter(values)
    total = 0.0
    for value in values:
        counts[value] -= 1
        top = max(counts.values())
        modes = [v for v, c in counts.items() if c == top and c > 0]
        if value in modes:
            total += 1.0 / len(modes)
        counts[value] += 1
    return total, len(values)


def _loo_codes(codes: RatingCodes, max_per_unit: int | None) -> tuple[Array, NDArray[np.int64]]:
    """Return the distinct per-unit [score, compared] rows of RatingCodes and how many units have each."""
    unit, value = codes.unit, codes.value
    if max_per_unit is not None:
        order = np.argsort(unit, kind="stable")
        ordered = unit[order]
        starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
        rank = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
        keep = np.sort(order[rank < max_per_unit])
        unit, value = unit[keep], value[keep]
    q = len(codes.categories)
    present = np.bincount(codes.unit, minlength=codes.n_units) > 0
    counts = np.bincount(unit * q + value, minlength=codes.n_units * q).reshape(codes.n_units, q)[present]
    patterns, weights = unique_rows(counts)
    scores = np.array(
        [_loo_scores([k for k in range(q) for _ in range(int(row[k]))]) for row in patterns], dtype=np.float64
    ).reshape(-1, 2)
    distinct, inverse = np.unique(scores, axis=0, return_inverse=True)
    return distinct, np.bincount(inverse.ravel(), weights=weights, minlength=len(distinct)).astype(np.int64)


def loo_mode_agreement(
    ratings: Votes,
    *,
    max_per_unit: int | None = None,
    bootstrap: int = 0,
    rng: np.random.Generator | None = None,
) -> LooModeAgreement:
    """Return AlpacaEval's leave-one-out agreement of each rating with the mode of the unit's other
    ratings."""
    if isinstance(ratings, RatingCodes):
        n_units, n_raters, n_ratings = _sizes(ratings)
        if max_per_unit is not None and max_per_unit < 2:
            raise ValueError("max_per_unit must be at least 2")
        distinct, weights = _loo_codes(ratings, max_per_unit)
    else:
        rows = list(ratings)
        groups, n_raters = _by_unit(rows)
        if max_per_unit is not None and max_per_unit < 2:
            raise ValueError("max_per_unit must be at least 2")
        per_unit = [_loo_scores([v for _, v in votes][:max_per_unit]) for votes in groups.values()]
        features = np.array(per_unit, dtype=np.float64).reshape(-1, 2)
        distinct, weights = unique_rows(features)
        n_units, n_ratings = len(groups), len(rows)
    value, ci = unit_bootstrap(distinct, weights, lambda s: safe_ratio(s[:, 0], s[:, 1]), bootstrap, rng)
    totals = weights @ distinct
    return LooModeAgreement(
        value=value,
        agree=float(totals[0]),
        compared=int(totals[1]),
        n_units=n_units,
        n_raters=n_raters,
        n_ratings=n_ratings,
        ci=ci,
    )
