"""The rater report as the researcher's pages, admin and API show it: every rater of the campaign (excluded ones
included), its flags, and its current standing.

The statistics (``results.rater_quality.campaign_raters``: a Bradley-Terry fit and the tests) are cached like the
leaderboards, under the campaign and the ratings version; the standing (paused, excluded) is read fresh on every
call, since a researcher's action changes it without changing any rating.
"""

from __future__ import annotations

from typing import Any

from annotation.models import Campaign
from results.leaderboards import cache_key, cached
from results.rater_exclusions import with_exclusions
from results.rater_quality import campaign_raters, rater_standing
from results.raters import RaterSelection
from results.selectors import ratings_version
from scoring.rater_flags import Correction


def rater_rows(
    campaign: Campaign, *, alpha: float = 0.05, correction: Correction = "bh", force: bool = False
) -> dict[str, Any]:
    """Return the campaign's rater report over every rater (excluded ones too), with each one's current standing."""
    selection = with_exclusions(RaterSelection(), campaign, include_excluded=True)
    gold = (campaign.gold_min_answered, campaign.gold_min_accuracy)
    key = cache_key("raters", campaign.pk, selection.key, alpha, correction, *gold, ratings_version().key)

    def compute() -> dict[str, Any]:
        return campaign_raters(campaign, selection, alpha=alpha, correction=correction)

    report = dict(cached(key, compute, force=force))
    standing = rater_standing(campaign)
    report["raters"] = [{**row, **standing.get(row["rater"], {})} for row in report["raters"]]
    return report


def rows_by_label(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Return the report's rows by rater label."""
    return {row["rater"]: row for row in report["raters"]}


def flag_summary(row: dict[str, Any] | None) -> str:
    """Return one line for people: the reasons a rater is flagged, or its key figures when it is not."""
    if row is None:
        return "no votes between named models"
    if row["flagged"]:
        return "flagged: " + "; ".join(row["reasons"])
    parts = []
    if row.get("competence") is not None:
        parts.append(f"competence {row['competence']:.2f}")
    if row.get("p_value") is not None:
        parts.append(f"p={row['p_value']:.2g}")
    if row.get("gold_answered"):
        parts.append(f"gold {row['gold_correct']}/{row['gold_answered']}")
    return "not flagged" + (f" ({', '.join(parts)})" if parts else "")
