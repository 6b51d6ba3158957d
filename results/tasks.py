"""Celery adapters: recompute a campaign's reports in the background after ratings arrive."""

from __future__ import annotations

from celery import shared_task
from django.core.cache import cache
from django.db import transaction

from annotation.models import Campaign
from results.counts import rater_counts
from results.leaderboards import campaign_leaderboard, side_by_side
from results.raters import RaterSelection

STANDARD_SELECTIONS = (RaterSelection(), RaterSelection(kind="human"), RaterSelection(kind="judge"))
DEBOUNCE_SECONDS = 5


@shared_task(name="results.refresh_leaderboards", acks_late=True, ignore_result=True)  # type: ignore[untyped-decorator]
def refresh_leaderboards(campaign_id: int) -> None:
    """Warm the cache with the campaign's standard leaderboards for its current ratings."""
    campaign = Campaign.objects.filter(pk=campaign_id).first()
    if campaign is None:
        return
    cache.delete(pending_key(campaign_id))
    rater_counts(campaign, full=True)  # recount: catches ratings committed after a larger id was counted
    for selection in STANDARD_SELECTIONS:
        campaign_leaderboard(campaign, selection, with_elo=True, force=True)
    side_by_side(campaign, RaterSelection(), force=True)


def pending_key(campaign_id: int) -> str:
    return f"results:refresh-pending:{campaign_id}"


def schedule_refresh(campaign_id: int) -> None:
    """Enqueue one refresh after the current transaction commits; a burst of ratings enqueues it once."""
    if cache.add(pending_key(campaign_id), 1, DEBOUNCE_SECONDS):
        transaction.on_commit(lambda: refresh_leaderboards.delay(campaign_id))
