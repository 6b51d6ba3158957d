"""Online Elo with Chatbot Arena's defaults."""

from __future__ import annotations

import pytest

from scoring import elo


def test_elo_updates_by_k_times_surprise_with_arena_defaults() -> None:
    result = elo([("a", "b", "model_a"), ("a", "b", "tie")])
    ratings = result.as_dict()
    # First battle: equal ratings, expected 0.5, so a gains K * 0.5 = 2.
    first_a, first_b = 1002.0, 998.0
    expected_a = 1 / (1 + 10 ** ((first_b - first_a) / 400))
    assert ratings["a"] == pytest.approx(first_a + 4 * (0.5 - expected_a))
    assert ratings["b"] == pytest.approx(first_b - 4 * (0.5 - expected_a))
    assert [row.model for row in result.ratings] == ["a", "b"]
    assert result.k == 4
    assert result.base == 10
    assert result.scale == 400
    assert result.initial == 1000


def test_elo_treats_bothbad_as_a_tie_and_rejects_unknown_labels() -> None:
    assert elo([("a", "b", "tie (bothbad)")]).as_dict() == {"a": 1000.0, "b": 1000.0}
    with pytest.raises(ValueError, match="'win'"):
        elo([("a", "b", "win")])


def test_elo_is_zero_sum_and_respects_parameters() -> None:
    battles = [("a", "b", "model_a"), ("b", "c", "model_b"), ("c", "a", "model_a")] * 5
    ratings = elo(battles, k=32, initial=1500).as_dict()
    assert sum(ratings.values()) == pytest.approx(4500)
