"""The agreement figures LLM-evaluation papers report: MT-Bench vote pairs and AlpacaEval leave-one-out.

MT-Bench (Zheng et al. 2023, Table 5): every pair of votes cast by *different* raters on the same unit counts
once; it agrees when both name the same winner or both are ties ("tie" and "tie (bothbad)" are one class). The
"without ties" figure leaves out every pair that contains a tie.

AlpacaEval (Dubois et al. 2023): each rating is compared with the mode of the *other* ratings of its unit
(optionally keeping only the first ``max_per_unit`` ratings of each unit, in input order); the agreement is
the mean over all compared ratings. When the others' mode is not unique the rating scores 1/k if it is one of
the k modes (the expected agreement under a uniformly random tie-break), else 0.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Collection, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from scoring.bootstrap import safe_ratio, unique_rows, unit_bootstrap

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


def mtbench_agreement(
    ratings: Iterable[Sequence[Any]],
    *,
    ties: Collection[Hashable] = DEFAULT_TIES,
    bootstrap: int = 0,
    rng: np.random.Generator | None = None,
) -> MTBenchAgreement:
    """Return MT-Bench agreement over all vote pairs by different raters on the same unit."""
    rows = list(ratings)
    groups, n_raters = _by_unit(rows)
    tie_set = set(ties)
    per_unit = np.array([_unit_counts(votes, tie_set) for votes in groups.values()], dtype=np.int64)
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
        n_units=len(groups),
        n_raters=n_raters,
        n_ratings=len(rows),
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


def loo_mode_agreement(
    ratings: Iterable[Sequence[Any]],
    *,
    max_per_unit: int | None = None,
    bootstrap: int = 0,
    rng: np.random.Generator | None = None,
) -> LooModeAgreement:
    """Return AlpacaEval's leave-one-out agreement of each rating with the mode of the unit's other
    ratings."""
    rows = list(ratings)
    groups, n_raters = _by_unit(rows)
    if max_per_unit is not None and max_per_unit < 2:
        raise ValueError("max_per_unit must be at least 2")
    per_unit = [_loo_scores([v for _, v in votes][:max_per_unit]) for votes in groups.values()]
    features = np.array(per_unit, dtype=np.float64).reshape(-1, 2)
    distinct, weights = unique_rows(features)
    value, ci = unit_bootstrap(distinct, weights, lambda s: safe_ratio(s[:, 0], s[:, 1]), bootstrap, rng)
    totals = weights @ distinct
    return LooModeAgreement(
        value=value,
        agree=float(totals[0]),
        compared=int(totals[1]),
        n_units=len(groups),
        n_raters=n_raters,
        n_ratings=len(rows),
        ci=ci,
    )
