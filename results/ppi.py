"""A campaign's human + judge leaderboard by prediction-powered inference (``scoring.ppi``).

Each comparison is one unit: its human score is the mean of the selected humans' ratings of it and its judge score
the mean of the selected judges' (1 output_a won, 0 output_b won, 0.5 a tie or both bad). Comparisons both rated
are labelled, those only judges rated unlabelled; those only humans rated are counted and left out. The
per-comparison means are grouped into (model pair, human score, judge score) cells in SQL, so memory depends on
the number of distinct cells, not of ratings.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from annotation.models import Campaign
from results.raters import RaterSelection
from results.selectors import OUTPUT_JOINS, VALUE_SQL, fetch_all, ratings_from
from scoring.ppi import PPIData, ppi_leaderboard

SCORE_SQL = f"CASE {VALUE_SQL} WHEN 'a' THEN 1.0 WHEN 'b' THEN 0.0 ELSE 0.5 END"


def comparison_cells(campaign: Campaign, selection: RaterSelection) -> list[tuple[str, str, Any, Any, int]]:
    """Return (model of output_a, model of output_b, human mean or None, judge mean or None, comparisons)."""
    source, params = ratings_from(campaign, selection, joins=OUTPUT_JOINS, rater=False)
    sql = f"""
        SELECT ma, mb, human, judge, count(*) FROM (
            SELECT xa.model_name AS ma, xb.model_name AS mb,
                   avg({SCORE_SQL}) FILTER (WHERE r.rater_kind = 'human') AS human,
                   avg({SCORE_SQL}) FILTER (WHERE r.rater_kind = 'judge') AS judge
            {source} AND xa.model_name IS NOT NULL AND xb.model_name IS NOT NULL AND xa.model_name <> xb.model_name
            GROUP BY c.id, xa.model_name, xb.model_name
        ) per_comparison GROUP BY 1, 2, 3, 4"""
    return [(ma, mb, human, judge, int(n)) for ma, mb, human, judge, n in fetch_all(sql, params)]


def compute_ppi_leaderboard(campaign: Campaign, selection: RaterSelection) -> dict[str, Any]:
    """Fit the prediction-powered Bradley-Terry leaderboard; return a JSON-ready report (warnings when it cannot)."""
    started = time.perf_counter()
    cells = comparison_cells(campaign, selection)
    report: dict[str, Any] = {
        "campaign": campaign.slug,
        "raters": selection.key,
        "combine": "ppi",
        "method": "bradley_terry_ppi",
        "ratings": [],
        "models": [],
        "warnings": [],
        "n_labelled": sum(n for *_, h, j, n in cells if h is not None and j is not None),
        "n_unlabelled": sum(n for *_, h, j, n in cells if h is None and j is not None),
        "human_only_comparisons": sum(n for *_, h, j, n in cells if j is None),
    }
    data = _data(cells)
    try:
        if data is None:
            raise ValueError("no comparisons rated by both humans and a judge between named models")
        board = ppi_leaderboard(data)
    except ValueError as exc:
        report["warnings"].append(str(exc))
        return report
    report.update(board.to_dict())
    report["models"] = [row["model"] for row in report["ratings"]]
    if report["human_only_comparisons"]:
        report["warnings"].append(
            f"{report['human_only_comparisons']} comparison(s) rated by humans but by no judge are left out"
        )
    report["seconds"] = round(time.perf_counter() - started, 4)
    return report


def _data(cells: list[tuple[str, str, Any, Any, int]]) -> PPIData | None:
    """Expand the cells into PPIData (one row per cell, weighted by its count)."""
    lab = [(a, b, float(h), float(j), n) for a, b, h, j, n in cells if h is not None and j is not None]
    unl = [(a, b, float(j), n) for a, b, h, j, n in cells if h is None and j is not None]
    if not lab:
        return None
    models = sorted({str(name) for row in [*lab, *unl] for name in row[:2]})
    index = {name: i for i, name in enumerate(models)}

    def column(rows: list[Any], k: int) -> np.ndarray:
        if k < 2:
            return np.array([index[row[k]] for row in rows], dtype=np.intp)
        return np.array([row[k] for row in rows], dtype=np.float64)

    # Cells carry counts: repeat each row so PPIData's own aggregation restores them.
    lab_rep = np.repeat(np.arange(len(lab)), [row[4] for row in lab])
    unl_rep = np.repeat(np.arange(len(unl)), [row[3] for row in unl])
    return PPIData.from_arrays(
        models,
        (column(lab, 0)[lab_rep], column(lab, 1)[lab_rep], column(lab, 2)[lab_rep], column(lab, 3)[lab_rep]),
        (column(unl, 0)[unl_rep], column(unl, 1)[unl_rep], column(unl, 2)[unl_rep]),
    )
