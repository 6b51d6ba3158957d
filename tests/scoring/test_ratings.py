"""RatingTable construction from triples and matrices."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from scoring import rating_table, rating_table_from_matrix
from scoring.ratings import rating_codes


def test_rating_table_codes_sorted_categories_and_skips_missing_values() -> None:
    table = rating_table([("u1", "b", 3), ("u1", "a", 1), ("u2", "a", None), ("u2", "b", float("nan")), ("u3", "a", 2)])
    assert table.units == ("u1", "u3")
    assert table.raters == ("a", "b")
    assert table.categories == (1, 2, 3)
    assert table.codes.tolist() == [[0, 2], [1, -1]]
    assert table.n_ratings == 3
    assert table.category_counts().tolist() == [[1, 0, 1], [0, 1, 0]]


def test_given_categories_set_the_order_and_must_cover_the_data() -> None:
    table = rating_table([(1, "a", "low"), (1, "b", "high")], categories=["low", "mid", "high"])
    assert table.categories == ("low", "mid", "high")
    with pytest.raises(ValueError, match="'high'"):
        rating_table([(1, "a", "high")], categories=["low"])


def test_matrix_input_drops_units_without_ratings() -> None:
    table = rating_table_from_matrix(np.array([[1.0, np.nan], [np.nan, np.nan], [2.0, 2.0]]))
    assert table.units == (0, 2)
    assert table.codes.tolist() == [[0, -1], [1, 1]]
    with pytest.raises(ValueError, match="numeric"):
        rating_table([(1, "a", "x")]).numeric_categories()


def random_votes(seed: int, *, n: int = 300, one_per_rater: bool = False) -> tuple[list[tuple[int, str, str]], Any]:
    """Return random (unit, rater, value) votes and the same as RatingCodes (repeats allowed unless told)."""
    rng = np.random.default_rng(seed)
    units, raters, values = rng.integers(0, 40, n) * 7 + 3, rng.integers(0, 6, n), rng.integers(0, 4, n)
    if one_per_rater:
        _, first = np.unique(units * 10 + raters, return_index=True)
        keep = np.sort(first)
        units, raters, values = units[keep], raters[keep], values[keep]
    names, cats = tuple(f"r{i}" for i in range(6)), ("a", "b", "both_bad", "tie")
    triples = [(int(u), names[r], cats[v]) for u, r, v in zip(units, raters, values, strict=True)]
    return triples, rating_codes(units, raters, values, raters=names, categories=cats)


def test_rating_codes_number_units_by_first_appearance_and_keep_only_present_raters_and_categories() -> None:
    codes = rating_codes(
        np.array([90, 10, 90, 50]), np.array([2, 0, 0, 2]), np.array([3, 0, 3, 0]), raters="xyz", categories="abcd"
    )
    assert codes.units.tolist() == [90, 10, 50]
    assert codes.unit.tolist() == [0, 1, 0, 2]
    assert (codes.raters, codes.categories) == (("x", "z"), ("a", "d"))
    assert codes.rater.tolist() == [1, 0, 0, 1]
    assert codes.category_counts().tolist() == [[0, 2], [1, 0], [1, 0]]


def test_rating_codes_give_the_same_dense_table_as_their_triples() -> None:
    triples, codes = random_votes(1, one_per_rater=True)
    table, dense = rating_table(triples), rating_table(codes)
    assert (dense.units, dense.raters, dense.categories) == (table.units, table.raters, table.categories)
    assert dense.codes.tolist() == table.codes.tolist()


def test_rating_codes_refuse_out_of_range_codes_and_dense_tables_refuse_repeats() -> None:
    with pytest.raises(ValueError, match=r"rater codes must lie in \[0, 2\)"):
        rating_codes(np.array([1]), np.array([2]), np.array([0]), raters="ab", categories="a")
    with pytest.raises(ValueError, match="rated unit 5 more than once"):
        rating_table(rating_codes(np.array([5, 5]), np.array([0, 0]), np.array([0, 1]), raters="a", categories="ab"))
