"""The replica routing: the ORM stays on the primary; heavy reports read a replica only when it has caught up.

A second alias pointing at the test server stands in for a replica here (it is not in recovery, so it counts as
caught up); an alias on a closed port stands in for a replica that is down. The real streaming replica, its lag and
its loss are exercised by scripts/cluster (tests/scripts/test_cluster.py).
"""

from __future__ import annotations

import copy
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.utils import load_backend
from django.test.utils import CaptureQueriesContext

from annotation.models import Campaign, Rater, Rating
from evalplatform import db_router
from evalplatform.db_router import REPLICA_ALIAS, PrimaryRouter, breaker, heavy_read_alias, replica_status
from results.exports import write_export
from results.raters import parse_raters
from results.selectors import rating_rows
from tests import factories


def add_alias(monkeypatch: pytest.MonkeyPatch, **changes: Any) -> None:
    """Install a connection under the replica alias (beside the settings, which Django's test case guards)."""
    conf = copy.deepcopy(connections[DEFAULT_DB_ALIAS].settings_dict)
    conf.update(changes)
    connections[REPLICA_ALIAS] = load_backend(conf["ENGINE"]).DatabaseWrapper(conf, REPLICA_ALIAS)
    monkeypatch.setattr(db_router, "has_replica", lambda alias=REPLICA_ALIAS: alias == REPLICA_ALIAS)
    breaker.reset()


@pytest.fixture
def replica(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Configure a replica alias on the test database itself (a separate connection)."""
    add_alias(monkeypatch)
    yield
    drop_alias(monkeypatch)


@pytest.fixture
def dead_replica(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Configure a replica alias on a port where nothing listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    options = dict(connections[DEFAULT_DB_ALIAS].settings_dict.get("OPTIONS", {}), connect_timeout=2)
    add_alias(monkeypatch, HOST="127.0.0.1", PORT=str(port), OPTIONS=options)
    yield
    drop_alias(monkeypatch)


def drop_alias(monkeypatch: pytest.MonkeyPatch) -> None:
    connections[REPLICA_ALIAS].close()
    del connections[REPLICA_ALIAS]
    monkeypatch.undo()
    breaker.reset()


@pytest.fixture
def rated_campaign(campaign: Campaign) -> Campaign:
    """Rate each comparison of the campaign once, by one imported rater, for its first output."""
    rater = factories.RaterFactory.create(name="expert_1")
    for comparison in campaign.comparisons.select_related("output_a", "output_b"):
        factories.make_rating(comparison, rater, winner=comparison.output_a)
    return campaign


def test_the_router_sends_every_orm_read_write_and_migration_to_the_primary() -> None:
    router = PrimaryRouter()

    assert router.db_for_read(Rating) == DEFAULT_DB_ALIAS
    assert router.db_for_write(Rating) == DEFAULT_DB_ALIAS
    assert router.allow_migrate(DEFAULT_DB_ALIAS, "annotation")
    assert not router.allow_migrate(REPLICA_ALIAS, "annotation")
    assert router.allow_relation(object(), object())


def test_without_a_replica_heavy_reads_stay_on_the_primary(db: None) -> None:
    assert not db_router.has_replica()  # the test settings have no DATABASE_REPLICA_URL
    assert heavy_read_alias() == DEFAULT_DB_ALIAS
    assert replica_status().reachable is False


@pytest.mark.django_db(transaction=True)
def test_a_replica_that_has_caught_up_serves_the_heavy_reads(replica: None) -> None:
    assert heavy_read_alias() == REPLICA_ALIAS


@pytest.mark.django_db(transaction=True)
def test_the_replica_status_reports_a_reachable_server_not_in_recovery(replica: None) -> None:
    status = replica_status()

    assert status.reachable
    assert status.in_recovery is False  # the stand-in is the primary itself
    assert status.lag_bytes is None  # a server not in recovery replays nothing


def test_inside_a_transaction_on_the_primary_the_reads_stay_there(db: None, replica: None) -> None:
    # The test runs in a transaction: what it wrote is visible only to the primary's connection.
    assert heavy_read_alias() == DEFAULT_DB_ALIAS


@pytest.mark.django_db(transaction=True)
def test_a_replica_that_is_down_costs_one_timeout_then_is_passed_over(dead_replica: None) -> None:
    assert heavy_read_alias() == DEFAULT_DB_ALIAS
    assert breaker.is_open(REPLICA_ALIAS)

    started = time.monotonic()
    assert heavy_read_alias() == DEFAULT_DB_ALIAS
    assert time.monotonic() - started < 0.05  # no second connection attempt while the breaker is open
    status = replica_status()
    assert not status.reachable
    assert status.error


@pytest.mark.django_db(transaction=True)
def test_a_replica_still_behind_after_its_wait_bound_is_passed_over_for_the_primary(
    replica: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[tuple[str, float]] = []

    def still_behind(alias: str, *, target: str, wait: float) -> bool:
        asked.append((target, wait))
        return False

    monkeypatch.setattr(db_router, "replica_caught_up", still_behind)

    assert heavy_read_alias() == DEFAULT_DB_ALIAS
    [(target, wait)] = asked
    assert "/" in target  # the primary's pg_current_wal_lsn()
    assert wait == db_router.max_wait_seconds()
    assert not breaker.is_open(REPLICA_ALIAS)  # behind is not down: the next report asks again


@pytest.mark.django_db(transaction=True)
def test_a_server_not_in_recovery_counts_as_caught_up_at_once(replica: None) -> None:
    started = time.monotonic()
    assert db_router.replica_caught_up(REPLICA_ALIAS, target="FFFFFFFF/FFFFFFFF", wait=1.0)
    assert time.monotonic() - started < 0.5


@pytest.mark.django_db(transaction=True)
def test_agreement_rows_are_read_on_the_replica_and_match_the_primary(
    rated_campaign: Campaign, monkeypatch: pytest.MonkeyPatch
) -> None:
    selection = parse_raters("all")
    on_primary = rating_rows(rated_campaign, selection)
    add_alias(monkeypatch)
    try:
        with CaptureQueriesContext(connections[REPLICA_ALIAS]) as on_replica_queries:
            on_replica = rating_rows(rated_campaign, selection)
    finally:
        drop_alias(monkeypatch)

    assert on_replica == on_primary
    assert len(on_primary) == rated_campaign.comparisons.count()
    assert any("annotation_rating" in q["sql"] for q in on_replica_queries.captured_queries)


@pytest.mark.django_db(transaction=True)
def test_an_export_is_read_on_the_replica_and_gives_the_same_file(
    rated_campaign: Campaign, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = tmp_path / "primary.jsonl", tmp_path / "replica.jsonl"
    write_export(rated_campaign, format="ratings", out=first, selection=parse_raters("all"))
    add_alias(monkeypatch)
    try:
        with CaptureQueriesContext(connections[REPLICA_ALIAS]) as on_replica_queries:
            write_export(rated_campaign, format="ratings", out=second, selection=parse_raters("all"))
    finally:
        drop_alias(monkeypatch)

    assert second.read_bytes() == first.read_bytes()
    assert len(first.read_text().splitlines()) == rated_campaign.comparisons.count()
    assert json.loads(first.read_text().splitlines()[0])["rater"] == "expert_1"
    assert any("REPEATABLE READ" in q["sql"] for q in on_replica_queries.captured_queries)


@pytest.mark.django_db(transaction=True)
def test_writes_stay_on_the_primary_with_a_replica_configured(replica: None, campaign: Campaign) -> None:
    with CaptureQueriesContext(connections[REPLICA_ALIAS]) as on_replica_queries:
        rater = factories.RaterFactory.create(name="writer")
        assert Rater.objects.filter(pk=rater.pk).exists()

    assert on_replica_queries.captured_queries == []


@pytest.mark.django_db(transaction=True)
def test_an_export_with_its_manifest_reads_the_primary_in_one_snapshot(
    rated_campaign: Campaign, tmp_path: Path, replica: None
) -> None:
    # The manifest's digest and the file must come from one snapshot: the command's export stays on the primary.
    with CaptureQueriesContext(connections[REPLICA_ALIAS]) as on_replica_queries:
        call_command("export", rated_campaign.slug, "--format", "ratings", "--out", str(tmp_path / "r.jsonl"))

    assert on_replica_queries.captured_queries == []
