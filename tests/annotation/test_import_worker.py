"""A large upload checked, then imported, by a real Celery worker process through a real broker."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from annotation.models import ImportJob, Output
from tests import factories
from tests.annotation.test_import_jobs import OUTPUTS
from tests.judging.test_worker import broker_env, start_worker

pytestmark = [pytest.mark.worker, pytest.mark.slow]
__all__ = ["broker_env", "start_worker"]  # fixtures shared with the judging worker tests
LIVENESS_SECONDS = 90  # a bound for a hung job, not a speed target


def _wait(job_id: int) -> ImportJob:
    deadline = time.monotonic() + LIVENESS_SECONDS
    while time.monotonic() < deadline:
        job = ImportJob.objects.get(pk=job_id)
        if job.status not in (ImportJob.Status.QUEUED, ImportJob.Status.RUNNING):
            return job
        time.sleep(0.2)
    raise AssertionError(f"import job #{job_id} did not finish: {job.status} {job.phase} {job.percent}%")


@pytest.mark.django_db(transaction=True)
def test_a_worker_checks_then_imports_a_large_upload(
    researcher: User, start_worker: Callable[..., Any], settings: Any
) -> None:
    settings.IMPORT_LIMITS = {"inline_max_bytes": 100}
    campaign = factories.CampaignFactory.create(owner=researcher, slug="worker-import")
    client = Client()
    client.force_login(researcher)
    url = reverse("admin:annotation_campaign_import", args=[campaign.pk, "outputs"])
    start_worker(concurrency=2)

    preview = client.post(url, {"file": SimpleUploadedFile("big.jsonl", OUTPUTS)})
    check = _wait(int(preview["Location"].rstrip("/").rsplit("/", 1)[1]))

    assert (check.status, check.dry_run, check.summary["created"]) == ("done", True, {"prompts": 20, "outputs": 40})
    assert not Output.objects.filter(prompt__campaign=campaign).exists()

    confirmed = client.post(url, {"token": check.token})
    done = _wait(int(confirmed["Location"].rstrip("/").rsplit("/", 1)[1]))

    assert (done.status, done.dry_run) == ("done", False)
    assert Output.objects.filter(prompt__campaign=campaign).count() == 40
