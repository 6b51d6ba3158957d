"""Celery adapters: recompute a campaign's reports in the background after ratings arrive.

Refreshes go to their own queue (REFRESH_QUEUE, see CELERY_TASK_QUEUES in the settings), so a slow one never sits
in front of judging tasks, and are debounced across every process by one row per campaign (LeaderboardRefresh):
the first rating after a quiet spell queues a refresh at once, the first rating after that refresh was due queues
the next one DEBOUNCE_SECONDS after it (so at most one refresh starts per window), and every rating that commits
before a queued refresh is due is covered by it. Scheduling happens after the rating commits, takes no lock another
rating waits for, and never fails the rating.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from celery import shared_task
from django.db import connection, transaction
from django.utils import timezone

from annotation.models import Campaign
from results.counts import rater_counts
from results.leaderboards import campaign_leaderboard, side_by_side
from results.rater_exclusions import with_exclusions
from results.raters import RaterSelection

STANDARD_SELECTIONS = (RaterSelection(), RaterSelection(kind="human"), RaterSelection(kind="judge"))
DEBOUNCE_SECONDS = 5.0
REFRESH_QUEUE = "results"
# A refresh due this soon might start before a rating committing now is visible (clocks of different hosts, the
# broker's countdown): such a rating queues the next refresh rather than count on that one.
MARGIN_SECONDS = 0.5
# Injectable clock (tests move time).
now: Callable[[], datetime] = timezone.now

# Per process: the monotonic time until which a refresh is known to be queued for each campaign, so a burst of
# ratings from this process asks the database once.
_covered_until: dict[int, float] = {}
_covered_lock = threading.Lock()

# One statement in autocommit: the row is locked only while it runs, and a row locked by another process that is
# scheduling right now is skipped (that process queues the refresh, or found one queued).
_SCHEDULE = """
    WITH current AS (
        SELECT campaign_id, due_at FROM results_leaderboardrefresh WHERE campaign_id = %(campaign)s
        FOR UPDATE SKIP LOCKED
    ), moved AS (
        UPDATE results_leaderboardrefresh r SET due_at = GREATEST(%(now)s, current.due_at + %(window)s)
        FROM current
        WHERE r.campaign_id = current.campaign_id AND current.due_at <= %(stale)s
        RETURNING r.due_at
    ), created AS (
        INSERT INTO results_leaderboardrefresh (campaign_id, due_at)
        SELECT %(campaign)s, %(now)s
        WHERE NOT EXISTS (SELECT 1 FROM results_leaderboardrefresh WHERE campaign_id = %(campaign)s)
        ON CONFLICT DO NOTHING
        RETURNING due_at
    )
    SELECT COALESCE((SELECT due_at FROM moved), (SELECT due_at FROM created)), (SELECT due_at FROM current)
"""


@shared_task(name="results.refresh_leaderboards", acks_late=True, ignore_result=True)  # type: ignore[untyped-decorator]
def refresh_leaderboards(campaign_id: int) -> None:
    """Warm the cache with the campaign's standard leaderboards for its current ratings."""
    campaign = Campaign.objects.filter(pk=campaign_id).first()
    if campaign is None:
        return
    rater_counts(campaign, full=True)  # recount: catches ratings committed after a larger id was counted
    for selection in STANDARD_SELECTIONS:
        campaign_leaderboard(campaign, with_exclusions(selection, campaign), with_elo=True, force=True)
    side_by_side(campaign, with_exclusions(RaterSelection(), campaign), force=True)


def schedule_refresh(campaign_id: int) -> None:
    """Make sure a refresh of the campaign runs after the current transaction commits (at most one per window)."""
    # robust: a broker or database hiccup here is logged, and the rating that committed stays a success.
    transaction.on_commit(lambda: queue_refresh(campaign_id), robust=True)


def queue_refresh(campaign_id: int) -> bool:
    """Queue the campaign's next refresh unless one is already due later; return whether this call queued it."""
    if time.monotonic() < _covered_until.get(campaign_id, 0.0):
        return False
    current = now()
    params: dict[str, Any] = {
        "campaign": campaign_id,
        "now": current,
        "window": timedelta(seconds=DEBOUNCE_SECONDS),
        "stale": current + timedelta(seconds=MARGIN_SECONDS),
    }
    with connection.cursor() as cursor:
        cursor.execute(_SCHEDULE, params)
        queued_for, due_at = cursor.fetchone()
    if queued_for is not None:
        countdown = max(0.0, (queued_for - current).total_seconds())
        refresh_leaderboards.apply_async((campaign_id,), countdown=countdown)
        _remember(campaign_id, countdown)
    elif due_at is not None:
        _remember(campaign_id, (due_at - current).total_seconds())
    return queued_for is not None


def _remember(campaign_id: int, covered_for: float) -> None:
    with _covered_lock:
        _covered_until[campaign_id] = time.monotonic() + covered_for - MARGIN_SECONDS


def forget_scheduled() -> None:
    """Forget what this process knows of queued refreshes (as a new process would)."""
    with _covered_lock:
        _covered_until.clear()
