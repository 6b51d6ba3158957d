"""Celery tasks: thin adapters around the annotation services (ids in, one service call)."""

from __future__ import annotations

from celery import shared_task

from annotation.importers import jobs


@shared_task(name="annotation.run_import_job", acks_late=True, ignore_result=True)  # type: ignore[untyped-decorator]
def run_import_job(job_id: int) -> None:
    """Check or import a staged upload in the background (annotation.importers.jobs.run_import_job)."""
    jobs.run_import_job(job_id=job_id)
