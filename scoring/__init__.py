"""Pure statistics for pairwise evaluation: rankings and inter-rater agreement. No Django here."""

from __future__ import annotations

from scoring.battles import OUTCOMES, BattleCounts, aggregate_battles
from scoring.bradley_terry import Leaderboard, ModelRating, bradley_terry, bradley_terry_from_counts
from scoring.elo import EloRating, EloResult, elo

__all__ = [
    "OUTCOMES",
    "BattleCounts",
    "EloRating",
    "EloResult",
    "Leaderboard",
    "ModelRating",
    "aggregate_battles",
    "bradley_terry",
    "bradley_terry_from_counts",
    "elo",
]
