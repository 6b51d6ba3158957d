"""Raters excluded from a campaign's results by its researchers (``annotation.rater_actions``).

Every report and export reads its ratings through a ``RaterSelection``; the entry points (commands, API, pages,
admin, background refresh) pass it through ``with_exclusions`` so that excluded raters are left out by default, and
the selection's key (shown in every report and in ``X-Export-Raters``, part of every cache key) names them.
"""

from __future__ import annotations

from dataclasses import replace

from annotation.models import AnnotatorStatus, Campaign
from annotation.rater_actions import campaign_raters
from evalplatform.exceptions import DomainError
from results.raters import RaterSelection

TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")


def excluded_labels(campaign: Campaign) -> list[tuple[int, str]]:
    """Return (rater id, public label) of the campaign's raters excluded from results, by label."""
    rows = (
        AnnotatorStatus.objects.filter(campaign=campaign, excluded=True)
        .values_list("rater_id", "rater__user_id", "rater__name", "rater__pseudonym")
        .order_by("rater_id")
    )
    return sorted(
        ((rater_id, name if user_id is None else pseudonym) for rater_id, user_id, name, pseudonym in rows),
        key=lambda pair: pair[1],
    )


def with_exclusions(selection: RaterSelection, campaign: Campaign, *, include_excluded: bool = False) -> RaterSelection:
    """Return the selection without the campaign's excluded raters (unchanged when ``include_excluded``)."""
    left_out = () if include_excluded else tuple(excluded_labels(campaign))
    return replace(selection, left_out=left_out)


def parse_include_excluded(value: str | None) -> bool:
    """Parse the ``include_excluded`` query parameter (1/0, true/false); raise DomainError on anything else."""
    text = (value or "").strip().lower()
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise DomainError(
        "include_excluded: give 1 (count excluded raters too) or 0 (the default)", field="include_excluded"
    )


def recorded_exclusions(selection: RaterSelection, campaign: Campaign, labels: object) -> RaterSelection:
    """Return the selection leaving out the raters a manifest recorded as excluded (``excluded_raters``: their
    public labels), whatever the campaign's exclusions are now, so a reproduction counts what the original counted.

    Raise DomainError when ``labels`` is not a list of names. A label no rater of the campaign has is ignored.
    """
    if not isinstance(labels, list) or not all(isinstance(t, str) and "\x00" not in t for t in labels):
        raise DomainError("selection.excluded_raters must be a list of rater names", field="selection")
    wanted = set(labels)
    raters = campaign_raters(campaign=campaign).values_list("pk", "user_id", "name", "pseudonym")
    found = {
        (pk, label)
        for pk, user_id, name, pseudonym in raters
        if (label := name if user_id is None else pseudonym) in wanted
    }
    return replace(selection, left_out=tuple(sorted(found, key=lambda pair: pair[1])))
