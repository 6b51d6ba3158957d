"""Rater quality of a campaign: the anomalous-rater tests and the rater models of ``scoring`` on its ratings.

Selectors load the ratings into ``scoring``'s plain shapes; the statistics are ``scoring.rater_flags`` (fit and
left-bias tests, competence) and ``scoring.raters`` (Dawid-Skene posterior of each comparison).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from annotation.models import Campaign
from results.rater_mix import rater_mix
from results.raters import RaterSelection
from results.selectors import A_LEFT_SQL, OUTPUT_JOINS, PUBLIC_RATER_SQL, ratings_from, stream_rows
from scoring.rater_flags import Correction, RaterVote, rater_report
from scoring.raters import dawid_skene

VERDICT_CLASSES = ("a", "tie", "both_bad", "b")
CONFIDENT = 0.9  # a comparison whose most probable verdict has at least this posterior probability is "confident"


def rater_votes(campaign: Campaign, selection: RaterSelection) -> list[RaterVote]:
    """Return the campaign's selected ratings as votes (the model shown left first); ratings of outputs without a
    model name are left out, as on the leaderboard."""
    source, params = ratings_from(campaign, selection, joins=OUTPUT_JOINS)
    sql = f"""SELECT {PUBLIC_RATER_SQL},
                     CASE WHEN {A_LEFT_SQL} THEN xa.model_name ELSE xb.model_name END,
                     CASE WHEN {A_LEFT_SQL} THEN xb.model_name ELSE xa.model_name END,
                     CASE WHEN r.verdict <> 'win' THEN 'tie'
                          WHEN r.winner_id = COALESCE(r.left_output_id, c.output_a_id) THEN 'left' ELSE 'right' END,
                     r.comparison_id
              {source} AND xa.model_name IS NOT NULL AND xb.model_name IS NOT NULL ORDER BY r.id"""
    return [
        RaterVote(rater, left, right, outcome, str(comparison))
        for chunk in stream_rows(sql, params)
        for rater, left, right, outcome, comparison in chunk
    ]


def campaign_raters(
    campaign: Campaign, selection: RaterSelection, *, alpha: float = 0.05, correction: Correction = "bh"
) -> dict[str, Any]:
    """Return the campaign's per-rater report (``scoring.rater_flags.rater_report``) with its rater selection."""
    votes = rater_votes(campaign, selection)
    return {
        "campaign": campaign.slug,
        "rater_mix": rater_mix(campaign, selection),
        "alpha": alpha,
        "correction": correction,
        "n_votes": len(votes),
        "raters": rater_report(votes, alpha=alpha, correction=correction),
    }


def posterior_summary(triples: Sequence[tuple[int, str, str]]) -> dict[str, Any]:
    """Return the Dawid-Skene model of (comparison, rater, verdict) triples for the agreement report: each rater's
    competence, how many comparisons are confidently decided, and the least certain comparisons."""
    model = dawid_skene(triples, classes=VERDICT_CLASSES)
    confidence = model.confidence()
    labels = model.labels()
    doubtful = sorted(confidence, key=lambda unit: (confidence[unit], str(unit)))[:20]
    return {
        "method": "dawid_skene",
        "prior_votes": model.options["prior_votes"],
        "prior_accuracy": model.options["prior_accuracy"],
        "converged": model.converged,
        "n_comparisons": len(model.units),
        "n_confident": sum(value >= CONFIDENT for value in confidence.values()),
        "prevalence": dict(zip(VERDICT_CLASSES, (round(float(p), 6) for p in model.prevalence), strict=True)),
        "raters": [
            {"rater": rater, "votes": int(votes), "competence": round(float(value), 6)}
            for rater, votes, value in zip(model.raters, model.votes, model.competence, strict=True)
        ],
        "least_certain": [
            {"comparison_id": unit, "verdict": labels[unit], "confidence": round(confidence[unit], 6)}
            for unit in doubtful
        ],
    }
