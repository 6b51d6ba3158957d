"""RatingTable construction from triples and matrices."""

from __future__ import annotations

import numpy as np
import pytest

from scoring import rating_table, rating_table_from_matrix


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
