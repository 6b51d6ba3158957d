"""At most EVALPLATFORM_REPORT_SLOTS_PER_USER reports computed at once per user (results.report_slots).

Another process computing a user's reports is played by a second PostgreSQL session holding that user's slots: the
locks are the ones every web process takes, so what a request sees here is what it sees beside a busy worker.
Before the slots, every request here was computed whatever else the user had running.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from django.db import connection
from django.test import Client

from results.report_slots import DEFAULT_SLOTS, SLOTS_VARIABLE, slot_key, slots_per_user
from tests.security.world import World, build_world

pytestmark = pytest.mark.django_db

REPORTS = [
    "/api/v1/research/campaigns/alpha/leaderboard/?influence=1",
    "/api/v1/research/campaigns/alpha/leaderboard/?style_control=1&bootstrap=10",
    "/api/v1/research/campaigns/alpha/agreement/?bootstrap=10",
    "/api/v1/research/campaigns/alpha/length-controlled/?baseline=alpha-secret-model-1",
    "/api/v1/research/campaigns/alpha/export/ratings.jsonl/manifest/",
    "/api/v1/judges/ALPHA-SECRET-judge/report/?bootstrap=10",
    "/api/v1/research/campaigns/alpha/raters/?alpha=0.01",
    "/api/v1/research/campaigns/alpha/categories/",
]
PAGES = [
    "/results/alpha/",
    "/results/alpha/agreement/",
    "/results/alpha/style/",
    "/results/alpha/combined/",
    "/results/alpha/categories/",
    "/results/alpha/judge-report/?judge=ALPHA-SECRET-judge",
]


@pytest.fixture
def world() -> World:
    return build_world()


@pytest.fixture
def other_process() -> Iterator[Any]:
    """A second database session, as another web process would hold."""
    settings = connection.settings_dict
    with psycopg.connect(
        dbname=settings["NAME"],
        user=settings["USER"],
        host=settings["HOST"],
        port=settings["PORT"] or 5432,
        password=settings["PASSWORD"] or None,
        autocommit=True,
    ) as session:
        yield session


def _hold(session: Any, user_id: int, slots: range) -> None:
    for slot in slots:
        assert session.execute("SELECT pg_try_advisory_lock(%s)", [slot_key(user_id, slot)]).fetchone()[0]


def _free(session: Any, user_id: int) -> list[bool]:
    """Return, for each slot, whether the other session could take it (and give it back)."""
    free = []
    for slot in range(DEFAULT_SLOTS):
        key = slot_key(user_id, slot)
        taken = bool(session.execute("SELECT pg_try_advisory_lock(%s)", [key]).fetchone()[0])
        if taken:
            session.execute("SELECT pg_advisory_unlock(%s)", [key])
        free.append(taken)
    return free


def _client(world: World, persona: str) -> Client:
    client = Client()
    user = world.users[persona]
    assert user is not None
    client.force_login(user)
    return client


@pytest.mark.parametrize("url", REPORTS)
def test_a_report_is_a_429_with_retry_after_while_the_users_slots_are_taken(
    world: World, other_process: Any, url: str
) -> None:
    ada = _client(world, "ada")
    assert ada.get(url).status_code == 200
    _hold(other_process, world.a.owner.pk, range(DEFAULT_SLOTS))
    refused = ada.get(url)
    assert refused.status_code == 429
    assert refused["Retry-After"] == "2"
    assert f"at most {DEFAULT_SLOTS} at a time" in refused.json()["detail"]
    other_process.execute("SELECT pg_advisory_unlock_all()")
    assert ada.get(url).status_code == 200


@pytest.mark.parametrize("url", PAGES)
def test_a_report_page_is_a_429_saying_why_while_the_users_slots_are_taken(
    world: World, other_process: Any, url: str
) -> None:
    ada = _client(world, "ada")
    _hold(other_process, world.a.owner.pk, range(DEFAULT_SLOTS))
    refused = ada.get(url)
    assert refused.status_code == 429
    assert "at a time per user" in refused.content.decode()
    other_process.execute("SELECT pg_advisory_unlock_all()")
    assert ada.get(url).status_code == 200


def test_one_slot_left_is_enough_and_the_request_gives_it_back(world: World, other_process: Any) -> None:
    ada = _client(world, "ada")
    _hold(other_process, world.a.owner.pk, range(DEFAULT_SLOTS - 1))
    assert ada.get(REPORTS[0]).status_code == 200
    assert _free(other_process, world.a.owner.pk)[-1]


def test_a_refused_or_failed_report_gives_its_slot_back(world: World, other_process: Any) -> None:
    ada = _client(world, "ada")
    for url in [REPORTS[0] + "&bootstrap=-1", REPORTS[0] + "&cluster=nobody", "/results/alpha/?consistent=maybe"]:
        assert ada.get(url).status_code == 400
    assert _free(other_process, world.a.owner.pk) == [True] * DEFAULT_SLOTS


def test_another_users_slots_do_not_count(world: World, other_process: Any) -> None:
    _hold(other_process, world.a.owner.pk, range(DEFAULT_SLOTS))
    assert _client(world, "bea").get("/api/v1/research/campaigns/bravo/leaderboard/").status_code == 200
    assert _client(world, "root").get(REPORTS[0]).status_code == 200


def test_a_user_whose_slots_are_taken_learns_nothing_of_another_team(world: World, other_process: Any) -> None:
    _hold(other_process, world.b.owner.pk, range(DEFAULT_SLOTS))
    response = _client(world, "bea").get(REPORTS[0])
    assert response.status_code == 429
    assert b"alpha-secret" not in response.content.lower()


def test_the_operator_sets_the_slots_or_lifts_the_limit(
    world: World, other_process: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    ada = _client(world, "ada")
    _hold(other_process, world.a.owner.pk, range(DEFAULT_SLOTS))
    monkeypatch.setenv(SLOTS_VARIABLE, "3")
    assert ada.get(REPORTS[0]).status_code == 200
    monkeypatch.setenv(SLOTS_VARIABLE, "0")
    assert ada.get(REPORTS[0]).status_code == 200
    monkeypatch.setenv(SLOTS_VARIABLE, "many")
    with pytest.raises(ValueError, match=SLOTS_VARIABLE):
        slots_per_user()
