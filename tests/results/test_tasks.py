from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.db import connection, connections, transaction
from django.utils import timezone

from annotation import services as annotation_services
from annotation.models import Rating
from evalplatform.celery import app as celery_app
from results import leaderboards, tasks
from results.leaderboards import campaign_leaderboard
from results.models import LeaderboardRefresh
from results.raters import RaterSelection
from results.tasks import refresh_leaderboards, schedule_refresh
from tests import factories
from tests.results.conftest import Rated


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[Any, float | None]]]:
    """Record the refreshes sent to the broker (the edge), starting as a fresh process."""
    sent: list[tuple[Any, float | None]] = []
    monkeypatch.setattr(
        refresh_leaderboards, "apply_async", lambda args, countdown=None, **kw: sent.append((args, countdown))
    )
    tasks.forget_scheduled()
    yield sent
    tasks.forget_scheduled()


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[datetime]:
    """Return a settable clock for the scheduling (tests move time by changing clock[0])."""
    current = [timezone.now()]
    monkeypatch.setattr(tasks, "now", lambda: current[0])
    return current


def test_refresh_task_warms_the_leaderboard_with_elo_for_large_campaigns(rated: Rated, monkeypatch: Any) -> None:
    monkeypatch.setattr(leaderboards, "ELO_SYNC_LIMIT", 10)  # pretend the campaign is too large for Elo on request

    cold = campaign_leaderboard(rated.campaign, RaterSelection())
    refresh_leaderboards(rated.campaign.pk)
    warm = campaign_leaderboard(rated.campaign, RaterSelection())

    assert "elo" not in cold["ratings"][0]
    assert warm["ratings"][0]["elo"] > 1000


def test_a_burst_of_ratings_in_several_processes_queues_one_refresh_at_once_and_one_after_the_window(
    rated: Rated, queued: list[Any], clock: list[datetime], django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(4):
            schedule_refresh(rated.campaign.pk)
    for _ in range(3):
        tasks.forget_scheduled()  # another process: only the database knows a refresh is queued
        clock[0] += timedelta(seconds=1)
        assert not tasks.queue_refresh(rated.campaign.pk)

    # The first rating's refresh starts at once; ratings after it are covered by one due a window later.
    assert queued == [((rated.campaign.pk,), 0.0), ((rated.campaign.pk,), tasks.DEBOUNCE_SECONDS)]


def test_a_rating_after_a_quiet_spell_refreshes_at_once(rated: Rated, queued: list[Any], clock: list[datetime]) -> None:
    assert tasks.queue_refresh(rated.campaign.pk)
    assert tasks.queue_refresh(rated.campaign.pk)
    tasks.forget_scheduled()
    clock[0] += timedelta(minutes=1)

    assert tasks.queue_refresh(rated.campaign.pk)
    assert queued[-1] == ((rated.campaign.pk,), 0.0)


def test_a_rating_once_the_queued_refresh_may_have_started_queues_the_next(
    rated: Rated, queued: list[Any], clock: list[datetime]
) -> None:
    assert tasks.queue_refresh(rated.campaign.pk)  # at once
    assert tasks.queue_refresh(rated.campaign.pk)  # a window later
    started = clock[0]
    tasks.forget_scheduled()
    clock[0] += timedelta(seconds=tasks.DEBOUNCE_SECONDS - tasks.MARGIN_SECONDS)

    assert tasks.queue_refresh(rated.campaign.pk)
    assert len(queued) == 3
    refresh = LeaderboardRefresh.objects.get(campaign=rated.campaign)
    assert refresh.due_at == started + timedelta(seconds=2 * tasks.DEBOUNCE_SECONDS)


def test_a_process_that_knows_a_refresh_is_queued_does_not_ask_the_database(
    rated: Rated, queued: list[Any], django_assert_num_queries: Any
) -> None:
    assert tasks.queue_refresh(rated.campaign.pk)  # at once
    assert tasks.queue_refresh(rated.campaign.pk)  # a window later: covers what follows
    with django_assert_num_queries(0):
        for _ in range(10):
            assert not tasks.queue_refresh(rated.campaign.pk)


def test_refreshes_go_to_their_own_queue_which_a_plain_worker_also_consumes() -> None:
    route = celery_app.amqp.router.route({}, refresh_leaderboards.name, (1,), {})
    judging = celery_app.amqp.router.route({}, "judging.judge_verdicts", ([1],), {})

    assert route["queue"].name == tasks.REFRESH_QUEUE != judging["queue"].name
    assert {tasks.REFRESH_QUEUE, judging["queue"].name} <= set(celery_app.amqp.queues)


def test_a_broken_broker_does_not_fail_the_rating(
    annotator: Any, campaign: Any, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("broker down")

    monkeypatch.setattr(refresh_leaderboards, "apply_async", broken)
    tasks.forget_scheduled()
    assignment = annotation_services.claim_next(user=annotator, campaign_id=campaign.pk).assignment
    assert assignment is not None
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        result = annotation_services.submit_rating(
            user=annotator, assignment_id=assignment.pk, answer=annotation_services.RatingInput("left")
        )

    assert len(callbacks) == 1  # the refresh was attempted, and its failure logged
    assert Rating.objects.filter(pk=result.rating.pk).exists()
    tasks.forget_scheduled()


@pytest.mark.django_db(transaction=True)
def test_scheduling_skips_a_row_another_process_holds_instead_of_waiting(queued: list[Any]) -> None:
    campaign = factories.CampaignFactory.create()
    LeaderboardRefresh.objects.create(campaign=campaign, due_at=timezone.now() - timedelta(minutes=1))
    locked, release = threading.Event(), threading.Event()

    def hold_the_row() -> None:
        with transaction.atomic():
            list(LeaderboardRefresh.objects.select_for_update().filter(campaign=campaign))
            locked.set()
            release.wait(10)
        connections.close_all()

    holder = threading.Thread(target=hold_the_row)
    holder.start()
    try:
        assert locked.wait(10)
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '2s'")  # were it to wait, the test fails instead of hanging
        assert not tasks.queue_refresh(campaign.pk)
    finally:
        release.set()
        holder.join(10)
    assert queued == []
    assert tasks.queue_refresh(campaign.pk)  # once free, the stale row is moved and a refresh queued
