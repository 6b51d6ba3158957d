"""Ratings as (unit, rater, value) triples and their dense units x raters form."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

Triple = tuple[Hashable, Hashable, Hashable]
MISSING = -1


@dataclass(frozen=True, eq=False)
class RatingTable:
    """Ratings coded as category indices: ``codes[u, r]`` is the category of unit u by rater r, or -1."""

    units: tuple[Hashable, ...]
    raters: tuple[Hashable, ...]
    categories: tuple[Hashable, ...]
    codes: NDArray[np.int64]

    @property
    def n_ratings(self) -> int:
        """Return the number of ratings present."""
        return int((self.codes >= 0).sum())

    def category_counts(self) -> NDArray[np.int64]:
        """Return units x categories counts of ratings."""
        n_units, q = self.codes.shape[0], len(self.categories)
        rows = np.broadcast_to(np.arange(n_units)[:, None], self.codes.shape)
        present = self.codes >= 0
        flat = rows[present] * q + self.codes[present]
        return np.bincount(flat, minlength=n_units * q).reshape(n_units, q).astype(np.int64)

    def numeric_categories(self) -> NDArray[np.float64]:
        """Return the categories as floats; raise ValueError if they are not numbers."""
        try:
            return np.array([float(c) for c in self.categories], dtype=np.float64)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise ValueError("this level of measurement needs numeric values") from None


RatingsInput = RatingTable | Iterable[Sequence[Any]]


def _ordered(values: Iterable[Hashable]) -> list[Hashable]:
    """Return distinct values sorted when comparable, else in first-seen order."""
    distinct = list(dict.fromkeys(values))
    try:
        return sorted(distinct)  # type: ignore[type-var]
    except TypeError:
        return distinct


def _category_list(values: Iterable[Hashable], categories: Sequence[Hashable] | None) -> list[Hashable]:
    """Return the category list: the given one (checked to cover the data) or the observed values."""
    observed = _ordered(values)
    if categories is None:
        return observed
    given = list(dict.fromkeys(categories))
    missing = [v for v in observed if v not in set(given)]
    if missing:
        raise ValueError(f"value {missing[0]!r} is not among the given categories")
    return given


def rating_table(ratings: RatingsInput, *, categories: Sequence[Hashable] | None = None) -> RatingTable:
    """Return a RatingTable from (unit, rater, value) triples (None values count as missing)."""
    if isinstance(ratings, RatingTable):
        return ratings if categories is None else _recode(ratings, categories)
    triples = [(u, r, v) for u, r, v in ratings if v is not None and not _is_nan(v)]
    units = list(dict.fromkeys(u for u, _, _ in triples))
    raters = _ordered(r for _, r, _ in triples)
    cats = _category_list((v for _, _, v in triples), categories)
    unit_ix = {u: i for i, u in enumerate(units)}
    rater_ix = {r: i for i, r in enumerate(raters)}
    cat_ix = {c: i for i, c in enumerate(cats)}
    codes = np.full((len(units), len(raters)), MISSING, dtype=np.int64)
    for u, r, v in triples:
        cell = (unit_ix[u], rater_ix[r])
        if codes[cell] != MISSING:
            raise ValueError(f"rater {r!r} rated unit {u!r} more than once")
        codes[cell] = cat_ix[v]
    return RatingTable(tuple(units), tuple(raters), tuple(cats), codes)


def _is_nan(value: Any) -> bool:
    """Return whether value is a float nan."""
    return isinstance(value, float) and value != value


def _recode(table: RatingTable, categories: Sequence[Hashable]) -> RatingTable:
    """Return the table coded against a new category list."""
    cats = _category_list(table.categories, categories)
    mapping = np.array([cats.index(c) for c in table.categories] + [MISSING], dtype=np.int64)
    return RatingTable(table.units, table.raters, tuple(cats), mapping[table.codes])


def rating_table_from_matrix(
    matrix: NDArray[Any] | Sequence[Sequence[Any]],
    *,
    units: Sequence[Hashable] | None = None,
    raters: Sequence[Hashable] | None = None,
    categories: Sequence[Hashable] | None = None,
) -> RatingTable:
    """Return a RatingTable from a units x raters numeric matrix with nan for missing ratings."""
    values = np.asarray(matrix, dtype=np.float64)
    if values.ndim != 2:
        raise ValueError("expected a units x raters matrix")
    present = ~np.isnan(values)
    observed, inverse = np.unique(values[present], return_inverse=True)
    cats = _category_list(observed.tolist(), categories)
    codes = np.full(values.shape, MISSING, dtype=np.int64)
    remap = np.array([cats.index(c) for c in observed.tolist()], dtype=np.int64)
    codes[present] = remap[inverse] if len(remap) else inverse
    keep = present.any(axis=1)
    unit_ids = tuple(range(values.shape[0])) if units is None else tuple(units)
    rater_ids = tuple(range(values.shape[1])) if raters is None else tuple(raters)
    kept = [bool(k) for k in np.asarray(keep).ravel()]
    return RatingTable(
        tuple(u for u, k in zip(unit_ids, kept, strict=True) if k),
        rater_ids,
        tuple(cats),
        codes[keep],
    )
