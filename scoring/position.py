"""Position bias of pairwise judges: the share of left choices, and consistency when the order is swapped.

Verdicts are positional Arena labels: ``model_a`` (the left/first answer), ``model_b`` (right/second), ``tie``
or ``tie (bothbad)``; ``left``/``right``/``first``/``second`` are accepted as synonyms. Intervals are 95%
Wilson score intervals.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

Z95 = 1.959963984540054
_LEFT = {"model_a", "left", "first", "a"}
_RIGHT = {"model_b", "right", "second", "b"}
_TIE = {"tie", "tie (bothbad)"}


def _side(verdict: str) -> str:
    """Return 'left', 'right' or 'tie' for a verdict label; raise ValueError naming an unknown one."""
    if verdict in _LEFT:
        return "left"
    if verdict in _RIGHT:
        return "right"
    if verdict in _TIE:
        return "tie"
    raise ValueError(f"unknown verdict label {verdict!r} (expected model_a, model_b, tie or tie (bothbad))")


def wilson_interval(successes: int, trials: int, z: float = Z95) -> tuple[float, float]:
    """Return the Wilson score interval of a binomial proportion (nan, nan when there are no trials)."""
    if trials == 0:
        return (float("nan"), float("nan"))
    p = successes / trials
    denom = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


@dataclass(frozen=True)
class PositionBias:
    """Share of decisive verdicts that chose the left (first) answer."""

    value: float
    lower: float
    upper: float
    left: int
    right: int
    ties: int


def position_bias(verdicts: Iterable[str]) -> PositionBias:
    """Return the share of left choices among decisive verdicts (0.5 means no position bias)."""
    counts = {"left": 0, "right": 0, "tie": 0}
    for verdict in verdicts:
        counts[_side(verdict)] += 1
    decisive = counts["left"] + counts["right"]
    lower, upper = wilson_interval(counts["left"], decisive)
    value = counts["left"] / decisive if decisive else float("nan")
    return PositionBias(value, lower, upper, counts["left"], counts["right"], counts["tie"])


@dataclass(frozen=True)
class PositionConsistency:
    """How often a judge gives the same verdict when the two answers swap places."""

    value: float
    lower: float
    upper: float
    consistent: int
    favours_first: int
    favours_second: int
    other: int
    pairs: int


def position_consistency(verdict_pairs: Iterable[tuple[str, str]]) -> PositionConsistency:
    """Return the share of consistent verdicts over (original order, swapped order) positional verdict pairs.

    Consistent: the swapped verdict is the mirror image (model_a <-> model_b, tie <-> tie). ``favours_first``
    counts pairs that chose the first position both times, ``favours_second`` the second both times; ``other``
    counts a tie in one order and a win in the other.
    """
    consistent = first = second = other = 0
    for original, swapped in verdict_pairs:
        a, b = _side(original), _side(swapped)
        if (a, b) in {("left", "right"), ("right", "left"), ("tie", "tie")}:
            consistent += 1
        elif (a, b) == ("left", "left"):
            first += 1
        elif (a, b) == ("right", "right"):
            second += 1
        else:
            other += 1
    pairs = consistent + first + second + other
    lower, upper = wilson_interval(consistent, pairs)
    value = consistent / pairs if pairs else float("nan")
    return PositionConsistency(value, lower, upper, consistent, first, second, other, pairs)
