"""Krippendorff's alpha from the coincidence matrix (Krippendorff 2011, "Computing Krippendorff's
Alpha-Reliability").

alpha = 1 - (n - 1) * sum_ck o_ck delta2_ck / sum_ck n_c n_k delta2_ck, where o is the coincidence matrix of
pairable values (units with at least two ratings), n_c its margins and n their total. For the nominal,
interval and ratio levels the per-unit features are the unit's disagreement sum and its category counts; the
ordinal metric depends on the margins, so its features are the unit's full coincidence contributions.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from functools import partial
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from scoring.agreement import AgreementResult, require_raters
from scoring.bootstrap import safe_ratio, unique_rows, unit_bootstrap
from scoring.ratings import RatingCodes, RatingsInput, RatingTable, counted_ratings

Level = Literal["nominal", "ordinal", "interval", "ratio"]
LEVELS = ("nominal", "ordinal", "interval", "ratio")
Array = NDArray[np.float64]


def distance_matrix(table: RatingTable | RatingCodes, level: Level) -> Array:
    """Return the squared distances delta2 between categories for a fixed-metric level."""
    q = len(table.categories)
    if level == "nominal":
        return 1.0 - np.eye(q)
    values = table.numeric_categories()
    diff = values[:, None] - values[None, :]
    if level == "interval":
        return diff**2
    if level == "ratio":
        total = values[:, None] + values[None, :]
        return np.asarray(safe_ratio(diff, total) ** 2, dtype=np.float64)
    raise ValueError(f"level must be one of {', '.join(LEVELS)}, got {level!r}")


def ordinal_distances(margins: Array) -> Array:
    """Return batched ordinal delta2 (batch x q x q) from coincidence margins (batch x q)."""
    cum = np.cumsum(margins, axis=1)
    between = cum[:, None, :] - cum[:, :, None] + margins[:, :, None]
    span = between - (margins[:, :, None] + margins[:, None, :]) / 2
    upper = np.triu(np.ones(margins.shape[1], dtype=bool))
    dist = np.where(upper[None], span, np.swapaxes(span, 1, 2))
    out: Array = dist**2
    return out


def _features(counts: NDArray[np.int64], delta2: Array | None) -> Array:
    """Return per-unit features: [disagreement, margins] or, for ordinal (delta2 None), coincidences."""
    m = counts.sum(axis=1).astype(np.float64)
    pairable = np.where(m >= 2, 1.0 / np.maximum(m - 1, 1.0), 0.0)
    c = counts.astype(np.float64)
    if delta2 is None:
        coinc = c[:, :, None] * c[:, None, :]
        idx = np.arange(c.shape[1])
        coinc[:, idx, idx] -= c
        return (coinc * pairable[:, None, None]).reshape(len(c), -1)
    disagreement = np.einsum("uc,ck,uk->u", c, delta2, c) * pairable
    return np.column_stack([disagreement, c * (m >= 2)[:, None]])


def _fixed_alpha(sums: Array, delta2: Array) -> Array:
    """Return alpha for a level with fixed distances from summed [disagreement, margins] features."""
    margins = sums[:, 1:]
    n = margins.sum(axis=1)
    expected: Array = np.einsum("bc,ck,bk->b", margins, delta2, margins)
    alpha: Array = 1.0 - (n - 1) * safe_ratio(sums[:, 0], expected)
    return alpha


def _ordinal_alpha(sums: Array, q: int) -> Array:
    """Return ordinal alpha from summed coincidence features."""
    coinc = sums.reshape(-1, q, q)
    margins = coinc.sum(axis=2)
    n = margins.sum(axis=1)
    d2 = ordinal_distances(margins)
    observed = (coinc * d2).sum(axis=(1, 2))
    expected: Array = np.einsum("bc,bck,bk->b", margins, d2, margins)
    alpha: Array = 1.0 - (n - 1) * safe_ratio(observed, expected)
    return alpha


def krippendorff_alpha(
    ratings: RatingsInput,
    *,
    level: Level = "nominal",
    categories: Sequence[Hashable] | None = None,
    bootstrap: int = 0,
    rng: np.random.Generator | None = None,
) -> AgreementResult:
    """Return Krippendorff's alpha; nan when no unit has two ratings or all pairable values are equal.

    ``level`` defaults to nominal (the ``krippendorff`` package defaults to interval). Ordinal distances
    follow the category order (sorted values, or ``categories`` when given).
    """
    if level not in LEVELS:
        raise ValueError(f"level must be one of {', '.join(LEVELS)}, got {level!r}")
    table = counted_ratings(ratings, categories=categories)
    require_raters(table, 2, "krippendorff_alpha")
    q = len(table.categories)
    delta2 = None if level == "ordinal" else distance_matrix(table, level)
    counts, weights = unique_rows(table.category_counts())
    features = _features(counts, delta2)
    finalize = partial(_ordinal_alpha, q=q) if delta2 is None else partial(_fixed_alpha, delta2=delta2)
    value, ci = unit_bootstrap(features, weights, finalize, bootstrap, rng)
    pairable = int(counts.sum(axis=1)[counts.sum(axis=1) >= 2] @ weights[counts.sum(axis=1) >= 2])
    return AgreementResult(
        metric="krippendorff_alpha",
        value=value,
        n_units=table.n_units,
        n_raters=len(table.raters),
        n_ratings=table.n_ratings,
        ci=ci,
        counts={"pairable_values": pairable},
    )
