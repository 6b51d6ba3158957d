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

    @property
    def n_units(self) -> int:
        """Return the number of units."""
        return len(self.units)

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


@dataclass(frozen=True, eq=False)
class RatingCodes:
    """Ratings as parallel integer arrays in input order, the compact form of many (unit, rater, value) triples.

    Rating ``i`` is unit ``units[unit[i]]`` rated ``categories[value[i]]`` by ``raters[rater[i]]``. Build it with
    ``rating_codes``, which keeps only the units, raters and categories present (as triples would), so every
    metric gives the same result on it as on the triples, without a dense units x raters table where the metric
    only needs per-unit counts. A rater may appear more than once on a unit (MT-Bench votes); metrics that need
    one rating per rater and unit check it.
    """

    unit: NDArray[np.int64]
    rater: NDArray[np.int64]
    value: NDArray[np.int64]
    units: NDArray[Any]
    raters: tuple[Hashable, ...]
    categories: tuple[Hashable, ...]

    @property
    def n_ratings(self) -> int:
        """Return the number of ratings."""
        return len(self.unit)

    @property
    def n_units(self) -> int:
        """Return the number of units."""
        return len(self.units)

    def category_counts(self) -> NDArray[np.int64]:
        """Return units x categories counts of ratings."""
        q = len(self.categories)
        counts = np.bincount(self.unit * q + self.value, minlength=self.n_units * q)
        return counts.reshape(self.n_units, q).astype(np.int64)

    def numeric_categories(self) -> NDArray[np.float64]:
        """Return the categories as floats; raise ValueError if they are not numbers."""
        return RatingTable((), self.raters, self.categories, np.zeros((0, 0), np.int64)).numeric_categories()

    def check_one_per_rater(self) -> None:
        """Raise ValueError when a rater rated a unit more than once."""
        key = self.unit * max(len(self.raters), 1) + self.rater
        ordered = np.sort(key)
        repeated = np.flatnonzero(ordered[1:] == ordered[:-1])
        if len(repeated):
            unit, rater = divmod(int(ordered[repeated[0]]), max(len(self.raters), 1))
            label = self.units[unit]
            label = label.item() if isinstance(label, np.generic) else label
            raise ValueError(f"rater {self.raters[rater]!r} rated unit {label!r} more than once")


def rating_codes(
    unit: NDArray[Any],
    rater: NDArray[Any],
    value: NDArray[Any],
    *,
    raters: Sequence[Hashable],
    categories: Sequence[Hashable],
) -> RatingCodes:
    """Return RatingCodes of parallel arrays: ``unit`` holds unit ids (any integers), ``rater`` and ``value``
    indices into ``raters`` and ``categories``.

    Units are numbered in order of first appearance; raters and categories not present are dropped, the others
    keep the given order (give them sorted to match what triples give).
    """
    unit, rater, value = (np.asarray(a).ravel() for a in (unit, rater, value))
    if not len(unit) == len(rater) == len(value):
        raise ValueError("unit, rater and value must have the same length")
    for name, codes, size in (("rater", rater, len(raters)), ("value", value, len(categories))):
        if len(codes) and (int(codes.min()) < 0 or int(codes.max()) >= size):
            raise ValueError(f"{name} codes must lie in [0, {size})")
    ids, first, inverse = np.unique(unit, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty(len(order), np.int64)
    rank[order] = np.arange(len(order))
    rater_map, kept_raters = _present(rater, len(raters))
    value_map, kept_values = _present(value, len(categories))
    return RatingCodes(
        unit=rank[inverse.ravel()] if len(unit) else np.zeros(0, np.int64),
        rater=rater_map[rater],
        value=value_map[value],
        units=ids[order],
        raters=tuple(raters[i] for i in kept_raters),
        categories=tuple(categories[i] for i in kept_values),
    )


def _present(codes: NDArray[Any], size: int) -> tuple[NDArray[np.int64], list[int]]:
    """Return a map from old to new codes keeping only the codes present, and the kept old codes."""
    present = np.bincount(codes.astype(np.int64), minlength=size) > 0
    mapping = np.cumsum(present).astype(np.int64) - 1
    return mapping, [int(i) for i in np.flatnonzero(present)]


RatingsInput = RatingTable | RatingCodes | Iterable[Sequence[Any]]


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
    if isinstance(ratings, RatingCodes):
        return _dense(ratings, categories)
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


def counted_ratings(
    ratings: RatingsInput, *, categories: Sequence[Hashable] | None = None
) -> RatingTable | RatingCodes:
    """Return ratings in a form with per-unit category counts: RatingCodes as they are (checked to hold one
    rating per rater and unit), anything else as a RatingTable."""
    if not isinstance(ratings, RatingCodes):
        return rating_table(ratings, categories=categories)
    ratings.check_one_per_rater()
    if categories is None:
        return ratings
    cats = _category_list(ratings.categories, categories)
    mapping = np.array([cats.index(c) for c in ratings.categories], dtype=np.int64)
    recoded = mapping[ratings.value] if len(mapping) else ratings.value
    return RatingCodes(ratings.unit, ratings.rater, recoded, ratings.units, ratings.raters, tuple(cats))


def _dense(ratings: RatingCodes, categories: Sequence[Hashable] | None) -> RatingTable:
    """Return the dense RatingTable of RatingCodes (units in code order)."""
    ratings.check_one_per_rater()
    codes = np.full((ratings.n_units, len(ratings.raters)), MISSING, dtype=np.int64)
    codes[ratings.unit, ratings.rater] = ratings.value
    table = RatingTable(tuple(ratings.units.tolist()), ratings.raters, ratings.categories, codes)
    return table if categories is None else _recode(table, categories)


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
