"""A judge's limits across every worker: a token bucket for its request rate, leased slots for its concurrency.

Each operation is one SQL statement, so row locks live only inside PostgreSQL for microseconds: a lock held
across Python round trips would convoy dozens of worker threads behind one that waits for the GIL. The common
path, claiming a verdict under both limits, is a single statement too (claim_under_limits).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection

from judging.models import JudgeConfig, JudgeLimiter, JudgeSlot

_REFILLED = "LEAST(%(capacity)s, tokens + GREATEST(0, EXTRACT(EPOCH FROM (%(now)s - refilled_at))) * %(rate)s)"
BUSY_WAIT_SECONDS = 0.1  # when every slot is held: about one call's worth of waiting, jittered


_CLAIM_UNDER_LIMITS = f"""
    WITH slot AS (
        UPDATE judging_judgeslot SET holder = %(holder)s, held_until = %(until)s
        WHERE id = (
            SELECT id FROM judging_judgeslot
            WHERE judge_id = %(judge)s AND slot < %(max)s AND (held_until IS NULL OR held_until < %(now)s)
            ORDER BY slot LIMIT 1 FOR UPDATE SKIP LOCKED
        )
        RETURNING id
    ), token AS (
        UPDATE judging_judgelimiter
        SET tokens = {_REFILLED} - 1, refilled_at = GREATEST(refilled_at, %(now)s)
        WHERE judge_id = %(judge)s AND {_REFILLED} >= 1 AND EXISTS (SELECT 1 FROM slot)
        RETURNING tokens
    ), claim AS (
        UPDATE judging_judgeverdict v
        SET state = 'claimed', claimed_by = %(holder)s, claimed_until = %(until)s, attempts = v.attempts + 1,
            request_hash = %(hash)s, retry_at = NULL
        FROM judging_judgerun r
        WHERE v.id = %(verdict)s AND r.id = v.run_id AND r.status = 'running'
          AND (v.state = 'pending' OR (v.state = 'claimed' AND v.claimed_until < %(now)s))
          AND EXISTS (SELECT 1 FROM token)
        RETURNING v.id
    )
    SELECT (SELECT count(*) FROM slot), (SELECT count(*) FROM token), (SELECT count(*) FROM claim)
"""


@dataclass(frozen=True)
class ClaimAttempt:
    slot: bool
    token: bool
    claimed: bool


def claim_under_limits(
    judge: JudgeConfig, *, verdict_id: int, holder: str, until: datetime, current: datetime, request_hash: str
) -> ClaimAttempt:
    """In one statement: take a slot, then a request from the bucket, then claim the verdict, each if the last did.

    The caller gives back what was taken when a later step failed (release_slot, refund_token).
    """
    rate = judge.requests_per_minute / 60.0
    params: dict[str, Any] = {
        "holder": holder, "until": until, "judge": judge.pk, "max": judge.max_concurrency, "now": current,
        "capacity": max(1.0, rate), "rate": rate, "verdict": verdict_id, "hash": request_hash,
    }  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM_UNDER_LIMITS, params)
        slot, token, claimed = cursor.fetchone()
    return ClaimAttempt(bool(slot), bool(token), bool(claimed))


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


def release_slot(judge_id: int, *, holder: str) -> None:
    """Free the slot this holder took (nothing when its lease expired and another holder took it)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE judging_judgeslot SET holder = '', held_until = NULL WHERE judge_id = %s AND holder = %s",
            [judge_id, holder],
        )


def refund_token(judge_id: int) -> None:
    """Give back a request taken for a claim that did not happen."""
    with connection.cursor() as cursor:
        cursor.execute("UPDATE judging_judgelimiter SET tokens = tokens + 1 WHERE judge_id = %s", [judge_id])
