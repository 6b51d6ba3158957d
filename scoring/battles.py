"""Pairwise battle outcomes aggregated into per-pair counts."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

MODEL_A = "model_a"
MODEL_B = "model_b"
TIE = "tie"
TIE_BOTHBAD = "tie (bothbad)"
OUTCOMES = (MODEL_A, MODEL_B, TIE, TIE_BOTHBAD)
_OUTCOME_CODE = {label: code for code, label in enumerate(OUTCOMES)}

Battle = tuple[str, str, str]
IntMatrix = NDArray[np.int64]


@dataclass(frozen=True, eq=False)
class BattleCounts:
    """Battle counts per ordered model pair.

    ``wins[i, j]`` counts battles model ``i`` won against model ``j`` (from either side); ``ties`` and
    ``ties_bothbad`` are the symmetric matrices of the two tie labels. Which side a model was shown on is not
    kept: the Bradley-Terry model has no position term.
    """

    models: tuple[str, ...]
    wins: IntMatrix
    ties: IntMatrix
    ties_bothbad: IntMatrix

    def __post_init__(self) -> None:
        m = len(self.models)
        if len(set(self.models)) != m:
            raise ValueError("model names must be unique")
        for name in ("wins", "ties", "ties_bothbad"):
            matrix = getattr(self, name)
            if matrix.shape != (m, m):
                raise ValueError(f"{name} must be a {m}x{m} matrix, got shape {matrix.shape}")
            if (matrix < 0).any():
                raise ValueError(f"{name} must not contain negative counts")
            if np.diagonal(matrix).any():
                raise ValueError(f"{name} has battles of a model against itself")
        for name in ("ties", "ties_bothbad"):
            matrix = getattr(self, name)
            if not np.array_equal(matrix, matrix.T):
                raise ValueError(f"{name} must be symmetric")

    @classmethod
    def from_arrays(
        cls,
        models: Sequence[str],
        wins: NDArray[np.integer] | Sequence[Sequence[int]],
        ties: NDArray[np.integer] | Sequence[Sequence[int]] | None = None,
        ties_bothbad: NDArray[np.integer] | Sequence[Sequence[int]] | None = None,
    ) -> BattleCounts:
        """Build counts from dense matrices (e.g. aggregated in SQL); ties default to none."""
        m = len(models)
        zeros = np.zeros((m, m), dtype=np.int64)
        return cls(
            models=tuple(str(x) for x in models),
            wins=np.asarray(wins, dtype=np.int64),
            ties=zeros.copy() if ties is None else np.asarray(ties, dtype=np.int64),
            ties_bothbad=zeros.copy() if ties_bothbad is None else np.asarray(ties_bothbad, dtype=np.int64),
        )

    @property
    def all_ties(self) -> IntMatrix:
        """Return ties of both labels combined."""
        return self.ties + self.ties_bothbad

    @property
    def totals(self) -> IntMatrix:
        """Return the number of battles per model pair (symmetric)."""
        return self.wins + self.wins.T + self.all_ties

    @property
    def n_battles(self) -> int:
        """Return the total number of battles."""
        return int(self.wins.sum() + np.triu(self.all_ties).sum())

    def model_totals(self) -> dict[str, NDArray[np.int64]]:
        """Return per-model votes, wins, losses, ties and bothbad ties."""
        ties = self.ties.sum(axis=1)
        bothbad = self.ties_bothbad.sum(axis=1)
        wins = self.wins.sum(axis=1)
        losses = self.wins.sum(axis=0)
        return {
            "votes": wins + losses + ties + bothbad,
            "wins": wins,
            "losses": losses,
            "ties": ties + bothbad,
            "ties_bothbad": bothbad,
        }


def outcome_code(label: str) -> int:
    """Return the code of an Arena outcome label; raise ValueError naming an unknown label."""
    try:
        return _OUTCOME_CODE[label]
    except (KeyError, TypeError):
        raise ValueError(f"unknown winner label {label!r} (expected one of {', '.join(OUTCOMES)})") from None


def counts_from_tally(tally: Mapping[tuple[str, str, str], int]) -> BattleCounts:
    """Build BattleCounts from a mapping (model_a, model_b, winner) -> number of battles."""
    names = sorted({name for a, b, _ in tally for name in (a, b)})
    index = {name: i for i, name in enumerate(names)}
    m = len(names)
    flat = np.zeros(m * m * 4, dtype=np.int64)
    for (a, b, winner), count in tally.items():
        code = outcome_code(winner)
        if a == b:
            raise ValueError(f"battle of model {a!r} against itself")
        flat[(index[a] * m + index[b]) * 4 + code] += count
    return _counts_from_cells(names, flat.reshape(m, m, 4))


def _counts_from_cells(names: Sequence[str], cells: NDArray[np.int64]) -> BattleCounts:
    """Fold (first model, second model, outcome) cell counts into BattleCounts."""
    wins = cells[:, :, 0] + cells[:, :, 1].T
    ties = cells[:, :, 2] + cells[:, :, 2].T
    bothbad = cells[:, :, 3] + cells[:, :, 3].T
    return BattleCounts(models=tuple(names), wins=wins, ties=ties, ties_bothbad=bothbad)


def aggregate_battles(battles: Iterable[Battle]) -> BattleCounts:
    """Aggregate (model_a, model_b, winner) triples into BattleCounts."""
    tally: Counter[tuple[str, str, str]] = Counter()
    for battle in battles:
        tally[(battle[0], battle[1], battle[2])] += 1
    return counts_from_tally(tally)


def aggregate_codes(
    names: Sequence[str],
    first: NDArray[np.integer],
    second: NDArray[np.integer],
    outcome: NDArray[np.integer],
    weights: NDArray[np.integer] | None = None,
) -> BattleCounts:
    """Aggregate integer-coded battles (indices into ``names``, outcome codes 0-3, optional multiplicities)."""
    m = len(names)
    if len(first) and (np.any(first == second)):
        bad = int(np.flatnonzero(first == second)[0])
        raise ValueError(f"battle of model {names[int(first[bad])]!r} against itself")
    keys = (first.astype(np.int64) * m + second.astype(np.int64)) * 4 + outcome.astype(np.int64)
    cells = np.bincount(keys, weights=weights, minlength=m * m * 4)
    return _counts_from_cells(names, np.rint(cells).astype(np.int64).reshape(m, m, 4))
