"""Send the heavy reads (agreement, Elo, exports) to a streaming replica when it has caught up; the rest to the primary.

With ``DATABASE_REPLICA_URL`` set, the settings add a ``replica`` database alias. The ORM never uses it:
``PrimaryRouter`` sends every ORM read and write (so every claim, rating and verdict) to ``default``, and never
migrates the replica. The report queries that read a whole campaign ask ``heavy_read_alias()`` which connection to
run on, and get ``replica`` only when it is fresh:

- the replica answers within its ``connect_timeout`` (a failed check keeps the primary for
  ``EVALPLATFORM_REPLICA_RETRY_SECONDS``, so a replica that is down costs one timeout, not one per request);
- it is a standby that is streaming from the primary (``pg_stat_wal_receiver``), or a server that is not in
  recovery at all (a test mirror of the primary);
- it has replayed the primary's WAL up to the primary's position read at the start of the call
  (``pg_current_wal_lsn()`` on the primary, ``pg_last_wal_replay_lsn()`` on the replica), waiting for it at most
  ``EVALPLATFORM_REPLICA_MAX_WAIT_SECONDS``.

So a report read from the replica holds every transaction the primary had committed when the report started, as one
read from the primary would: the staleness bound is zero with respect to the request's start, and a replica further
behind than the wait bound (its replay lag, in time, is what ``replica_status()`` reports from
``pg_last_xact_replay_timestamp()``) is passed over for the primary. The battle-count snapshots of the leaderboards
stay on the primary: they are keyed to the primary's statistics counters, which a standby does not keep.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, Error, connections

REPLICA_ALIAS = "replica"
POLL_SECONDS = 0.01


class PrimaryRouter:
    """Route every ORM read and write to the primary and migrate only the primary.

    The replica is read only through ``heavy_read_alias()``, explicitly, by the report queries.
    """

    def db_for_read(self, model: type[Any], **hints: Any) -> str:
        return DEFAULT_DB_ALIAS

    def db_for_write(self, model: type[Any], **hints: Any) -> str:
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool:
        return True

    def allow_migrate(self, db: str, app_label: str, model_name: str | None = None, **hints: Any) -> bool:
        return db == DEFAULT_DB_ALIAS


@dataclass(frozen=True)
class ReplicaStatus:
    """What a replica reports of itself: reachable, streaming, and how far behind."""

    alias: str
    reachable: bool
    in_recovery: bool = False
    streaming: bool = False
    lag_bytes: int | None = None
    replay_lag_seconds: float | None = None
    error: str = ""


class _Breaker:
    """Remember until when a replica that failed its check is passed over."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._until: dict[str, float] = {}

    def open(self, alias: str, *, seconds: float) -> None:
        with self._lock:
            self._until[alias] = time.monotonic() + seconds

    def is_open(self, alias: str) -> bool:
        with self._lock:
            return time.monotonic() < self._until.get(alias, 0.0)

    def reset(self) -> None:
        with self._lock:
            self._until.clear()


breaker = _Breaker()


def has_replica(alias: str = REPLICA_ALIAS) -> bool:
    """Return whether the settings configure a replica alias."""
    return alias in connections.settings


def max_wait_seconds() -> float:
    return float(getattr(settings, "EVALPLATFORM_REPLICA_MAX_WAIT_SECONDS", 0.25))


def retry_seconds() -> float:
    return float(getattr(settings, "EVALPLATFORM_REPLICA_RETRY_SECONDS", 5.0))


def heavy_read_alias(*, replica: str = REPLICA_ALIAS) -> str:
    """Return the alias a heavy report should read from: the replica when it has caught up, else the primary.

    Call it outside any transaction of the report (it reads the primary's WAL position first).
    """
    if not has_replica(replica) or breaker.is_open(replica):
        return DEFAULT_DB_ALIAS
    if connections[DEFAULT_DB_ALIAS].in_atomic_block:
        # Inside a transaction on the primary (a test, or a caller that also writes): read what it sees.
        return DEFAULT_DB_ALIAS
    try:
        target = primary_lsn()
        if replica_caught_up(replica, target=target, wait=max_wait_seconds()):
            return replica
    except Error:
        breaker.open(replica, seconds=retry_seconds())
        connections[replica].close()
    return DEFAULT_DB_ALIAS


def primary_lsn() -> str:
    """Return the primary's current WAL write position."""
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_lsn()::text")
        row = cursor.fetchone()
    return str(row[0])


def replica_caught_up(alias: str, *, target: str, wait: float) -> bool:
    """Return whether the replica has replayed up to ``target``, polling it for at most ``wait`` seconds."""
    deadline = time.monotonic() + wait
    with connections[alias].cursor() as cursor:
        while True:
            cursor.execute(
                """SELECT NOT pg_is_in_recovery()
                          OR (EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming')
                              AND pg_last_wal_replay_lsn() >= %s::pg_lsn)""",
                [target],
            )
            row = cursor.fetchone()
            if row is not None and row[0]:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(POLL_SECONDS)


def replica_status(*, replica: str = REPLICA_ALIAS) -> ReplicaStatus:
    """Return the replica's state and its lag behind the primary, in bytes and in seconds of replay."""
    if not has_replica(replica):
        return ReplicaStatus(alias=replica, reachable=False, error="no replica configured")
    try:
        target = primary_lsn()
        with connections[replica].cursor() as cursor:
            cursor.execute(
                """SELECT pg_is_in_recovery(),
                          EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming'),
                          pg_wal_lsn_diff(%s::pg_lsn, pg_last_wal_replay_lsn())::bigint,
                          CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
                               ELSE EXTRACT(EPOCH FROM clock_timestamp() - pg_last_xact_replay_timestamp())
                          END::float8""",
                [target],
            )
            row = cursor.fetchone()
    except Error as error:
        connections[replica].close()
        return ReplicaStatus(alias=replica, reachable=False, error=str(error).strip().splitlines()[0])
    assert row is not None
    in_recovery, streaming, lag_bytes, lag_seconds = row
    return ReplicaStatus(
        alias=replica,
        reachable=True,
        in_recovery=bool(in_recovery),
        streaming=bool(streaming),
        lag_bytes=None if lag_bytes is None else max(int(lag_bytes), 0),
        replay_lag_seconds=lag_seconds,
    )
