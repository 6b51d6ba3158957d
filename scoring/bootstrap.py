"""Bootstrap over units for statistics built from per-unit sums.

Every agreement metric here is a function of column sums of a per-unit feature matrix ``F`` (units x k).
Resampling units with replacement is then the same as drawing multinomial weights over the *distinct* rows of
``F``; the resampled sums are one matrix product per chunk of rounds, so the cost grows with the number of
distinct unit patterns rather than units times rounds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

Finalize = Callable[[NDArray[np.float64]], NDArray[np.float64]]
LEVEL = 0.95


def unique_rows(keys: NDArray[Any]) -> tuple[NDArray[Any], NDArray[np.int64]]:
    """Return the distinct rows of a 2-D array and how often each occurs."""
    if keys.dtype.kind in "iu" and keys.size:
        low = keys.min(axis=0)
        span = keys.max(axis=0) - low + 1
        if float(np.prod(span.astype(np.float64))) < 2.0**62:
            radix = np.concatenate([[1], np.cumprod(span[:-1])]).astype(np.int64)
            code = (keys - low).astype(np.int64) @ radix
            _, first, counts = np.unique(code, return_index=True, return_counts=True)
            return keys[first], counts.astype(np.int64)
    rows, counts = np.unique(keys, axis=0, return_counts=True)
    return rows, counts.astype(np.int64)


def resampled_sums(
    features: NDArray[np.float64], weights: NDArray[np.int64], rounds: int, rng: np.random.Generator
) -> NDArray[np.float64]:
    """Return ``rounds`` x k column sums of units resampled with replacement (rows weighted by
    ``weights``)."""
    total = int(weights.sum())
    pvals = weights / total
    chunk = max(1, min(rounds, 4_000_000 // max(len(weights), 1)))
    out = np.empty((rounds, features.shape[1]))
    for start in range(0, rounds, chunk):
        size = min(chunk, rounds - start)
        draws = rng.multinomial(total, pvals, size=size).astype(np.float64)
        out[start : start + size] = draws @ features
    return out


def percentile_interval(values: NDArray[np.float64], level: float = LEVEL) -> tuple[float, float]:
    """Return the equal-tailed percentile interval of finite bootstrap values (nan if there are none)."""
    finite = values[np.isfinite(values)]
    if not len(finite):
        return (float("nan"), float("nan"))
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(finite, [tail, 1.0 - tail])
    return (float(low), float(high))


def unit_bootstrap(
    features: NDArray[np.float64],
    weights: NDArray[np.int64],
    finalize: Finalize,
    rounds: int,
    rng: np.random.Generator | None,
) -> tuple[float, tuple[float, float] | None]:
    """Return the statistic and, if ``rounds`` > 0, its 95% bootstrap interval over units."""
    with np.errstate(divide="ignore", invalid="ignore"):
        value = float(finalize((weights.astype(np.float64) @ features)[None, :])[0])
        if rounds <= 0:
            return value, None
        generator = rng if rng is not None else np.random.default_rng()
        samples = finalize(resampled_sums(features, weights, rounds, generator))
    return value, percentile_interval(samples)


def safe_ratio(num: NDArray[np.float64], den: NDArray[np.float64]) -> NDArray[np.float64]:
    """Return num / den with nan where den is zero."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out: NDArray[np.float64] = np.where(den != 0, num / np.where(den != 0, den, 1.0), np.nan)
    return out


def chance_corrected(pa: NDArray[np.float64], pe: NDArray[np.float64]) -> NDArray[np.float64]:
    """Return (pa - pe) / (1 - pe), nan where pe is 1 or either input is nan."""
    return safe_ratio(pa - pe, 1.0 - pe)
