"""A judge's limits across every worker: a token bucket for its request rate, leased slots for its concurrency.

Each operation is one SQL statement, so row locks live only inside PostgreSQL for microseconds: a lock held
across Python round trips would convoy the workers behind one that waits for the GIL. The frequent ones are
prepared once per connection (evalplatform.db).

A batch of verdicts (judging.batch) holds slots while it has calls to make, up to its fair share: it registers as
a caller with how many calls it could have in flight, and the judge's max_concurrency is split max-min fairly among
the live callers (small wants in full, the rest evenly). Claims take one request from the bucket per verdict.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import connection

from evalplatform.db import prepared_cursor
from judging.models import JudgeConfig, JudgeLimiter, JudgeSlot

_REFILLED = "LEAST(%(capacity)s, tokens + GREATEST(0, EXTRACT(EPOCH FROM (%(now)s - refilled_at))) * %(rate)s)"
BUSY_WAIT_SECONDS = 0.1  # when every slot is held: about one call's worth of waiting, jittered
DEAD_CALLER = timedelta(minutes=1)  # registrations this long expired are deleted by the next caller to hang up

_CLAIMABLE = """
    SELECT v.id FROM judging_judgeverdict v JOIN judging_judgerun r ON r.id = v.run_id
    WHERE v.id = ANY(%(ids)s) AND r.status = 'running'
      AND (v.state = 'pending' OR (v.state = 'claimed' AND v.claimed_until < %(now)s))
      AND (v.retry_at IS NULL OR v.retry_at <= %(now)s)
    ORDER BY v.id LIMIT {limit}
    FOR UPDATE OF v SKIP LOCKED
"""
_CLAIM = """
    UPDATE judging_judgeverdict v
    SET state = 'claimed', claimed_by = %(holder)s, claimed_until = %(until)s, attempts = v.attempts + 1,
        retry_at = NULL, request_hash = h.hash
    FROM wanted w JOIN unnest(%(ids)s::bigint[], %(hashes)s::varchar[]) AS h(id, hash) ON h.id = w.id
    WHERE v.id = w.id
    RETURNING v.id, v.attempts
"""
# The bucket row stays locked for this one statement: it is read, the claims are capped by what it holds, and it
# is charged exactly the number of verdicts claimed.
_CLAIM_UNDER_RATE = f"""
    WITH bucket AS (
        SELECT {_REFILLED} AS available FROM judging_judgelimiter WHERE judge_id = %(judge)s FOR UPDATE
    ), wanted AS ({_CLAIMABLE.format(limit="(SELECT GREATEST(0, LEAST(%(n)s, floor(available)))::int FROM bucket)")}
    ), claim AS ({_CLAIM}
    ), spent AS (
        UPDATE judging_judgelimiter
        SET tokens = (SELECT available FROM bucket) - (SELECT count(*) FROM claim),
            refilled_at = GREATEST(refilled_at, %(now)s)
        WHERE judge_id = %(judge)s
    )
    SELECT (SELECT available FROM bucket), (SELECT json_agg(json_build_array(id, attempts)) FROM claim)
"""
_CLAIM_FREELY = f"""
    WITH wanted AS ({_CLAIMABLE.format(limit="%(n)s")}), claim AS ({_CLAIM})
    SELECT NULL, (SELECT json_agg(json_build_array(id, attempts)) FROM claim)
"""
_TAKE_SLOTS = """
    UPDATE judging_judgeslot SET holder = %(holder)s, held_until = %(until)s
    WHERE id IN (
        SELECT id FROM judging_judgeslot
        WHERE judge_id = %(judge)s AND slot < %(max)s AND (held_until IS NULL OR held_until < %(now)s)
        ORDER BY slot LIMIT %(n)s FOR UPDATE SKIP LOCKED
    )
"""
_RELEASE_SLOTS = """
    UPDATE judging_judgeslot SET holder = '', held_until = NULL
    WHERE id IN (SELECT id FROM judging_judgeslot WHERE judge_id = %(judge)s AND holder = %(holder)s LIMIT %(n)s)
"""
_CALL_IN = """
    WITH me AS (
        INSERT INTO judging_judgecaller (judge_id, holder, wants, alive_until)
        VALUES (%(judge)s, %(holder)s, %(wants)s, %(alive)s)
        ON CONFLICT (judge_id, holder) DO UPDATE SET wants = EXCLUDED.wants, alive_until = EXCLUDED.alive_until
    ), renewed AS (
        UPDATE judging_judgeslot SET held_until = %(until)s WHERE judge_id = %(judge)s AND holder = %(holder)s
    )
    SELECT wants FROM judging_judgecaller WHERE judge_id = %(judge)s AND holder <> %(holder)s AND alive_until >= %(now)s
"""


@dataclass(frozen=True)
class Claimed:
    attempts: dict[int, int]  # verdict id -> its attempts, this one included
    requests_available: float | None  # in the judge's bucket before the claim; None for claims outside the limits


def claim_verdicts(
    judge: JudgeConfig,
    *,
    candidates: list[tuple[int, str]],
    holder: str,
    until: datetime,
    current: datetime,
    limited: bool = True,
) -> Claimed:
    """Claim the claimable verdicts among (id, request hash) candidates, one request from the bucket each.

    Claimable: pending or under an expired claim, due (retry_at passed) and in a running run. Limited claims stop
    when the bucket runs dry, lowest ids first; unlimited ones (answers from the call cache) take no request.
    """
    rate = judge.requests_per_minute / 60.0
    params: dict[str, Any] = {
        "judge": judge.pk, "ids": [c[0] for c in candidates], "hashes": [c[1] for c in candidates],
        "n": len(candidates), "holder": holder, "until": until, "now": current, "capacity": max(1.0, rate),
        "rate": rate,
    }  # fmt: skip
    with prepared_cursor() as cursor:
        cursor.execute(_CLAIM_UNDER_RATE if limited else _CLAIM_FREELY, params)
        available, claimed = cursor.fetchone()
    if limited and available is None:  # a judge made without its bucket
        ensure_limits(judge, current=current)
        available = 0.0
    rows = json.loads(claimed) if isinstance(claimed, str) else claimed or []
    return Claimed({int(pk): int(attempts) for pk, attempts in rows}, available)


def take_slots(judge: JudgeConfig, *, holder: str, n: int, until: datetime, current: datetime) -> int:
    """Lease up to n free slots of the judge to the holder until `until`; return how many it got."""
    if n <= 0:
        return 0
    params: dict[str, Any] = {
        "holder": holder, "until": until, "judge": judge.pk, "max": judge.max_concurrency, "now": current, "n": n,
    }  # fmt: skip
    with prepared_cursor() as cursor:
        cursor.execute(_TAKE_SLOTS, params)
        return int(cursor.rowcount)


def release_slots(judge_id: int, *, holder: str, n: int | None = None) -> None:
    """Free n of the slots this holder leased (all when n is None; none it lost to an expired lease)."""
    if n is not None and n <= 0:
        return
    with prepared_cursor() as cursor:
        cursor.execute(_RELEASE_SLOTS, {"judge": judge_id, "holder": holder, "n": n})


def release_claims(*, holder: str) -> None:
    """Make the verdicts still claimed by the holder pending again (its outcomes for them will be dropped)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE judging_judgeverdict SET state = 'pending', claimed_by = '', claimed_until = NULL "
            "WHERE claimed_by = %s AND state = 'claimed'",
            [holder],
        )


def call_in(
    judge: JudgeConfig, *, holder: str, wants: int, alive_until: datetime, slots_until: datetime, current: datetime
) -> int:
    """Register the holder as a live caller wanting `wants` calls, renew its slots' lease; return its fair share."""
    params: dict[str, Any] = {"judge": judge.pk, "holder": holder, "wants": wants, "alive": alive_until,
                              "until": slots_until, "now": current}  # fmt: skip
    with prepared_cursor() as cursor:
        cursor.execute(_CALL_IN, params)
        others = [row[0] for row in cursor.fetchall()]
    return fair_share(judge.max_concurrency, wants, others)


def hang_up(judge_id: int, *, holder: str, current: datetime) -> None:
    """Free every slot of the holder and end its registration (and any caller dead for a minute)."""
    release_slots(judge_id, holder=holder)
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM judging_judgecaller WHERE judge_id = %s AND (holder = %s OR alive_until < %s)",
            [judge_id, holder, current - DEAD_CALLER],
        )


def fair_share(capacity: int, wants: int, others: list[int]) -> int:
    """Return a caller's part of `capacity` under max-min fairness: wants below an even split are met in full."""
    left, parties = capacity, len(others) + 1
    for want in sorted(others):
        if want * parties >= left:
            break
        left, parties = left - want, parties - 1
    return max(0, min(wants, -(-left // parties)))


def ensure_limits(judge: JudgeConfig, *, current: datetime) -> None:
    """Create the judge's token bucket and enough slots for its max_concurrency."""
    full = max(1.0, judge.requests_per_minute / 60.0)  # a new judge starts with a full bucket
    JudgeLimiter.objects.get_or_create(judge=judge, defaults={"tokens": full, "refilled_at": current})
    JudgeSlot.objects.bulk_create(
        [JudgeSlot(judge=judge, slot=i) for i in range(judge.max_concurrency)], ignore_conflicts=True
    )


def busy_wait(judge: JudgeConfig, *, current: datetime) -> float:
    """Return how long to wait when every slot is held (creating missing slots for judges made elsewhere)."""
    if JudgeSlot.objects.filter(judge=judge).count() < judge.max_concurrency:
        ensure_limits(judge, current=current)
        return 0.0
    return BUSY_WAIT_SECONDS * random.uniform(0.5, 1.5)


def token_wait(judge: JudgeConfig, *, current: datetime) -> float:
    """Return the seconds until the judge's bucket holds a request again."""
    limiter = JudgeLimiter.objects.filter(judge=judge).first()
    if limiter is None:
        ensure_limits(judge, current=current)
        return 0.0
    rate = judge.requests_per_minute / 60.0
    elapsed = max(0.0, (current - limiter.refilled_at).total_seconds())
    available = min(max(1.0, rate), limiter.tokens + elapsed * rate)
    return max(0.001, (1.0 - available) / rate)
