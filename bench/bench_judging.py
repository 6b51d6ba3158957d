"""Benchmark judge runs: N judgments against the local server (200 ms latency) at concurrency 64.

Prints the wall time against the ideal (judgments x latency / concurrency) as a ratio, for a clean server and for
one answering 10% of calls with 429, and the same figures for a named baseline measured in the same run: the bare
openai client in 64 threads (no database, no Celery) doing the same number of calls.

    DATABASE_URL=postgres://... python bench/bench_judging.py [--quick] [--path celery|threads]

--path celery (default) runs the real path: `celery worker -P threads` processes (2, one per core, of 4 threads:
each task judges a batch of verdicts with its own window of concurrent calls) fed through Redis when it answers on
127.0.0.1:6379 (database 13, flushed; BENCH_REDIS_URL picks another, so benchmarks run side by side do not flush
each other's queues), the filesystem transport otherwise.
--path threads calls the judging service (the same code the task calls) from 64 threads in this process.
"""

from __future__ import annotations

import argparse
import itertools
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from annotation.models import Campaign
    from judging.models import JudgeConfig, JudgeRun

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalplatform.settings")
REDIS_BENCH_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")


def main() -> None:
    args = _arguments()
    _configure_broker(args)
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)  # the bench database may predate newer migrations
    judgments = args.judgments or (1000 if args.quick else 10_000)
    ideal = judgments * args.latency_ms / 1000 / args.concurrency
    print(f"{judgments} judgments, {args.latency_ms} ms latency, concurrency {args.concurrency}: ideal {ideal:.1f} s")
    print(f"path: {args.path}; broker: {os.environ['CELERY_BROKER_URL'] if args.path == 'celery' else '-'}")
    rows = []
    for label, faults in (("clean", []), ("10% 429", ["--fault-rate", "0.1", "--faults", "rate_limit"])):
        with local_server(args.latency_ms, faults) as url:
            baseline = measure_bare_client(url, judgments, args.concurrency)
            judged = measure_judging(url, judgments, args)
        rows.append((label, baseline, judged))
    print(f"\n{'scenario':<10} {'baseline: bare client':>24} {'judging (' + args.path + ')':>22} {'target':>8}")
    for (label, baseline, judged), target in zip(rows, (1.25, 1.5), strict=True):
        print(
            f"{label:<10} {baseline:>8.1f} s = {baseline / ideal:>5.2f}x ideal {judged:>8.1f} s = "
            f"{judged / ideal:>5.2f}x ideal  <= {target}x  ({judged / baseline:.2f}x baseline)"
        )


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1,000 judgments instead of 10,000")
    parser.add_argument("--judgments", type=int, help="override the number of judgments")
    parser.add_argument("--latency-ms", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--path", choices=["celery", "threads"], default="celery")
    parser.add_argument("--workers", type=int, default=2, help="worker processes sharing the concurrency")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker process (batches judged at once)")
    return parser.parse_args()


def _configure_broker(args: argparse.Namespace) -> None:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            os.environ["CELERY_BROKER_URL"] = REDIS_BENCH_URL
            import redis

            redis.Redis.from_url(REDIS_BENCH_URL).flushdb()
    except OSError:
        os.environ["CELERY_BROKER_URL"] = "filesystem://"
        os.environ["EVALPLATFORM_CELERY_DIR"] = tempfile.mkdtemp(prefix="bench-celery-")


@contextmanager
def local_server(latency_ms: int, faults: list[str]) -> Iterator[str]:
    """Run `manage.py serve_local_llm` on a free port; yield its base URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "manage.py", "serve_local_llm", "--port", str(port), "--latency-ms", str(latency_ms),
               "--retry-after", "1", *faults]  # fmt: skip
    server = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL)
    try:
        _wait_for_port(port)
        url = f"http://127.0.0.1:{port}/v1"
        _allow_endpoint(url)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


def _allow_endpoint(url: str) -> None:
    """Let judges call the local server, here and in the workers started after this (judging.policy)."""
    from django.conf import settings

    os.environ["EVALPLATFORM_JUDGE_ALLOWED_ENDPOINTS"] = url
    settings.EVALPLATFORM_JUDGE_ALLOWED_ENDPOINTS = [url]


def _wait_for_port(port: int) -> None:
    for _ in range(200):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"the local server did not listen on port {port}")


def measure_bare_client(url: str, calls: int, concurrency: int) -> float:
    """Return the wall time of the bare client doing `calls` calls (retrying 429 after Retry-After) in threads."""
    from judging import llm

    def one(i: int) -> None:
        request = llm.ChatRequest(url, "local-judge", (("user", f"baseline {i} {uuid.uuid4()}"),), 0.0, 64)
        while True:
            try:
                llm.complete(request, api_key_env="", timeout=30)
                return
            except llm.TransientLLMError as exc:
                time.sleep(exc.retry_after or 1.0)

    start = time.monotonic()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(calls)))
    return time.monotonic() - start


def measure_judging(url: str, judgments: int, args: argparse.Namespace) -> float:
    """Return the wall time of a judge run of `judgments` verdicts, from start to the run's end."""
    from judging import services
    from judging.models import JudgeRun

    campaign, judge = _make_campaign_and_judge(url, judgments, args.concurrency)
    try:
        if args.path == "threads":
            return _run_in_threads(campaign, judge, args.concurrency)
        with celery_workers(args.workers, args.threads):
            _warm_up(url, args.concurrency)
            cpu = _CpuMeter(url)
            start = time.monotonic()
            run = services.start_run(campaign=campaign, judge=judge)
            while JudgeRun.objects.get(pk=run.pk).status == JudgeRun.Status.RUNNING:
                time.sleep(0.1)
            elapsed = time.monotonic() - start
            cpu.report(judgments, elapsed)
        _check(run)
        return elapsed
    finally:
        _delete(campaign, judge)


class _CpuMeter:
    """CPU seconds spent by the worker processes, the local server and the whole machine from now on."""

    def __init__(self, url: str) -> None:
        import psutil

        port = url.split(":")[-1].split("/")[0]
        me = psutil.Process()
        self.workers = [p for p in me.children() if "celery" in " ".join(p.cmdline())]
        self.server = [p for p in me.children() if port in p.cmdline()]
        self.machine = psutil.cpu_times()
        self.start = [self._cpu(self.workers), self._cpu(self.server)]
        self.database = {p.pid: sum(p.cpu_times()[:2]) for p in self._backends()}

    @staticmethod
    def _backends() -> list[Any]:
        """Return the PostgreSQL server processes serving the bench's database (when it runs on this machine)."""
        import psutil
        from django.db import connection

        name = f" {connection.settings_dict['NAME']} "
        found = []
        for process in psutil.process_iter(["cmdline"]):
            if name in " ".join(process.info["cmdline"] or []) + " ":
                found.append(process)
        return found

    def _database_cpu(self) -> float:
        total = 0.0
        for process in self._backends():  # connections opened since the start count in full
            try:
                total += sum(process.cpu_times()[:2]) - self.database.get(process.pid, 0.0)
            except Exception:  # the connection closed meanwhile
                continue
        return total

    @staticmethod
    def _cpu(processes: list[Any]) -> float:
        return sum(sum(p.cpu_times()[:2]) for p in processes)

    def report(self, judgments: int, elapsed: float) -> None:
        import psutil

        workers = self._cpu(self.workers) - self.start[0]
        server = self._cpu(self.server) - self.start[1]
        database = self._database_cpu()
        now = psutil.cpu_times()
        busy = sum(now) - now.idle - now.iowait - (sum(self.machine) - self.machine.idle - self.machine.iowait)
        per = 1000 / judgments
        print(
            f"  cpu per judgment: workers {workers * per:.2f} ms, server {server * per:.2f} ms, PostgreSQL"
            f" {database * per:.2f} ms, whole machine {busy * per:.2f} ms ({busy / elapsed / psutil.cpu_count():.0%}"
            f" busy, load average {os.getloadavg()[0]:.1f})"
        )


def _run_in_threads(campaign: Campaign, judge: JudgeConfig, concurrency: int) -> float:
    from django.db import connection

    from judging import services

    start = time.monotonic()
    with _no_broker():
        run = services.start_run(campaign=campaign, judge=judge)
    ids = list(run.verdicts.values_list("pk", flat=True))

    def one(verdict_id: int) -> None:
        while (step := services.judge_verdict(verdict_id=verdict_id, worker="bench")).retry_in is not None:
            time.sleep(step.retry_in)
        connection.close_if_unusable_or_obsolete()

    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, ids))
    elapsed = time.monotonic() - start
    _check(run)
    return elapsed


@contextmanager
def _no_broker() -> Iterator[None]:
    from judging import services

    def send_nothing(verdict_ids: object, *, countdown: float | None = None) -> None:
        return None

    original = services.enqueue_verdicts
    setattr(services, "enqueue_verdicts", send_nothing)  # noqa: B010 - swap a module function for the run
    try:
        yield
    finally:
        setattr(services, "enqueue_verdicts", original)  # noqa: B010


def _warm_up(url: str, concurrency: int) -> None:
    """Judge a small campaign first so every worker thread has imported openai and opened its connections."""
    from judging import services
    from judging.models import JudgeRun

    campaign, judge = _make_campaign_and_judge(url, 2 * concurrency, concurrency)
    run = services.start_run(campaign=campaign, judge=judge)
    while JudgeRun.objects.get(pk=run.pk).status == JudgeRun.Status.RUNNING:
        time.sleep(0.2)
    _delete(campaign, judge)


def _make_campaign_and_judge(url: str, judgments: int, concurrency: int) -> tuple[Campaign, JudgeConfig]:
    """Create a campaign of judgments/2 comparisons (judged in both orders) with unique texts, and a judge."""
    from django.contrib.auth.models import User

    from annotation.models import Campaign, Comparison, Output, Prompt
    from judging import services

    tag = uuid.uuid4().hex[:8]  # unique texts: the call cache must not answer for a previous run
    owner, _ = User.objects.get_or_create(username="bench", defaults={"is_staff": True})
    campaign = Campaign.objects.create(name=f"bench {tag}", slug=f"bench-{tag}", owner=owner)
    models = 5  # 10 pairs per prompt
    prompts = Prompt.objects.bulk_create(
        Prompt(campaign=campaign, external_id=f"p{i}", text=f"Question {i} ({tag}): explain topic {i}.")
        for i in range((judgments // 2 + 9) // 10)
    )
    outputs = Output.objects.bulk_create(
        Output(prompt=p, model_name=f"m{m}", text=f"Model {m} on {p.external_id}: " + "word " * (5 + 7 * m))
        for p in prompts
        for m in range(models)
    )
    by_prompt = [outputs[i * models : (i + 1) * models] for i in range(len(prompts))]
    pairs = [(p, a, b) for p, outs in zip(prompts, by_prompt, strict=True) for a, b in itertools.combinations(outs, 2)]
    Comparison.objects.bulk_create(
        Comparison(campaign=campaign, prompt=p, output_a=a, output_b=b) for p, a, b in pairs[: judgments // 2]
    )
    judge, _ = services.save_judge(
        name=f"bench-{tag}", base_url=url, model="local-judge", template="arena_hard", max_concurrency=concurrency,
        requests_per_minute=1_000_000, timeout_seconds=30, max_attempts=10,
    )  # fmt: skip
    return campaign, judge


def _check(run: JudgeRun) -> None:
    from judging import selectors

    progress = selectors.run_progress(run)
    print(
        f"  run: {progress.done} judged, {progress.parse_failed} unparseable, {progress.failed} failed, "
        f"mean latency {progress.mean_latency_ms or 0:.0f} ms"
    )


def _delete(campaign: Campaign, judge: JudgeConfig) -> None:
    from judging.models import JudgeRun

    JudgeRun.objects.filter(judge=judge).delete()
    campaign.delete()
    judge.delete()
    judge.rater.delete()


@contextmanager
def celery_workers(count: int, threads: int) -> Iterator[None]:
    """Run `count` thread-pool workers of `threads` threads each."""
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "evalplatform", "worker", "-P", "threads", "-c", str(threads),
             "-n", f"bench{i}-{uuid.uuid4().hex[:6]}@%h", "--loglevel=WARNING", "--without-gossip",
             "--without-mingle", "--without-heartbeat"],
            cwd=ROOT,
        )
        for i in range(count)
    ]  # fmt: skip
    try:
        yield
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.kill()


if __name__ == "__main__":
    main()
