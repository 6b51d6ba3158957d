"""Sign-in throttling: failed passwords per account and per client address, failed API tokens per address.

Failures are counted in PostgreSQL (table annotation_signinfailures, one row per key), so every web process and
host sees the same counts; Django's default cache is per process. A key's window starts at its first failure and
lasts EVALPLATFORM_SIGNIN_WINDOW_SECONDS; once a key has reached its limit in the window, a password sign-in is
refused without checking the password, and a failed token gets 429 instead of 403, until the window ends. Only
failures write (one upsert, which also deletes a few expired rows, so the table holds about one window of
failures); a successful token authentication never reads the table. See docs/security.md.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone

TABLE = "annotation_signinfailures"
DEFAULTS = {"ACCOUNT_FAILURES": 10, "ADDRESS_FAILURES": 50, "WINDOW_SECONDS": 900, "TRUSTED_PROXIES": 0}
ACCOUNT = "account:"
ADDRESS = "address:"
EXPIRED_ROWS_PER_FAILURE = 20
MAX_FORWARDED_CHARS = 2000

# The clock, replaced by tests (as DRF's SimpleRateThrottle.timer).
clock: Callable[[], datetime] = timezone.now

RECORD_SQL = f"""
WITH expired AS (
    DELETE FROM {TABLE} WHERE key IN (
        SELECT key FROM {TABLE} WHERE window_started_at <= %(stale)s AND NOT key = ANY(%(keys)s)
        ORDER BY window_started_at LIMIT {EXPIRED_ROWS_PER_FAILURE} FOR UPDATE SKIP LOCKED
    )
)
INSERT INTO {TABLE} AS f (key, failures, window_started_at)
SELECT k, 1, %(now)s FROM unnest(%(keys)s::text[]) AS k
ON CONFLICT (key) DO UPDATE SET
    failures = CASE WHEN f.window_started_at <= %(stale)s THEN 1 ELSE least(f.failures + 1, 1000000) END,
    window_started_at = CASE WHEN f.window_started_at <= %(stale)s THEN %(now)s ELSE f.window_started_at END
RETURNING key, failures, window_started_at
"""
COUNTS_SQL = (
    f"SELECT key, failures, window_started_at FROM {TABLE} WHERE key = ANY(%(keys)s) AND window_started_at > %(stale)s"
)
FORGET_SQL = f"DELETE FROM {TABLE} WHERE key = %(key)s"


def _setting(name: str) -> int:
    """Return EVALPLATFORM_SIGNIN_<name> (EVALPLATFORM_TRUSTED_PROXIES), or its default."""
    setting = "EVALPLATFORM_" + (name if name == "TRUSTED_PROXIES" else "SIGNIN_" + name)
    return int(getattr(settings, setting, DEFAULTS[name]))


def _window() -> timedelta:
    return timedelta(seconds=_setting("WINDOW_SECONDS"))


def _limit(key: str) -> int:
    """Return the failures a key may have in a window (0: no limit)."""
    return _setting("ACCOUNT_FAILURES" if key.startswith(ACCOUNT) else "ADDRESS_FAILURES")


def client_address(meta: Mapping[str, Any]) -> str:
    """Return the client's IP address: REMOTE_ADDR, or with EVALPLATFORM_TRUSTED_PROXIES = n > 0 proxies in front, the
    address the outermost of them saw (the n-th entry of X-Forwarded-For from the right).

    An entry that is not an IP address falls back to REMOTE_ADDR.
    """
    address = str(meta.get("REMOTE_ADDR", ""))
    proxies = _setting("TRUSTED_PROXIES")
    if proxies > 0:
        forwarded = [
            part.strip() for part in str(meta.get("HTTP_X_FORWARDED_FOR", ""))[-MAX_FORWARDED_CHARS:].split(",")
        ]
        forwarded = [part for part in forwarded if part]
        if forwarded:
            address = forwarded[-proxies] if len(forwarded) >= proxies else forwarded[0]
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return str(meta.get("REMOTE_ADDR", ""))[:100]


def account_key(username: str) -> str:
    return ACCOUNT + username.casefold()[:150]


def address_key(address: str) -> str:
    return ADDRESS + address


def _wait_seconds(rows: Sequence[tuple[str, int, datetime]], *, now: datetime, over: int) -> int | None:
    """Return the seconds until the last of the keys that reached their limit (+ `over`) is free again, or None."""
    window = _window()
    waits = [
        (started + window - now).total_seconds()
        for key, failures, started in rows
        if _limit(key) and failures >= _limit(key) + over
    ]
    return max(1, int(max(waits) + 0.999)) if waits else None


def locked_for(keys: Sequence[str]) -> int | None:
    """Return how many seconds sign-in stays refused for any of these keys, or None if it is not."""
    now = clock()
    with connection.cursor() as cursor:
        cursor.execute(COUNTS_SQL, {"keys": list(keys), "stale": now - _window()})
        rows = cursor.fetchall()
    return _wait_seconds(rows, now=now, over=0)


def record_failure(keys: Sequence[str]) -> int | None:
    """Count one failure for each key; return the seconds to wait if one of them is now past its limit."""
    now = clock()
    params: dict[str, Any] = {"keys": sorted(set(keys)), "now": now, "stale": now - _window()}
    with connection.cursor() as cursor:
        cursor.execute(RECORD_SQL, params)
        rows = cursor.fetchall()
    return _wait_seconds(rows, now=now, over=1)


def forget(key: str) -> None:
    """Clear a key's failures (an account after a successful sign-in)."""
    with connection.cursor() as cursor:
        cursor.execute(FORGET_SQL, {"key": key})
