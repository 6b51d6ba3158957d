"""Position bias and order-swap consistency."""

from __future__ import annotations

import math

import pytest

from scoring import position_bias, position_consistency
from scoring.position import wilson_interval


def test_position_bias_counts_left_choices_among_decisive_verdicts() -> None:
    result = position_bias(["model_a"] * 30 + ["model_b"] * 10 + ["tie", "tie (bothbad)"])
    assert (result.left, result.right, result.ties) == (30, 10, 2)
    assert result.value == pytest.approx(0.75)
    assert result.lower < 0.75 < result.upper


def test_wilson_interval_matches_the_closed_form() -> None:
    low, high = wilson_interval(30, 40)
    z = 1.959963984540054
    p, n = 0.75, 40
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    assert (low, high) == pytest.approx((centre - half, centre + half))
    assert all(math.isnan(x) for x in wilson_interval(0, 0))


def test_position_consistency_classifies_swapped_verdicts() -> None:
    pairs = [
        ("model_a", "model_b"),
        ("tie", "tie"),
        ("model_a", "model_a"),
        ("model_b", "model_b"),
        ("tie", "model_a"),
    ]
    result = position_consistency(pairs)
    assert (result.consistent, result.favours_first, result.favours_second, result.other) == (2, 1, 1, 1)
    assert result.value == pytest.approx(0.4)


def test_unknown_verdicts_are_rejected() -> None:
    with pytest.raises(ValueError, match="'up'"):
        position_bias(["up"])
