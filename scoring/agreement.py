"""Chance-corrected agreement coefficients over (unit, rater, value) ratings with missing ratings allowed.

Conventions follow Gwet (2014), *Handbook of Inter-Rater Reliability*, 4th ed., and his irrCAC package for
multiple raters with missing ratings: the observed agreement ``pa`` averages, over units with at least two
ratings, the share of agreeing ordered pairs of ratings; category prevalences average each unit's shares over
all units with at least one rating. Two-rater coefficients (Cohen, Scott) use the units both raters rated.
Every function returns ``nan`` when no unit has two ratings (or chance agreement is 1), and raises ValueError
when fewer raters than the coefficient needs are present. ``bootstrap=N`` adds a 95% percentile interval from
N resamples of units (``rng`` makes it reproducible). Ratings come as triples, a ``RatingTable`` or compact
``RatingCodes`` (``scoring.ratings.rating_codes``); the multi-rater coefficients read the latter's per-unit counts
directly, without a dense units x raters table.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from scoring.bootstrap import chance_corrected, percentile_interval, safe_ratio, unique_rows, unit_bootstrap
from scoring.ratings import RatingCodes, RatingsInput, RatingTable, counted_ratings, rating_table

Weights = Literal["linear", "quadratic"] | None
Array = NDArray[np.float64]


@dataclass(frozen=True)
class AgreementResult:
    """An agreement coefficient with its inputs' sizes and, if requested, a 95% bootstrap interval."""

    metric: str
    value: float
    n_units: int
    n_raters: int
    n_ratings: int
    observed: float | None = None
    expected: float | None = None
    ci: tuple[float, float] | None = None
    counts: Mapping[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        out: dict[str, Any] = {
            "metric": self.metric,
            "value": self.value,
            "n_units": self.n_units,
            "n_raters": self.n_raters,
            "n_ratings": self.n_ratings,
            "ci": None if self.ci is None else list(self.ci),
        }
        if self.observed is not None:
            out["observed"] = self.observed
        if self.expected is not None:
            out["expected"] = self.expected
        out.update(self.counts)
        return out


Counted = RatingTable | RatingCodes


def require_raters(table: Counted, needed: int, metric: str) -> None:
    """Raise ValueError unless the table has at least ``needed`` raters."""
    if len(table.raters) < needed:
        found = ", ".join(repr(r) for r in table.raters) or "none"
        raise ValueError(f"{metric} needs ratings from at least {needed} raters; found {len(table.raters)} ({found})")


def _result(
    metric: str,
    table: Counted,
    features: Array,
    weights: NDArray[np.int64],
    finalize: Callable[[Array], tuple[Array, Array, Array]],
    bootstrap: int,
    rng: np.random.Generator | None,
) -> AgreementResult:
    """Evaluate a (value, pa, pe) finalizer on the data and its bootstrap resamples."""
    value, ci = unit_bootstrap(features, weights, lambda s: finalize(s)[0], bootstrap, rng)
    with np.errstate(divide="ignore", invalid="ignore"):
        _, pa, pe = finalize((weights.astype(np.float64) @ features)[None, :])
    return AgreementResult(
        metric=metric,
        value=value,
        n_units=table.n_units,
        n_raters=len(table.raters),
        n_ratings=table.n_ratings,
        observed=float(pa[0]),
        expected=float(pe[0]),
        ci=ci,
    )


def _multi_rater_features(table: Counted) -> tuple[Array, NDArray[np.int64]]:
    """Return distinct per-unit features [pa_u, has2_u, share_u (q), has1_u] and their multiplicities."""
    counts, weights = unique_rows(table.category_counts())
    m = counts.sum(axis=1).astype(np.float64)
    has2 = m >= 2
    pa_u = np.where(has2, (counts * (counts - 1)).sum(axis=1) / np.where(has2, m * (m - 1), 1.0), 0.0)
    share = counts / np.maximum(m, 1.0)[:, None]
    features = np.column_stack([pa_u, has2, share, m >= 1]).astype(np.float64)
    return features, weights


def _pa_and_prevalence(sums: Array) -> tuple[Array, Array]:
    """Return observed agreement and category prevalences from summed multi-rater features."""
    pa = safe_ratio(sums[:, 0], sums[:, 1])
    prevalence = safe_ratio(sums[:, 2:-1], sums[:, -1:])
    return pa, prevalence


def percent_agreement(
    ratings: RatingsInput, *, bootstrap: int = 0, rng: np.random.Generator | None = None
) -> AgreementResult:
    """Return the mean over units (with >= 2 ratings) of the share of agreeing pairs among their raters."""
    table = counted_ratings(ratings)
    require_raters(table, 2, "percent_agreement")

    def finalize(sums: Array) -> tuple[Array, Array, Array]:
        pa, _ = _pa_and_prevalence(sums)
        return pa, pa, np.zeros_like(pa)

    features, weights = _multi_rater_features(table)
    result = _result("percent_agreement", table, features, weights, finalize, bootstrap, rng)
    return replace(result, expected=None)


def fleiss_kappa(
    ratings: RatingsInput, *, bootstrap: int = 0, rng: np.random.Generator | None = None
) -> AgreementResult:
    """Return Fleiss' (1971) kappa, generalised to missing ratings as in Gwet (2014)."""
    table = counted_ratings(ratings)
    require_raters(table, 2, "fleiss_kappa")

    def finalize(sums: Array) -> tuple[Array, Array, Array]:
        pa, prevalence = _pa_and_prevalence(sums)
        pe = (prevalence**2).sum(axis=1)
        return chance_corrected(pa, pe), pa, pe

    features, weights = _multi_rater_features(table)
    return _result("fleiss_kappa", table, features, weights, finalize, bootstrap, rng)


def gwet_ac1(
    ratings: RatingsInput,
    *,
    categories: Sequence[Hashable] | None = None,
    bootstrap: int = 0,
    rng: np.random.Generator | None = None,
) -> AgreementResult:
    """Return Gwet's (2008) AC1; ``categories`` lists all possible categories, used or not."""
    table = counted_ratings(ratings, categories=categories)
    require_raters(table, 2, "gwet_ac1")
    q = len(table.categories)

    def finalize(sums: Array) -> tuple[Array, Array, Array]:
        pa, prevalence = _pa_and_prevalence(sums)
        pe = (prevalence * (1 - prevalence)).sum(axis=1) / (q - 1) if q > 1 else np.ones_like(pa)
        return chance_corrected(pa, pe), pa, pe

    features, weights = _multi_rater_features(table)
    return _result("gwet_ac1", table, features, weights, finalize, bootstrap, rng)


def brennan_prediger(
    ratings: RatingsInput,
    *,
    categories: Sequence[Hashable] | None = None,
    bootstrap: int = 0,
    rng: np.random.Generator | None = None,
) -> AgreementResult:
    """Return Brennan and Prediger's (1981) coefficient with chance agreement 1/q."""
    table = counted_ratings(ratings, categories=categories)
    require_raters(table, 2, "brennan_prediger")
    q = len(table.categories)

    def finalize(sums: Array) -> tuple[Array, Array, Array]:
        pa, _ = _pa_and_prevalence(sums)
        pe = np.full_like(pa, 1.0 / q)
        return chance_corrected(pa, pe), pa, pe

    features, weights = _multi_rater_features(table)
    return _result("brennan_prediger", table, features, weights, finalize, bootstrap, rng)


def conger_kappa(
    ratings: RatingsInput, *, bootstrap: int = 0, rng: np.random.Generator | None = None
) -> AgreementResult:
    """Return Conger's (1980) kappa: chance agreement from each rater's own category distribution."""
    table = rating_table(ratings)
    require_raters(table, 2, "conger_kappa")
    n_raters, q = len(table.raters), len(table.categories)
    rows, weights = unique_rows(table.codes)
    counts = np.stack([(rows == k).sum(axis=1) for k in range(q)], axis=1)
    m = counts.sum(axis=1).astype(np.float64)
    has2 = m >= 2
    pa_u = np.where(has2, (counts * (counts - 1)).sum(axis=1) / np.where(has2, m * (m - 1), 1.0), 0.0)
    onehot = (rows[:, :, None] == np.arange(q)[None, None, :]).reshape(len(rows), n_raters * q)
    features = np.column_stack([pa_u, has2, onehot, rows >= 0]).astype(np.float64)

    def finalize(sums: Array) -> tuple[Array, Array, Array]:
        pa = safe_ratio(sums[:, 0], sums[:, 1])
        per_rater = sums[:, 2 : 2 + n_raters * q].reshape(-1, n_raters, q)
        p = safe_ratio(per_rater, sums[:, 2 + n_raters * q :][:, :, None])
        p = np.nan_to_num(p)
        pe = ((p.sum(axis=1) ** 2 - (p**2).sum(axis=1)).sum(axis=1)) / (n_raters * (n_raters - 1))
        return chance_corrected(pa, pe), pa, pe

    return _result("conger_kappa", table, features, weights, finalize, bootstrap, rng)


def select_raters(table: RatingTable, raters: tuple[Hashable, Hashable] | None) -> RatingTable:
    """Return the table restricted to two named raters (all raters when ``raters`` is None)."""
    if raters is None:
        return table
    missing = [r for r in raters if r not in table.raters]
    if missing:
        raise ValueError(f"rater {missing[0]!r} has no ratings")
    columns = [table.raters.index(r) for r in raters]
    codes = table.codes[:, columns]
    keep = (codes >= 0).any(axis=1)
    units = tuple(u for u, k in zip(table.units, np.asarray(keep).ravel(), strict=True) if k)
    return RatingTable(units, tuple(raters), table.categories, codes[keep])


def _pair_table(table: RatingTable, metric: str) -> tuple[RatingTable, Array, NDArray[np.int64]]:
    """Return the two-rater table and joint (q*q) one-hot features of units both raters rated."""
    require_raters(table, 2, metric)
    if len(table.raters) > 2:
        raise ValueError(
            f"{metric} is defined for exactly two raters; found {len(table.raters)} (choose two with raters=)"
        )
    both = (table.codes >= 0).all(axis=1)
    q = len(table.categories)
    rows, weights = unique_rows(table.codes[both])
    if not len(rows):
        return table, np.zeros((0, q * q)), np.zeros(0, dtype=np.int64)
    features = np.zeros((len(rows), q * q))
    features[np.arange(len(rows)), rows[:, 0] * q + rows[:, 1]] = 1.0
    return table, features, weights


def agreement_weights(q: int, weights: Weights) -> Array:
    """Return the q x q agreement weight matrix: identity, linear or quadratic in category positions."""
    idx = np.arange(q, dtype=np.float64)
    if weights is None:
        return np.eye(q)
    if q < 2:
        return np.ones((q, q))
    dist = np.abs(idx[:, None] - idx[None, :]) / (q - 1)
    if weights == "linear":
        return 1.0 - dist
    if weights == "quadratic":
        return 1.0 - dist**2
    raise ValueError(f"weights must be None, 'linear' or 'quadratic', got {weights!r}")


def _two_rater(
    metric: str,
    ratings: RatingsInput,
    weights: Weights,
    categories: Sequence[Hashable] | None,
    pooled: bool,
    raters: tuple[Hashable, Hashable] | None,
    bootstrap: int,
    rng: np.random.Generator | None,
) -> AgreementResult:
    """Compute Cohen's kappa (rater marginals) or Scott's pi (pooled marginals)."""
    table = select_raters(rating_table(ratings, categories=categories), raters)
    table, features, counts = _pair_table(table, metric)
    q = len(table.categories)
    w = agreement_weights(q, weights)

    def finalize(sums: Array) -> tuple[Array, Array, Array]:
        joint = safe_ratio(sums, sums.sum(axis=1, keepdims=True)).reshape(-1, q, q)
        pa = (joint * w).sum(axis=(1, 2))
        rows, cols = joint.sum(axis=2), joint.sum(axis=1)
        if pooled:
            rows = cols = (rows + cols) / 2
        pe = np.einsum("bi,ij,bj->b", rows, w, cols)
        return chance_corrected(pa, pe), pa, pe

    if not len(counts):
        nan = float("nan")
        return AgreementResult(metric, nan, len(table.units), 2, table.n_ratings, ci=(nan, nan) if bootstrap else None)
    return _result(metric, table, features, counts, finalize, bootstrap, rng)


def cohen_kappa(
    ratings: RatingsInput,
    *,
    weights: Weights = None,
    categories: Sequence[Hashable] | None = None,
    raters: tuple[Hashable, Hashable] | None = None,
    bootstrap: int = 0,
    rng: np.random.Generator | None = None,
) -> AgreementResult:
    """Return Cohen's (1960) kappa for two raters, or Cohen's (1968) weighted kappa.

    ``raters`` picks two raters out of more; units are those both rated.
    """
    return _two_rater("cohen_kappa", ratings, weights, categories, False, raters, bootstrap, rng)


def scott_pi(
    ratings: RatingsInput,
    *,
    weights: Weights = None,
    categories: Sequence[Hashable] | None = None,
    raters: tuple[Hashable, Hashable] | None = None,
    bootstrap: int = 0,
    rng: np.random.Generator | None = None,
) -> AgreementResult:
    """Return Scott's (1955) pi for two raters (Fleiss' kappa generalises it to more).

    ``raters`` picks two raters out of more; units are those both rated.
    """
    return _two_rater("scott_pi", ratings, weights, categories, True, raters, bootstrap, rng)


def bootstrap_ci(
    metric: Callable[..., Any],
    ratings: RatingsInput,
    n: int = 1000,
    rng: np.random.Generator | None = None,
    **kwargs: Any,
) -> tuple[float, float]:
    """Return a 95% percentile interval of ``metric`` over ``n`` resamples of units.

    Metrics of this package take a ``bootstrap`` argument and resample through it; any other callable taking
    ratings and returning an object with ``value`` (or a float) is resampled unit by unit.
    """
    generator = rng if rng is not None else np.random.default_rng()
    if "bootstrap" not in inspect.signature(metric).parameters:
        return _generic_bootstrap(metric, rating_table(ratings), n, generator, kwargs)
    ci = metric(ratings, bootstrap=n, rng=generator, **kwargs).ci
    assert ci is not None
    return (float(ci[0]), float(ci[1]))


def _generic_bootstrap(
    metric: Callable[..., Any], table: RatingTable, n: int, rng: np.random.Generator, kwargs: dict[str, Any]
) -> tuple[float, float]:
    """Resample units and re-run ``metric`` on each resample."""
    values = np.empty(n)
    for b in range(n):
        pick = rng.integers(0, len(table.units), len(table.units))
        sample = RatingTable(tuple(range(len(pick))), table.raters, table.categories, table.codes[pick])
        result = metric(sample, **kwargs)
        values[b] = float(getattr(result, "value", result))
    return percentile_interval(values)
