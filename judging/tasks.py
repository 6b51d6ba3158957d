"""Celery tasks: thin adapters around judging.services (ids in, one service call, decide when to run again)."""

from __future__ import annotations

import os
import socket

from celery import Task, shared_task

from judging import services

# Waits for the judge's limits shorter than this are spent in the worker (the judge is momentarily at its limits);
# longer ones, and every backoff after an error, go back to the broker with a countdown so the worker's thread is
# free for other batches meanwhile.
SLEEP_IN_WORKER_SECONDS = 2.0
RETRY_BATCH_SECONDS = 5.0  # after an unexpected error (e.g. the database went away), up to max_retries times


@shared_task(bind=True, name="judging.judge_verdicts", acks_late=True, ignore_result=True, max_retries=3)  # type: ignore[untyped-decorator]
def judge_verdicts(self: Task, verdict_ids: list[int]) -> None:
    """Judge a batch of verdicts, retrying transient errors with backoff; hand long waits back to the broker."""
    try:
        later = services.judge_verdicts(
            verdict_ids=verdict_ids, worker=f"{socket.gethostname()}:{os.getpid()}", max_wait=SLEEP_IN_WORKER_SECONDS
        )
    except Exception as exc:  # the batch gave back its claims: run it again rather than leave it to a resume
        raise self.retry(exc=exc, countdown=RETRY_BATCH_SECONDS) from exc
    services.enqueue_later(later)


@shared_task(name="judging.judge_verdict", acks_late=True, ignore_result=True)  # type: ignore[untyped-decorator]
def judge_verdict(verdict_id: int) -> None:
    """Send one verdict on as a batch: tasks sent before verdicts went in batches."""
    services.enqueue_verdicts([verdict_id])


@shared_task(name="judging.finish_panel_run", acks_late=True, ignore_result=True)  # type: ignore[untyped-decorator]
def finish_panel_run(panel_run_id: int) -> None:
    """Finish a panel run once its members' runs have ended; look again later while they go on."""
    from judging import panels
    from judging.models import PanelRun

    if panels.finish_panel_run_if_done(run_id=panel_run_id):
        return
    if PanelRun.objects.filter(pk=panel_run_id, status=PanelRun.Status.RUNNING).exists():
        panels.send_poll(panel_run_id)
