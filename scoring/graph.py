"""Connected and strongly connected components of small comparison graphs (no scipy.sparse import cost)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


def _adjacency(adjacent: NDArray[np.bool_]) -> list[list[int]]:
    """Return adjacency lists of a boolean matrix."""
    rows, cols = np.nonzero(adjacent)
    ends = np.cumsum(np.bincount(rows, minlength=adjacent.shape[0])).tolist()
    flat = cols.tolist()
    return [flat[start:end] for start, end in zip([0, *ends[:-1]], ends, strict=True)]


def component_labels(adjacent: NDArray[np.bool_]) -> tuple[int, NDArray[np.int32]]:
    """Return the number of connected components of an undirected graph and each node's label."""
    neighbours = _adjacency(adjacent | adjacent.T)
    labels = np.full(len(neighbours), -1, dtype=np.int32)
    count = 0
    for start in range(len(neighbours)):
        if labels[start] >= 0:
            continue
        labels[start] = count
        stack = [start]
        while stack:
            node = stack.pop()
            for nxt in neighbours[node]:
                if labels[nxt] < 0:
                    labels[nxt] = count
                    stack.append(nxt)
        count += 1
    return count, labels


def _finish_order(neighbours: list[list[int]]) -> list[int]:
    """Return nodes in order of DFS completion (first pass of Kosaraju's algorithm)."""
    seen = [False] * len(neighbours)
    order: list[int] = []
    for start in range(len(neighbours)):
        if seen[start]:
            continue
        seen[start] = True
        stack = [(start, iter(neighbours[start]))]
        while stack:
            node, children = stack[-1]
            for nxt in children:
                if not seen[nxt]:
                    seen[nxt] = True
                    stack.append((nxt, iter(neighbours[nxt])))
                    break
            else:
                stack.pop()
                order.append(node)
    return order


def strong_component_count(adjacent: NDArray[np.bool_]) -> int:
    """Return the number of strongly connected components of a directed graph."""
    order = _finish_order(_adjacency(adjacent))
    reverse = _adjacency(adjacent.T)
    assigned = [False] * len(reverse)
    count = 0
    for start in reversed(order):
        if assigned[start]:
            continue
        count += 1
        assigned[start] = True
        stack = [start]
        while stack:
            node = stack.pop()
            for nxt in reverse[node]:
                if not assigned[nxt]:
                    assigned[nxt] = True
                    stack.append(nxt)
    return count


def mle_exists(beats: NDArray[np.bool_]) -> bool:
    """Return whether every component of the 'won or tied against' digraph is strongly connected.

    This is Zermelo's (1929) / Ford's (1957) condition for a finite Bradley-Terry maximum-likelihood estimate.
    """
    return component_labels(beats)[0] == strong_component_count(beats)
