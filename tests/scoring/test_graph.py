"""Comparison-graph components and the existence of the Bradley-Terry MLE."""

from __future__ import annotations

import numpy as np

from scoring.graph import component_labels, mle_exists, strong_component_count


def adjacency(n: int, edges: list[tuple[int, int]]) -> np.ndarray:
    """Return a boolean adjacency matrix with the given directed edges."""
    out = np.zeros((n, n), dtype=bool)
    for i, j in edges:
        out[i, j] = True
    return out


def test_component_labels_ignores_direction() -> None:
    count, labels = component_labels(adjacency(5, [(0, 1), (2, 1), (3, 4)]))
    assert count == 2
    assert labels[0] == labels[1] == labels[2] != labels[3] == labels[4]


def test_strong_components_of_a_cycle_and_a_chain() -> None:
    assert strong_component_count(adjacency(3, [(0, 1), (1, 2), (2, 0)])) == 1
    assert strong_component_count(adjacency(3, [(0, 1), (1, 2)])) == 3


def test_mle_exists_only_when_every_component_is_strongly_connected() -> None:
    assert mle_exists(adjacency(4, [(0, 1), (1, 0), (2, 3), (3, 2)]))
    assert not mle_exists(adjacency(3, [(0, 1), (1, 0), (0, 2), (1, 2)]))
