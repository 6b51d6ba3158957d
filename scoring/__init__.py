"""Pure statistics for pairwise evaluation: rankings and inter-rater agreement. No Django here."""

from __future__ import annotations

from scoring.agreement import (
    AgreementResult,
    bootstrap_ci,
    brennan_prediger,
    cohen_kappa,
    conger_kappa,
    fleiss_kappa,
    gwet_ac1,
    percent_agreement,
    scott_pi,
)
from scoring.battles import OUTCOMES, BattleCounts, aggregate_battles
from scoring.bradley_terry import Leaderboard, ModelRating, bradley_terry, bradley_terry_from_counts
from scoring.elo import EloRating, EloResult, elo
from scoring.krippendorff import krippendorff_alpha
from scoring.llm_agreement import LooModeAgreement, MTBenchAgreement, loo_mode_agreement, mtbench_agreement
from scoring.loaders import InputError, read_battle_counts, read_battles, read_ratings
from scoring.position import PositionBias, PositionConsistency, position_bias, position_consistency
from scoring.ratings import RatingTable, rating_table, rating_table_from_matrix

__all__ = [
    "OUTCOMES",
    "AgreementResult",
    "BattleCounts",
    "EloRating",
    "EloResult",
    "InputError",
    "Leaderboard",
    "LooModeAgreement",
    "MTBenchAgreement",
    "ModelRating",
    "PositionBias",
    "PositionConsistency",
    "RatingTable",
    "aggregate_battles",
    "bootstrap_ci",
    "bradley_terry",
    "bradley_terry_from_counts",
    "brennan_prediger",
    "cohen_kappa",
    "conger_kappa",
    "elo",
    "fleiss_kappa",
    "gwet_ac1",
    "krippendorff_alpha",
    "loo_mode_agreement",
    "mtbench_agreement",
    "percent_agreement",
    "position_bias",
    "position_consistency",
    "rating_table",
    "rating_table_from_matrix",
    "read_battle_counts",
    "read_battles",
    "read_ratings",
    "scott_pi",
]
