"""Rater quality of a campaign: the anomalous-rater tests and the rater models of ``scoring`` on its ratings.

Selectors load the ratings into ``scoring``'s plain shapes; the statistics are ``scoring.rater_flags`` (fit and
left-bias tests, competence) and ``scoring.raters`` (Dawid-Skene posterior of each comparison).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from annotation.models import AnnotatorStatus, Campaign
from annotation.rater_actions import campaign_raters as campaign_raters_of
from annotation.services import gold_pause_reason
from results.rater_mix import rater_mix
from results.raters import RaterSelection
from results.selectors import A_LEFT_SQL, OUTPUT_JOINS, PUBLIC_RATER_SQL, fetch_all, ratings_from, stream_rows
from scoring.rater_flags import Correction, RaterVote, rater_report
from scoring.raters import dawid_skene
from scoring.ratings import RatingCodes

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
    """Return the campaign's per-rater report (``scoring.rater_flags.rater_report``) with its rater selection.

    Each row also has the rater's kind, gold accuracy (``gold_answered``, ``gold_correct``, ``gold_accuracy``; a
    rater below the campaign's gold threshold is flagged with a ``gold accuracy`` reason, the rule that pauses
    annotators) and standing (``paused``, ``excluded``). Raters with gold answers but no vote between named models
    get a row too. Flagged raters come first.
    """
    votes = rater_votes(campaign, selection)
    rows = rater_report(votes, alpha=alpha, correction=correction)
    gold = gold_answers(campaign, selection)
    seen = {row["rater"] for row in rows}
    rows += [empty_row(label) for label in gold if label not in seen]
    standing = rater_standing(campaign)
    for row in rows:
        add_gold(row, gold.get(row["rater"], (0, 0)), campaign)
        row.update(standing.get(row["rater"], UNKNOWN_STANDING))
    rows.sort(key=lambda row: not row["flagged"])  # stable: the p-value order within
    return {
        "campaign": campaign.slug,
        "rater_mix": rater_mix(campaign, selection),
        "alpha": alpha,
        "correction": correction,
        "gold_min_answered": campaign.gold_min_answered,
        "gold_min_accuracy": campaign.gold_min_accuracy,
        "n_votes": len(votes),
        "raters": rows,
    }


UNKNOWN_STANDING: dict[str, Any] = {"kind": None, "account": False, "paused": False, "excluded": False}


def gold_answers(campaign: Campaign, selection: RaterSelection) -> dict[str, tuple[int, int]]:
    """Return per rater (public label) its ratings of gold comparisons and how many agree with the gold answer."""
    source, params = ratings_from(campaign, selection)
    sql = f"""SELECT {PUBLIC_RATER_SQL}, count(*),
                     count(*) FILTER (WHERE r.verdict = c.gold_verdict
                                        AND (r.verdict <> 'win' OR r.winner_id = c.gold_winner_id))
              {source} AND c.gold_verdict IS NOT NULL GROUP BY 1"""
    return {label: (int(answered), int(correct)) for label, answered, correct in fetch_all(sql, params)}


def add_gold(row: dict[str, Any], answers: tuple[int, int], campaign: Campaign) -> None:
    """Add the rater's gold answers to its row, and the ``gold accuracy`` reason when below the campaign's bar."""
    answered, correct = answers
    row.update(gold_answered=answered, gold_correct=correct, gold_accuracy=correct / answered if answered else None)
    reason = gold_pause_reason(
        answered=answered,
        correct=correct,
        min_answered=campaign.gold_min_answered,
        min_accuracy=campaign.gold_min_accuracy,
    )
    if reason is not None:
        row["reasons"].append(
            f"gold accuracy {correct}/{answered} ({correct / answered:.0%}) below the campaign's minimum of "
            f"{campaign.gold_min_accuracy:.0%}"
        )
        row["flagged"] = True


def empty_row(label: str) -> dict[str, Any]:
    """Return the report row of a rater without votes between named models."""
    return {
        "rater": label,
        "votes": 0,
        "competence": None,
        "left_bias": None,
        "left_p_value": None,
        "p_value": None,
        "flagged": False,
        "reasons": [],
    }


def rater_standing(campaign: Campaign) -> dict[str, dict[str, Any]]:
    """Return per rater (public label) of the campaign its kind and whether it is paused or excluded there."""
    standing = {
        (name if user_id is None else pseudonym): {
            "kind": kind,
            "account": user_id is not None,
            "paused": False,
            "excluded": False,
        }
        for name, pseudonym, user_id, kind in campaign_raters_of(campaign=campaign).values_list(
            "name", "pseudonym", "user_id", "kind"
        )
    }
    statuses = AnnotatorStatus.objects.filter(campaign=campaign).values_list(
        "rater__name", "rater__pseudonym", "rater__user_id", "rater__kind", "paused", "excluded"
    )
    for name, pseudonym, user_id, kind, paused, excluded in statuses:
        label = name if user_id is None else pseudonym
        standing[label] = {"kind": kind, "account": user_id is not None, "paused": paused, "excluded": excluded}
    return standing


def posterior_summary(triples: Sequence[tuple[int, str, str]] | RatingCodes) -> dict[str, Any]:
    """Return the Dawid-Skene model of (comparison, rater, verdict) triples for the agreement report: each rater's
    competence, how many comparisons are confidently decided, and the least certain comparisons."""
    model = dawid_skene(triples, classes=VERDICT_CLASSES)
    confidence = model.posterior.max(axis=1) if len(model.units) else np.zeros(0)
    # Only the comparisons at or below the 20th smallest confidence can be among the 20 least certain.
    cut = np.partition(confidence, 19)[19] if len(confidence) > 20 else np.inf
    doubtful = sorted(np.flatnonzero(confidence <= cut).tolist(), key=lambda i: (confidence[i], str(model.units[i])))
    return {
        "method": "dawid_skene",
        "prior_votes": model.options["prior_votes"],
        "prior_accuracy": model.options["prior_accuracy"],
        "converged": model.converged,
        "n_comparisons": len(model.units),
        "n_confident": int((confidence >= CONFIDENT).sum()),
        "prevalence": dict(zip(VERDICT_CLASSES, (round(float(p), 6) for p in model.prevalence), strict=True)),
        "raters": [
            {"rater": rater, "votes": int(votes), "competence": round(float(value), 6)}
            for rater, votes, value in zip(model.raters, model.votes, model.competence, strict=True)
        ],
        "least_certain": [
            {
                "comparison_id": model.units[i],
                "verdict": model.classes[int(np.argmax(model.posterior[i]))],
                "confidence": round(float(confidence[i]), 6),
            }
            for i in doubtful[:20]
        ],
    }
