"""Aggregating battles into counts."""

from __future__ import annotations

import numpy as np
import pytest

from scoring import BattleCounts, aggregate_battles


def test_aggregate_battles_counts_wins_from_either_side_and_keeps_bothbad_apart() -> None:
    counts = aggregate_battles(
        [
            ("a", "b", "model_a"),
            ("b", "a", "model_a"),
            ("a", "b", "model_b"),
            ("a", "b", "tie"),
            ("b", "a", "tie (bothbad)"),
        ]
    )
    assert counts.models == ("a", "b")
    assert counts.wins.tolist() == [[0, 1], [2, 0]]
    assert counts.ties.tolist() == [[0, 1], [1, 0]]
    assert counts.ties_bothbad.tolist() == [[0, 1], [1, 0]]
    assert counts.n_battles == 5
    totals = counts.model_totals()
    assert totals["votes"].tolist() == [5, 5]
    assert totals["ties"].tolist() == [2, 2]


def test_aggregate_battles_rejects_an_unknown_label_naming_it() -> None:
    with pytest.raises(ValueError, match="'draw'"):
        aggregate_battles([("a", "b", "draw")])


def test_aggregate_battles_rejects_a_model_against_itself() -> None:
    with pytest.raises(ValueError, match="against itself"):
        aggregate_battles([("a", "a", "tie")])


def test_from_arrays_validates_shapes_and_symmetry() -> None:
    with pytest.raises(ValueError, match="symmetric"):
        BattleCounts.from_arrays(["a", "b"], [[0, 1], [0, 0]], ties=[[0, 1], [0, 0]])
    with pytest.raises(ValueError, match="2x2"):
        BattleCounts.from_arrays(["a", "b"], np.zeros((3, 3), dtype=int))
    with pytest.raises(ValueError, match="negative"):
        BattleCounts.from_arrays(["a", "b"], [[0, -1], [0, 0]])
