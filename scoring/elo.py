"""Online Elo ratings with Chatbot Arena's defaults (K=4, base 10, scale 400, initial 1000)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from scoring.battles import Battle, outcome_code

_SCORE_A = {0: 1.0, 1: 0.0, 2: 0.5, 3: 0.5}


@dataclass(frozen=True)
class EloRating:
    """One model's online Elo rating and its number of battles."""

    model: str
    rating: float
    votes: int


@dataclass(frozen=True)
class EloResult:
    """Online Elo ratings, highest first."""

    ratings: list[EloRating]
    k: float
    base: float
    scale: float
    initial: float

    def as_dict(self) -> dict[str, float]:
        """Return a model -> rating mapping."""
        return {row.model: row.rating for row in self.ratings}


def elo(
    battles: Iterable[Battle],
    *,
    k: float = 4.0,
    base: float = 10.0,
    scale: float = 400.0,
    initial: float = 1000.0,
) -> EloResult:
    """Run online Elo over battles in the given order; ties (both labels) score one half."""
    rating: dict[str, float] = {}
    votes: dict[str, int] = {}
    for model_a, model_b, winner in battles:
        score_a = _SCORE_A[outcome_code(winner)]
        ra = rating.get(model_a, initial)
        rb = rating.get(model_b, initial)
        expected_a = 1.0 / (1.0 + base ** ((rb - ra) / scale))
        rating[model_a] = ra + k * (score_a - expected_a)
        rating[model_b] = rb + k * ((1.0 - score_a) - (1.0 - expected_a))
        votes[model_a] = votes.get(model_a, 0) + 1
        votes[model_b] = votes.get(model_b, 0) + 1
    rows = [EloRating(model, value, votes[model]) for model, value in rating.items()]
    rows.sort(key=lambda row: (-row.rating, row.model))
    return EloResult(rows, k, base, scale, initial)
