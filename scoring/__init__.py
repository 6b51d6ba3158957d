"""Pure statistics for pairwise evaluation: rankings and inter-rater agreement. No Django here.

The agreement statistics are imported on first use, so that ``python -m scoring rank`` loads only what it needs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Submodules named like their main function must be bound first, as the function.
from scoring.battles import OUTCOMES, BattleCounts, aggregate_battles
from scoring.bradley_terry import Leaderboard, ModelRating, bradley_terry, bradley_terry_from_counts
from scoring.elo import EloRating, EloResult, elo
from scoring.loaders import BattleFilter, InputError, read_battle_counts, read_battles, read_ratings

if TYPE_CHECKING:
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
    from scoring.krippendorff import krippendorff_alpha
    from scoring.llm_agreement import LooModeAgreement, MTBenchAgreement, loo_mode_agreement, mtbench_agreement
    from scoring.position import PositionBias, PositionConsistency, position_bias, position_consistency
    from scoring.ppi import PPIData, PPILeaderboard, PPIRating, ppi_bradley_terry, ppi_leaderboard
    from scoring.ratings import RatingTable, rating_table, rating_table_from_matrix

_EXPORTS = {
    "AgreementResult": "scoring.agreement",
    "LooModeAgreement": "scoring.llm_agreement",
    "MTBenchAgreement": "scoring.llm_agreement",
    "PPIData": "scoring.ppi",
    "PPILeaderboard": "scoring.ppi",
    "PPIRating": "scoring.ppi",
    "PositionBias": "scoring.position",
    "PositionConsistency": "scoring.position",
    "RatingTable": "scoring.ratings",
    "bootstrap_ci": "scoring.agreement",
    "brennan_prediger": "scoring.agreement",
    "cohen_kappa": "scoring.agreement",
    "conger_kappa": "scoring.agreement",
    "fleiss_kappa": "scoring.agreement",
    "gwet_ac1": "scoring.agreement",
    "krippendorff_alpha": "scoring.krippendorff",
    "loo_mode_agreement": "scoring.llm_agreement",
    "mtbench_agreement": "scoring.llm_agreement",
    "percent_agreement": "scoring.agreement",
    "position_bias": "scoring.position",
    "position_consistency": "scoring.position",
    "ppi_bradley_terry": "scoring.ppi",
    "ppi_leaderboard": "scoring.ppi",
    "rating_table": "scoring.ratings",
    "rating_table_from_matrix": "scoring.ratings",
    "scott_pi": "scoring.agreement",
}

__all__ = [
    "OUTCOMES",
    "AgreementResult",
    "BattleCounts",
    "BattleFilter",
    "EloRating",
    "EloResult",
    "InputError",
    "Leaderboard",
    "LooModeAgreement",
    "MTBenchAgreement",
    "ModelRating",
    "PPIData",
    "PPILeaderboard",
    "PPIRating",
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
    "ppi_bradley_terry",
    "ppi_leaderboard",
    "rating_table",
    "rating_table_from_matrix",
    "read_battle_counts",
    "read_battles",
    "read_ratings",
    "scott_pi",
]


def __getattr__(name: str) -> Any:
    """Import an exported name from its module on first use."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'scoring' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
