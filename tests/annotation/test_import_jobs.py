"""Background imports: a large upload is checked, then imported, by a worker (ImportJob), with progress."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from annotation import tasks
from annotation.importers import staging
from annotation.importers.errors import ErrorCollector
from annotation.importers.reading import read_records
from annotation.models import Campaign, ImportJob, Output, Prompt
from tests import factories

pytestmark = pytest.mark.django_db

OUTPUTS = b"".join(
    json.dumps({"prompt_id": f"p{i}", "prompt": f"Q{i}?", "model": m, "output": f"{m} says {i}"}).encode() + b"\n"
    for i in range(20)
    for m in ("m1", "m2")
)


@pytest.fixture(autouse=True)
def small_inline_limit(settings: Any) -> None:
    settings.IMPORT_LIMITS = {"inline_max_bytes": 100}


@pytest.fixture
def rita(client: Client, researcher: User) -> Client:
    client.force_login(researcher)
    return client


@pytest.fixture
def draft(researcher: User) -> Campaign:
    return factories.CampaignFactory.create(owner=researcher, slug="draft")


def _upload(client: Client, campaign: Campaign, data: bytes, name: str = "big.jsonl") -> Any:
    url = reverse("admin:annotation_campaign_import", args=[campaign.pk, "outputs"])
    return client.post(url, {"file": SimpleUploadedFile(name, data)})


def _run_worker(job: ImportJob) -> ImportJob:
    tasks.run_import_job(job.pk)  # what the worker runs; the real worker is tested in tests/judging/test_worker.py
    job.refresh_from_db()
    return job


def test_a_large_upload_is_checked_by_a_worker_then_imported_once_confirmed(rita: Client, draft: Campaign) -> None:
    preview = _upload(rita, draft, OUTPUTS)

    job = ImportJob.objects.get(campaign=draft)
    assert preview.status_code == 302
    assert preview["Location"] == reverse("admin:annotation_campaign_import_job", args=[draft.pk, "outputs", job.pk])
    assert (job.status, job.dry_run, job.size_bytes) == ("queued", True, len(OUTPUTS))
    assert b"Waiting for a worker" in rita.get(preview["Location"]).content

    job = _run_worker(job)
    page = rita.get(preview["Location"])

    assert (job.status, job.summary["outputs"], job.summary["created"]) == ("done", 40, {"prompts": 20, "outputs": 40})
    assert b"Ready to import big.jsonl" in page.content
    assert b'http-equiv="refresh"' not in page.content
    assert not Prompt.objects.filter(campaign=draft).exists()

    confirmed = rita.post(reverse("admin:annotation_campaign_import", args=[draft.pk, "outputs"]), {"token": job.token})
    import_job = ImportJob.objects.get(campaign=draft, dry_run=False)
    assert confirmed["Location"].endswith(f"/job/{import_job.pk}/")
    again = rita.post(reverse("admin:annotation_campaign_import", args=[draft.pk, "outputs"]), {"token": job.token})
    assert again["Location"] == confirmed["Location"]  # a second click follows the same job

    import_job = _run_worker(import_job)

    assert import_job.status == "done"
    assert Output.objects.filter(prompt__campaign=draft).count() == 40
    assert b"Imported big.jsonl" in rita.get(confirmed["Location"]).content
    assert _run_worker(import_job).finished_at == import_job.finished_at  # a second delivery does nothing


def test_a_refused_background_check_lists_the_line_errors_and_writes_nothing(rita: Client, draft: Campaign) -> None:
    bad = OUTPUTS + b'{"prompt_id": "p99", "prompt": "Q"}\n' * 1500

    job = _run_worker(ImportJob.objects.get(pk=_upload(rita, draft, bad)["Location"].rstrip("/").split("/")[-1]))
    page = rita.get(reverse("admin:annotation_campaign_import_job", args=[draft.pk, "outputs", job.pk]))

    assert (job.status, job.error_total, len(job.errors)) == ("refused", 3000, 1001)
    assert job.errors[0] == "big.jsonl:41: model: missing field"
    assert job.errors[-1] == "... and 2,000 more"
    assert b"The file was refused: 3000 errors" in page.content
    assert b"Confirm import" not in page.content
    assert not Prompt.objects.filter(campaign=draft).exists()


def test_a_job_page_shows_progress_while_running_and_reloads_itself(
    rita: Client, draft: Campaign, researcher: User
) -> None:
    job = ImportJob.objects.create(
        campaign=draft, user=researcher, kind="outputs", file_name="o.jsonl", token="-", dry_run=True,
        size_bytes=4000, read_bytes=1000, status="running", phase="reading",
    )  # fmt: skip

    page = rita.get(reverse("admin:annotation_campaign_import_job", args=[draft.pk, "outputs", job.pk]))

    assert b"Reading: 25% of the file" in page.content
    assert b'<meta http-equiv="refresh" content="2">' in page.content


def test_another_researcher_of_the_campaign_sees_the_job_but_cannot_confirm_it(
    draft: Campaign, researcher: User
) -> None:
    colleague = factories.UserFactory.create(username="ravi", is_superuser=True, is_staff=True)
    client = Client()
    client.force_login(researcher)
    job = _run_worker(ImportJob.objects.get(pk=_upload(client, draft, OUTPUTS)["Location"].rstrip("/").split("/")[-1]))
    other = Client()
    other.force_login(colleague)

    page = other.get(reverse("admin:annotation_campaign_import_job", args=[draft.pk, "outputs", job.pk]))

    assert b"Ready to import big.jsonl" in page.content
    assert b"Confirm import" not in page.content


def test_a_job_of_another_campaign_is_not_found(rita: Client, draft: Campaign, researcher: User) -> None:
    other = factories.CampaignFactory.create(owner=researcher, slug="other")
    job = ImportJob.objects.create(
        campaign=other, user=researcher, kind="outputs", file_name="o.jsonl", token="-", dry_run=True, size_bytes=1
    )

    page = rita.get(reverse("admin:annotation_campaign_import_job", args=[draft.pk, "outputs", job.pk]))

    assert page.status_code == 404


def test_a_job_whose_upload_is_not_its_users_fails_saying_so(draft: Campaign, researcher: User) -> None:
    token = staging.stage_upload(name="o.jsonl", upload=OUTPUTS, campaign_id=draft.pk, kind="outputs", user_id=0)
    job = ImportJob.objects.create(
        campaign=draft, user=researcher, kind="outputs", file_name="o.jsonl", token=token, dry_run=True, size_bytes=1
    )

    job = _run_worker(job)

    assert (job.status, job.message) == ("failed", "this upload belongs to another import: upload the file again")


def test_small_uploads_still_run_in_the_request(rita: Client, draft: Campaign, settings: Any) -> None:
    settings.IMPORT_LIMITS = {"inline_max_bytes": 10_000}

    preview = _upload(rita, draft, OUTPUTS)

    assert preview.status_code == 200
    assert b"Ready to import big.jsonl" in preview.content
    assert not ImportJob.objects.exists()


def test_reading_reports_progress_in_bytes_read() -> None:
    line = json.dumps({"prompt_id": "p", "prompt": "Q", "model": "m", "output": "x" * 1000}).encode() + b"\n"
    data = line * 3000  # about 3 MB
    seen: list[int] = []

    records = list(read_records("o.jsonl", data, ErrorCollector("o.jsonl"), progress=seen.append))

    assert len(records) == 3000
    assert len(seen) == 3  # one report per megabyte read
    assert seen == sorted(seen)
    assert 1024 * 1024 <= seen[0] < seen[-1] <= len(data)


def test_the_upload_limit_is_the_operators_setting(rita: Client, draft: Campaign, settings: Any) -> None:
    settings.IMPORT_LIMITS = {"max_upload_bytes": 1024 * 1024}

    page = _upload(rita, draft, b" " * (1024 * 1024 + 1))

    assert b"The file is larger than 1 MB." in page.content
    assert not ImportJob.objects.exists()
