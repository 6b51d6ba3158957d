"""Judge runs end to end with a real Celery worker process, a real broker and the local server.

The broker is Redis (database 14, flushed first; JUDGING_TEST_REDIS_URL picks another, so that test runs sharing one
Redis server do not take each other's tasks) when 127.0.0.1:6379 answers, otherwise kombu's filesystem transport in a
temporary folder, so these tests run (not skip) on a machine without Redis.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from io import StringIO
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.db.models import Count

from annotation.models import Campaign, Rating
from evalplatform.celery import app as celery_app
from judging import selectors, services
from judging.models import JudgeConfig, JudgeRun, JudgeVerdict
from tests import factories
from tests.judging.conftest import LocalLLM

pytestmark = [pytest.mark.worker, pytest.mark.slow]

REDIS_TEST_URL = os.environ.get("JUDGING_TEST_REDIS_URL", "redis://127.0.0.1:6379/14")
LIVENESS_SECONDS = 90  # a bound for a hung run, not a speed target


def redis_answers() -> bool:
    if os.environ.get("JUDGING_TEST_BROKER") == "filesystem":  # to try the fallback on a machine with Redis
        return False
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture
def broker_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """Point this process's Celery app at a private broker; return the environment that points a worker there."""
    if redis_answers():
        import redis

        redis.Redis.from_url(REDIS_TEST_URL).flushdb()
        url, options, env = REDIS_TEST_URL, {}, {"CELERY_BROKER_URL": REDIS_TEST_URL}
    else:
        folder = tmp_path / "celery"
        for sub in ("out", "processed", "control"):
            (folder / sub).mkdir(parents=True)
        url = "filesystem://"
        options = {
            "data_folder_in": str(folder / "out"),
            "data_folder_out": str(folder / "out"),
            "data_folder_processed": str(folder / "processed"),
            "polling_interval": 0.2,
            "control_folder": str(folder / "control"),
        }
        env = {"CELERY_BROKER_URL": url, "EVALPLATFORM_CELERY_DIR": str(folder)}
    saved = (celery_app.conf.broker_url, celery_app.conf.broker_transport_options)
    _use_broker(url, options)
    yield env
    _use_broker(*saved)


def _use_broker(url: str, options: dict[str, Any]) -> None:
    # Drop (not close) the cached pools: kombu keeps producer pools per broker URL and reuses them.
    celery_app.conf.broker_url = url
    celery_app.conf.broker_transport_options = options
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


def database_env() -> dict[str, str]:
    """Return the environment that points a subprocess at this test run's database."""
    name = connection.settings_dict["NAME"]
    if os.environ.get("DATABASE_URL"):
        parts = urlsplit(os.environ["DATABASE_URL"])
        return {"DATABASE_URL": urlunsplit(parts._replace(path="/" + name))}
    return {"EVALPLATFORM_DB_NAME": name}


@pytest.fixture
def start_worker(broker_env: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Return a starter of `celery worker` processes (thread pool), all killed after the test; logs are printed."""
    workers: list[tuple[subprocess.Popen[bytes], Path]] = []
    env = {**os.environ, **broker_env, **database_env(), "JUDGING_LEASE_MARGIN_SECONDS": "1"}

    def start(concurrency: int = 8) -> subprocess.Popen[bytes]:
        log = tmp_path / f"worker-{len(workers)}.log"
        command = [
            sys.executable, "-m", "celery", "-A", "evalplatform", "worker", "-P", "threads", "-c", str(concurrency),
            "-n", f"judging-test-{uuid.uuid4().hex[:8]}@%h", "--loglevel=INFO",
            "--without-gossip", "--without-mingle", "--without-heartbeat",
        ]  # fmt: skip
        with log.open("wb") as out:
            # The worker checks the judge's endpoint itself: allow what this test allows (its local server).
            allowed = {"EVALPLATFORM_JUDGE_ALLOWED_ENDPOINTS": ",".join(settings.EVALPLATFORM_JUDGE_ALLOWED_ENDPOINTS)}
            process = subprocess.Popen(
                command, cwd=factories.REPO_ROOT, env={**env, **allowed}, stdout=out, stderr=subprocess.STDOUT
            )
        workers.append((process, log))
        return process

    yield start
    for process, log in workers:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        print(f"--- {log.name}\n" + log.read_text(errors="replace")[-3000:])


def wait_for_run(run: JudgeRun, until: Callable[[JudgeRun], bool] | None = None) -> JudgeRun:
    """Poll the run until it ends (or `until` holds); fail with its progress if it hangs."""
    deadline = time.monotonic() + LIVENESS_SECONDS
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if (until or (lambda r: r.status != JudgeRun.Status.RUNNING))(run):
            return run
        time.sleep(0.2)
    raise AssertionError(f"run #{run.pk} did not get there: {run.status}, {selectors.run_progress(run)}")


@pytest.fixture
def big_campaign(researcher: Any) -> Campaign:
    """Return a campaign of 10 prompts x 3 models: 30 comparisons, 60 verdicts in both orders."""
    campaign = factories.CampaignFactory.create(owner=researcher, status="active")
    factories.populate_campaign(campaign, prompts=10, models=["model-x", "model-y", "model-z"])
    return campaign


def assert_one_verdict_and_one_rating_per_comparison_and_order(run: JudgeRun, judge: JudgeConfig) -> None:
    verdicts = JudgeVerdict.objects.filter(judge=judge)
    assert verdicts.count() == 2 * run.campaign.comparisons.count()
    assert not verdicts.values("comparison", "order").annotate(n=Count("id")).filter(n__gt=1).exists()
    ratings = Rating.objects.filter(rater=judge.rater)
    assert ratings.count() == verdicts.filter(state=JudgeVerdict.State.DONE).count()
    assert not ratings.values("comparison", "left_output").annotate(n=Count("id")).filter(n__gt=1).exists()
    for verdict in verdicts.filter(state=JudgeVerdict.State.DONE).select_related("rating", "comparison"):
        assert verdict.rating is not None
        assert verdict.rating.metadata["judge_verdict"] == verdict.pk
        assert verdict.rating.left_output_id == verdict.shown_first_id


@pytest.mark.django_db(transaction=True)
def test_run_with_a_real_worker_ends_every_verdict_judged_or_failed_with_a_reason_despite_20_percent_faults(
    big_campaign: Campaign, local_llm: LocalLLM, start_worker: Callable[..., Any]
) -> None:
    url, server = local_llm(latency_ms=20, fault_rate=0.2, retry_after=0.2, hang_seconds=5, seed=5)
    judge, _ = services.save_judge(
        name="faulty", base_url=url, model="local-judge", template="arena_hard", timeout_seconds=1.0,
        max_attempts=4, max_concurrency=8, requests_per_minute=60_000,
    )  # fmt: skip
    start_worker(concurrency=8)
    run = wait_for_run(services.start_run(campaign=big_campaign, judge=judge))

    assert run.status == JudgeRun.Status.COMPLETED
    states = dict(JudgeVerdict.objects.filter(run=run).values_list("state").annotate(n=Count("id")))
    assert set(states) <= {"done", "parse_failed", "failed"}
    assert sum(states.values()) == 60
    assert states.get("parse_failed", 0) > 0
    unresolved = JudgeVerdict.objects.filter(run=run).exclude(state=JudgeVerdict.State.DONE)
    assert all(v.reason for v in unresolved)
    assert all(v.raw_response for v in unresolved.filter(state=JudgeVerdict.State.PARSE_FAILED))
    assert JudgeVerdict.objects.filter(run=run, attempts__gt=1).exists()  # transient faults were retried
    assert sum(1 for kind in ("rate_limit", "server_error", "hang") if server.stats[f"fault_{kind}"]) >= 2
    assert_one_verdict_and_one_rating_per_comparison_and_order(run, judge)
    progress = selectors.run_progress(run)
    assert (progress.done, progress.parse_failed, progress.failed) == (
        states.get("done", 0),
        states.get("parse_failed", 0),
        states.get("failed", 0),
    )


def start_run_and_kill_its_worker(
    campaign: Campaign,
    judge: JudgeConfig,
    worker: subprocess.Popen[bytes],
    once_done: Callable[[selectors.RunProgress], bool],
) -> JudgeRun:
    """Start a run on the campaign, SIGKILL its only worker once `once_done` holds, and return the run."""
    run = services.start_run(campaign=campaign, judge=judge)
    wait_for_run(run, until=lambda r: once_done(selectors.run_progress(r)))
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait(timeout=10)
    # Killed mid-batch: its calls in flight stay claimed until their lease ends.
    assert selectors.run_progress(run).claimed > 0
    return run


@pytest.mark.django_db(transaction=True)
def test_worker_killed_mid_run_then_restarted_completes_with_exactly_one_verdict_per_comparison_and_order(
    big_campaign: Campaign, local_llm: LocalLLM, start_worker: Callable[..., Any]
) -> None:
    url, _ = local_llm(latency_ms=300)
    judge, _ = services.save_judge(
        name="steady", base_url=url, model="local-judge", timeout_seconds=2.0, max_concurrency=4,
        requests_per_minute=60_000,
    )  # fmt: skip
    run = start_run_and_kill_its_worker(
        big_campaign, judge, start_worker(concurrency=4), once_done=lambda p: p.done >= 8
    )
    at_kill = selectors.run_progress(run)
    assert at_kill.done < at_kill.total  # killed mid-run

    start_worker(concurrency=4)
    run = wait_for_run(services.resume_run(run=run))

    assert run.status == JudgeRun.Status.COMPLETED
    assert selectors.run_progress(run).done == 60
    assert_one_verdict_and_one_rating_per_comparison_and_order(run, judge)


@pytest.mark.django_db(transaction=True)
def test_judge_watch_resumes_a_run_whose_worker_was_killed_and_sees_it_complete(
    big_campaign: Campaign, local_llm: LocalLLM, start_worker: Callable[..., Any]
) -> None:
    url, _ = local_llm(latency_ms=200)
    judge, _ = services.save_judge(
        name="watched", base_url=url, model="local-judge", timeout_seconds=1.0, max_concurrency=4,
        requests_per_minute=60_000,
    )  # fmt: skip
    run = start_run_and_kill_its_worker(
        big_campaign, judge, start_worker(concurrency=2), once_done=lambda p: p.done >= 4
    )
    start_worker(concurrency=2)

    out = StringIO()
    signal.signal(signal.SIGALRM, lambda *_: pytest.fail(f"judge --watch hung:\n{out.getvalue()}"))
    signal.alarm(LIVENESS_SECONDS)
    try:
        call_command("judge", big_campaign.slug, "--watch", str(run.pk), "--poll", "0.2", stdout=out)
    finally:
        signal.alarm(0)

    run.refresh_from_db()
    assert run.status == JudgeRun.Status.COMPLETED
    assert f"resumed run #{run.pk}:" in out.getvalue()
    assert f"run #{run.pk} completed: 60 judged" in out.getvalue()
    assert_one_verdict_and_one_rating_per_comparison_and_order(run, judge)
