"""Celery tasks: thin adapters around judging.services (ids in, one service call, decide when to run again)."""

from __future__ import annotations

import os
import socket
import time

from celery import shared_task

from judging import services

# Waits shorter than this are slept in the worker (the judge is momentarily at its limits); longer ones
# (backoff after an error, Retry-After) go back to the broker with a countdown so the worker slot is freed.
SLEEP_IN_WORKER_SECONDS = 2.0


@shared_task(name="judging.judge_verdict", acks_late=True, ignore_result=True)  # type: ignore[untyped-decorator]
def judge_verdict(verdict_id: int) -> None:
    """Judge one verdict (one comparison in one order), retrying transient errors with backoff."""
    while True:
        step = services.judge_verdict(verdict_id=verdict_id, worker=f"{socket.gethostname()}:{os.getpid()}")
        if step.retry_in is None:
            return
        if step.retry_in > SLEEP_IN_WORKER_SECONDS:
            services.enqueue_verdicts([verdict_id], countdown=step.retry_in)
            return
        time.sleep(step.retry_in)
