from __future__ import annotations

from typing import Any

from django.core.cache import cache

from results import leaderboards
from results.leaderboards import campaign_leaderboard
from results.raters import RaterSelection
from results.tasks import refresh_leaderboards, schedule_refresh
from tests.results.conftest import Rated


def test_refresh_task_warms_the_leaderboard_with_elo_for_large_campaigns(rated: Rated, monkeypatch: Any) -> None:
    monkeypatch.setattr(leaderboards, "ELO_SYNC_LIMIT", 10)  # pretend the campaign is too large for Elo on request

    cold = campaign_leaderboard(rated.campaign, RaterSelection())
    refresh_leaderboards(rated.campaign.pk)
    warm = campaign_leaderboard(rated.campaign, RaterSelection())

    assert "elo" not in cold["ratings"][0]
    assert warm["ratings"][0]["elo"] > 1000


def test_a_burst_of_ratings_schedules_one_refresh_after_commit(
    rated: Rated, django_capture_on_commit_callbacks: Any
) -> None:
    cache.clear()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        for _ in range(3):
            schedule_refresh(rated.campaign.pk)

    assert len(callbacks) == 1
