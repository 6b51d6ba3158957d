"""Bias and stability audits of an LLM judge: the statistics behind the judge report (docs/scoring.md).

- ``logistic_slope``: the slope of a logistic regression of a binary outcome on one covariate (with intercept),
  fitted by Newton's method, with a cluster-robust (CR1) interval when clusters are given (a judge's two orders
  of one comparison are one cluster), else the model-based one; statsmodels' Logit gives the same numbers.
- ``stability``: the flip rate of repeated verdicts (the share of pairs of runs that disagree on one verdict) and
  the odd number of repeats whose majority matches the judge's usual verdict with probability ``target``.
- ``paired_means``: the judge's and the humans' mean scores on the same items and their difference, each with a
  percentile bootstrap interval over items.

Edge cases return nan rather than raising: too few observations, no spread in the covariate, perfect separation.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import stats

from scoring.bootstrap import percentile_interval

Z95 = 1.959963984540054
MAX_NEWTON_STEPS = 50
MAX_COEFFICIENT = 30.0  # a fitted slope or intercept past this means separation: the estimate does not exist
MAX_REPEATS = 99


@dataclass(frozen=True)
class LogisticSlope:
    """A logistic regression slope with its 95% interval and two-sided p-value (nan when it does not exist)."""

    slope: float
    lower: float
    upper: float
    se: float
    p_value: float
    intercept: float
    n: int
    clusters: int


def _nan_slope(n: int, clusters: int) -> LogisticSlope:
    nan = float("nan")
    return LogisticSlope(nan, nan, nan, nan, nan, nan, n, clusters)


def logistic_slope(
    x: Sequence[float], y: Sequence[bool], *, clusters: Sequence[Hashable] | None = None
) -> LogisticSlope:
    """Return the slope of P(y) = sigmoid(b0 + b1 x) with its interval (cluster-robust CR1 when clusters given)."""
    xs, ys = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    n = len(xs)
    groups = _codes(clusters, n)
    n_clusters = int(groups.max()) + 1 if n else 0
    if n < 3 or float(np.ptp(xs)) == 0.0 or ys.min() == ys.max() or (clusters is not None and n_clusters < 3):
        return _nan_slope(n, n_clusters)
    design = np.column_stack([np.ones(n), xs])
    beta = _newton(design, ys)
    if beta is None:
        return _nan_slope(n, n_clusters)
    p = 1.0 / (1.0 + np.exp(-(design @ beta)))
    hessian = design.T @ (design * (p * (1 - p))[:, None])
    bread = np.linalg.inv(hessian)
    if clusters is None:
        cov = bread
    else:
        scores = np.zeros((n_clusters, 2))
        np.add.at(scores, groups, design * (ys - p)[:, None])
        correction = n_clusters / (n_clusters - 1) * (n - 1) / (n - 2)
        cov = correction * bread @ (scores.T @ scores) @ bread
    se = math.sqrt(max(float(cov[1, 1]), 0.0))
    slope = float(beta[1])
    p_value = float(2 * stats.norm.sf(abs(slope) / se)) if se > 0 else float("nan")
    return LogisticSlope(
        slope, slope - Z95 * se, slope + Z95 * se, se, p_value, float(beta[0]), n, n_clusters if clusters else n
    )


def _codes(clusters: Sequence[Hashable] | None, n: int) -> NDArray[np.int64]:
    if clusters is None:
        return np.arange(n, dtype=np.int64)
    if len(clusters) != n:
        raise ValueError(f"clusters: {len(clusters)} labels for {n} observations")
    index: dict[Hashable, int] = {}
    return np.array([index.setdefault(c, len(index)) for c in clusters], dtype=np.int64)


def _newton(design: NDArray[np.float64], ys: NDArray[np.float64]) -> NDArray[np.float64] | None:
    beta = np.zeros(design.shape[1])
    for _ in range(MAX_NEWTON_STEPS):
        p = 1.0 / (1.0 + np.exp(-(design @ beta)))
        gradient = design.T @ (ys - p)
        hessian = design.T @ (design * (p * (1 - p))[:, None])
        try:
            step = np.linalg.solve(hessian, gradient)
        except np.linalg.LinAlgError:
            return None
        beta = beta + step
        if np.abs(beta).max() > MAX_COEFFICIENT:
            return None
        if np.abs(step).max() < 1e-10:
            return beta
    return None


@dataclass(frozen=True)
class Stability:
    """How often repeated runs of one judge configuration disagree on the same verdict."""

    items: int  # verdicts (comparison and order) with at least two runs
    runs_per_item: float  # mean runs per such verdict
    flip_rate: float  # mean over items of the share of run pairs that disagree
    lower: float
    upper: float
    unstable_share: float  # items with any disagreement
    minority_share: float  # pi: the chance one run departs from the usual verdict, from the flip rate
    repeats_for_majority: int | None  # odd k: the majority of k runs is the usual verdict with prob >= target
    target: float


def stability(
    runs: Sequence[Sequence[str]], *, bootstrap: int = 1000, rng: np.random.Generator, target: float = 0.95
) -> Stability:
    """Return the flip rate over items judged in several runs (each item: its outcomes, one a run).

    The minority share pi solves 2 pi (1 - pi) = flip rate (two outcomes, one chance of departing shared by every
    item); the repeats needed are the smallest odd k with P(Binomial(k, pi) <= (k - 1) / 2) >= target, None when
    pi is 0.5 or more, or k would pass MAX_REPEATS.
    """
    rates = np.array([_disagreement(outcomes) for outcomes in runs if len(outcomes) >= 2], dtype=np.float64)
    sizes = [len(outcomes) for outcomes in runs if len(outcomes) >= 2]
    nan = float("nan")
    if not len(rates):
        return Stability(0, nan, nan, nan, nan, nan, nan, None, target)
    flip = float(rates.mean())
    lower, upper = nan, nan
    if bootstrap > 0:
        lower, upper = percentile_interval(bootstrap_means(rates[:, None], bootstrap, rng)[:, 0])
    minority = (1 - math.sqrt(max(0.0, 1 - 2 * flip))) / 2
    return Stability(
        len(rates), float(np.mean(sizes)), flip, lower, upper, float((rates > 0).mean()), minority,
        repeats_for_majority(minority, target=target), target,
    )  # fmt: skip


def _disagreement(outcomes: Sequence[str]) -> float:
    counts = Counter(outcomes)
    n = len(outcomes)
    agreeing = sum(c * (c - 1) for c in counts.values())
    return 1.0 - agreeing / (n * (n - 1))


def repeats_for_majority(minority: float, *, target: float = 0.95) -> int | None:
    """Return the smallest odd k whose majority vote is the usual verdict with probability >= target."""
    if not 0 <= minority < 0.5:
        return None
    for k in range(1, MAX_REPEATS + 1, 2):
        if float(stats.binom.cdf((k - 1) // 2, k, minority)) >= target:
            return k
    return None


@dataclass(frozen=True)
class PairedMeans:
    """The judge's and the humans' mean scores on the same items, and judge minus humans, with 95% intervals."""

    items: int
    judge: float
    judge_ci: tuple[float, float]
    humans: float
    humans_ci: tuple[float, float]
    difference: float
    difference_ci: tuple[float, float]


def paired_means(
    judge: Sequence[float], humans: Sequence[float], *, bootstrap: int = 1000, rng: np.random.Generator
) -> PairedMeans:
    """Return the means of paired per-item scores and their difference, with percentile bootstrap intervals."""
    a, b = np.asarray(judge, dtype=np.float64), np.asarray(humans, dtype=np.float64)
    if len(a) != len(b):
        raise ValueError(f"judge and humans: {len(a)} and {len(b)} scores, expected one each per item")
    nan = float("nan")
    if not len(a):
        return PairedMeans(0, nan, (nan, nan), nan, (nan, nan), nan, (nan, nan))
    intervals = [(nan, nan)] * 3
    if bootstrap > 0:
        means = bootstrap_means(np.column_stack([a, b]), bootstrap, rng)
        ja, hb = means[:, 0], means[:, 1]
        intervals = [percentile_interval(ja), percentile_interval(hb), percentile_interval(ja - hb)]
    return PairedMeans(
        len(a), float(a.mean()), intervals[0], float(b.mean()), intervals[1], float((a - b).mean()), intervals[2]
    )


def bootstrap_means(values: NDArray[np.float64], rounds: int, rng: np.random.Generator) -> NDArray[np.float64]:
    """Return rounds x k column means of the rows resampled with replacement, in chunks of bounded memory."""
    n = len(values)
    chunk = max(1, min(rounds, 2_000_000 // max(n, 1)))
    out = np.empty((rounds, values.shape[1]))
    for start in range(0, rounds, chunk):
        size = min(chunk, rounds - start)
        out[start : start + size] = values[rng.integers(0, n, size=(size, n))].mean(axis=1)
    return out
