"""Run an import of any kind, inline or as a background job with progress (ImportJob), from a staged upload.

Small uploads (up to IMPORT_LIMITS["inline_max_bytes"]) are checked and imported in the request; larger ones by a
Celery worker (annotation.tasks.run_import_job, a thin adapter around run_import_job), which records how much of
the file it has read and, at the end, the summary or the line errors on the job's row for the admin page.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from annotation.importers.alpaca_eval import import_alpaca_eval, parse_alpaca_eval
from annotation.importers.battles import import_battles, parse_battles
from annotation.importers.errors import ImportRefused
from annotation.importers.gold import import_gold, parse_gold
from annotation.importers.limits import import_limits
from annotation.importers.outputs import import_outputs, parse_outputs
from annotation.importers.reading import Progress, Source
from annotation.importers.staging import StagedFile, discard_staged, load_staged
from annotation.importers.summary import ImportSummary
from annotation.models import Campaign, ImportJob
from annotation.prompt_hygiene import import_duplicates
from evalplatform.exceptions import DomainError


@dataclass(frozen=True)
class Importer:
    """How one kind of file is parsed (pure) and written (one transaction) into a campaign."""

    parse: Callable[[str, Source, Progress | None], Any]
    write: Callable[[Campaign, Any, bool], ImportSummary]


IMPORTERS = {
    "outputs": Importer(
        lambda name, source, progress: parse_outputs(name, source, progress=progress),
        lambda campaign, parsed, dry_run: import_outputs(campaign=campaign, parsed=parsed, dry_run=dry_run),
    ),
    "battles": Importer(
        lambda name, source, progress: parse_battles(name, source, progress=progress),
        lambda campaign, plan, dry_run: import_battles(
            campaign_slug=campaign.slug, plan=plan, owner=campaign.owner, dry_run=dry_run
        ),
    ),
    "alpaca_eval": Importer(
        lambda name, source, progress: parse_alpaca_eval(name, source, progress=progress),
        lambda campaign, plan, dry_run: import_alpaca_eval(
            campaign_slug=campaign.slug, plan=plan, owner=campaign.owner, dry_run=dry_run
        ),
    ),
    "gold": Importer(
        lambda name, source, progress: parse_gold(name, source, progress=progress),
        lambda campaign, parsed, dry_run: import_gold(campaign=campaign, parsed=parsed, dry_run=dry_run),
    ),
}


def run_import(
    *,
    kind: str,
    campaign: Campaign,
    name: str,
    source: Source,
    dry_run: bool,
    progress: Progress | None = None,
    writing: Callable[[], None] | None = None,
) -> ImportSummary:
    """Parse the file, then write it (a dry run rolls back); raise ImportRefused or DomainError when refused."""
    importer = IMPORTERS[kind]
    parsed = importer.parse(name, source, progress)
    if writing is not None:
        writing()
    summary = importer.write(campaign, parsed, dry_run)
    summary.duplicates = import_duplicates(campaign=campaign, parsed=parsed, dry_run=dry_run)
    return summary


def runs_inline(size: int) -> bool:
    """Return whether a file of this size is checked and imported in the request rather than by a worker."""
    return size <= import_limits().inline_max_bytes


def start_import_job(*, campaign: Campaign, user: User, staged: StagedFile, token: str, dry_run: bool) -> ImportJob:
    """Queue a job for the staged upload; the task is sent once the job's row is committed."""
    from annotation import tasks  # tasks import this module

    # Confirming twice (a double click, the back button) follows the job already started.
    started = ImportJob.objects.filter(token=token, dry_run=dry_run).exclude(status=ImportJob.Status.FAILED).first()
    if started is not None:
        return started
    job = ImportJob.objects.create(
        campaign=campaign,
        user=user,
        kind=staged.kind,
        file_name=staged.name,
        token=token,
        dry_run=dry_run,
        size_bytes=staged.size,
    )
    transaction.on_commit(lambda: tasks.run_import_job.delay(job.pk))
    return job


def run_import_job(*, job_id: int) -> None:
    """Run a queued job once (a second delivery finds it claimed and does nothing), recording its outcome."""
    claimed = ImportJob.objects.filter(pk=job_id, status=ImportJob.Status.QUEUED).update(
        status=ImportJob.Status.RUNNING, phase="reading"
    )
    if not claimed:
        return
    job = ImportJob.objects.select_related("campaign").get(pk=job_id)
    rows = ImportJob.objects.filter(pk=job_id)

    def progress(read: int) -> None:  # outside the import's transaction, so that the admin page sees it
        rows.update(read_bytes=read)

    def writing() -> None:
        rows.update(phase="writing", read_bytes=job.size_bytes)

    try:
        staged = load_staged(job.token, campaign_id=job.campaign_id, kind=job.kind, user_id=job.user_id)
        summary = run_import(
            kind=job.kind,
            campaign=job.campaign,
            name=job.file_name,
            source=staged.path,
            dry_run=job.dry_run,
            progress=progress,
            writing=writing,
        )
    except ImportRefused as refused:
        _finish(rows, ImportJob.Status.REFUSED, errors=refused.lines, error_total=refused.total)
    except DomainError as error:
        _finish(rows, ImportJob.Status.FAILED, message=error.message)
    except Exception as exc:
        _finish(rows, ImportJob.Status.FAILED, message=f"the import stopped on an unexpected error: {exc!r}"[:2000])
        raise
    else:
        _finish(rows, ImportJob.Status.DONE, summary=dataclasses.asdict(summary))
        if not job.dry_run:
            discard_staged(job.token)


def _finish(rows: Any, status: str, **fields: Any) -> None:
    rows.update(status=status, phase="", finished_at=timezone.now(), **fields)


def job_summary(job: ImportJob) -> ImportSummary | None:
    """Return the summary a finished job recorded."""
    return ImportSummary(**job.summary) if job.summary else None
