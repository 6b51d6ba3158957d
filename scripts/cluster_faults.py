"""Run load and faults over the cluster of scripts/cluster, then check in SQL that nothing broke.

Run by ``scripts/cluster faults`` (root, the cluster up). From this machine's own namespace, through the bridge:

1. seeds an annotator campaign (64 annotators with API tokens, 3 ratings per comparison) and a judge campaign;
2. measures without faults: the annotator load through the load balancer (64 clients, ratings/s and the CPU per
   rating of every host), then a judge run on the two worker hosts (verdicts/s, CPU per judgment);
3. runs the load and a judge run again with the faults, each during load: web1 SIGKILLed and brought back, worker1
   SIGKILLed mid-run (brought back at the end), Redis restarted, the PostgreSQL primary restarted;
4. checks in SQL: no rating a client was told was saved (201 or 200) is missing, no comparison has more ratings
   than required, no verdict twice, every judge run completed, and clients saw only retryable errors (a dropped
   connection, 502, 503, 504: each retried with the same idempotency key). Prints each check PASS or FAIL and
   exits 1 when one fails.

Clients retry what they may (the rating page's outbox does the same): a rating is resent with its idempotency key,
so a rating that was saved but whose answer was lost comes back as 200 and is counted once.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # the release's packages (bench/ has no __init__: a namespace package)
CLUSTER = Path(os.environ.get("EVALPLATFORM_CLUSTER_SCRIPT", REPO / "scripts" / "cluster"))
CLUSTER_DIR = Path(os.environ.get("EVALPLATFORM_CLUSTER_DIR", REPO / ".cluster"))
NET = "10.77.0"
LB = (f"{NET}.10", 80)
WEBS = [(f"{NET}.11", 8000), (f"{NET}.12", 8000)]  # gunicorn directly, for the comparison without HAProxy
HOSTS = ("lb", "web1", "web2", "worker1", "worker2", "db", "replica")
RETRYABLE = {502, 503, 504}
CHOICES = ["left", "right", "tie", "both_bad"]
GIVE_UP_SECONDS = 90.0  # a client retries one request this long before it counts it as lost
REQUEST_TIMEOUT = 30.0
TICKS = os.sysconf("SC_CLK_TCK")


def cluster_env() -> dict[str, str]:
    """Return the production environment of the cluster's hosts (written by ``scripts/cluster up``)."""
    pairs = [line.split("=", 1) for line in (CLUSTER_DIR / "env").read_text().splitlines() if "=" in line]
    return {k: v for k, v in pairs if not k.startswith("#")}


def setup_django() -> None:
    os.environ.update(cluster_env())
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalplatform.settings")
    sys.path.insert(0, str(REPO))
    import django

    django.setup()


def cluster(*args: str) -> None:
    subprocess.run([str(CLUSTER), *args], check=True)


# --- CPU of the hosts --------------------------------------------------------------------------------------------


def host_cpu_seconds(host: str) -> float:
    """Return the CPU seconds of a host's processes, with their reaped children (PostgreSQL backends)."""
    pids = subprocess.run(["ip", "netns", "pids", f"ep-{host}"], capture_output=True, text=True).stdout.split()
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(v) for v in fields[11:15])  # utime stime cutime cstime
    return total / TICKS


def cpu_snapshot() -> dict[str, float]:
    return {host: host_cpu_seconds(host) for host in HOSTS}


def cpu_used(before: dict[str, float]) -> dict[str, float]:
    after = cpu_snapshot()
    # A host whose processes were killed has fewer seconds after: count what it used since it came back.
    return {
        host: max(after[host] - before[host], 0.0) if after[host] >= before[host] else after[host] for host in HOSTS
    }


# --- annotator clients ---------------------------------------------------------------------------------------


@dataclass
class Log:
    acked: list[int] = field(default_factory=list)  # assignments whose rating the server said it saved
    ratings: int = 0
    retried: Counter[str] = field(default_factory=Counter)  # retryable errors seen (and retried)
    other: Counter[str] = field(default_factory=Counter)  # errors no client should see
    lost: int = 0  # requests given up after GIVE_UP_SECONDS of retryable errors
    latencies: list[float] = field(default_factory=list)


class Connection:
    """One client's keep-alive HTTP/1.1 connection to the load balancer (as bench/bench_assignment.py's)."""

    def __init__(self, token: str, address: tuple[str, int] = LB) -> None:
        self.address = address
        self.head = f"Host: {address[0]}\r\nAuthorization: Token {token}\r\nContent-Type: application/json\r\n"
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    def drop(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def post(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(*self.address)
        assert self.reader is not None
        data = json.dumps(body).encode()
        self.writer.write(f"POST {path} HTTP/1.1\r\n{self.head}Content-Length: {len(data)}\r\n\r\n".encode() + data)
        head = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1").lower()
        status = int(head.split(" ", 2)[1])
        length = 0
        for line in head.split("\r\n"):
            if line.startswith("content-length:"):
                length = int(line.split(":", 1)[1])
        payload = await self.reader.readexactly(length) if length else b""
        if "connection: close" in head:
            self.drop()
        try:
            return status, (json.loads(payload) if payload else None)
        except ValueError:
            return status, None


async def send(conn: Connection, path: str, body: dict[str, Any], log: Log) -> tuple[int, Any] | None:
    """POST until an answer that is not a retryable error; None when retrying gave up."""
    deadline = time.monotonic() + GIVE_UP_SECONDS
    pause = 0.05
    while True:
        started = time.perf_counter()
        try:
            status, payload = await asyncio.wait_for(conn.post(path, body), REQUEST_TIMEOUT)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError) as error:
            conn.drop()
            log.retried[f"connection ({type(error).__name__})"] += 1
        else:
            log.latencies.append(time.perf_counter() - started)
            if status not in RETRYABLE:
                return status, payload
            log.retried[str(status)] += 1
        if time.monotonic() > deadline:
            log.lost += 1
            return None
        await asyncio.sleep(pause * (0.5 + random.random()))
        pause = min(pause * 2, 2.0)


async def annotator(token: str, campaign_id: int, stop_at: float, log: Log, address: tuple[str, int]) -> None:
    conn = Connection(token, address)
    n = 0
    while time.monotonic() < stop_at:
        answer = await send(conn, f"/api/v1/campaigns/{campaign_id}/next/", {}, log)
        if answer is None:
            continue
        status, data = answer
        if status == 204:
            await asyncio.sleep(0.5)
            continue
        if status != 200:
            log.other[f"next {status}"] += 1
            await asyncio.sleep(0.2)
            continue
        assignment = int(data["assignment"])
        body = {"choice": CHOICES[n % 4], "time_ms": 1000, "idempotency_key": f"cluster-{assignment}"}
        answer = await send(conn, f"/api/v1/assignments/{assignment}/rating/", body, log)
        n += 1
        if answer is None:
            continue
        if answer[0] in (200, 201):
            log.acked.append(assignment)
            log.ratings += 1
        else:
            log.other[f"rating {answer[0]}"] += 1
    conn.drop()


def run_load(tokens: list[str], campaign_id: int, seconds: float, log: Log, *, direct: bool = False) -> None:
    """Run one client per token for ``seconds``: through the load balancer, or (``direct``) half on each web host."""

    async def drive() -> None:
        stop_at = time.monotonic() + seconds
        await asyncio.gather(
            *(
                annotator(token, campaign_id, stop_at, log, WEBS[i % 2] if direct else LB)
                for i, token in enumerate(tokens)
            )
        )

    asyncio.run(drive())


# --- seeding -------------------------------------------------------------------------------------------------


MODELS = 5  # 10 pairs per prompt, as bench/bench_assignment.py


def seed_campaign(slug: str, *, comparisons: int, required: int) -> int:
    """Create (once) an active campaign of ``comparisons`` (5 models per prompt, every pair); return its id."""
    import itertools

    from django.contrib.auth.models import User
    from django.db import transaction

    from annotation.models import Campaign, Comparison, Output, Prompt
    from annotation.stored_html import fill_missing_html

    existing = Campaign.objects.filter(slug=slug).values_list("pk", flat=True).first()
    if existing is not None:
        return int(existing)
    owner, _ = User.objects.get_or_create(username="cluster-owner", defaults={"is_staff": True})
    with transaction.atomic():
        campaign = Campaign.objects.create(
            name=slug, slug=slug, status="active", owner=owner, ratings_per_comparison=required, gold_rate=0.0
        )
        prompts = Prompt.objects.bulk_create(
            # The campaign's name in each text: no judge request repeats another campaign's (answered from cache).
            Prompt(campaign=campaign, external_id=f"p{i}", text=f"Prompt {i} of {slug}: explain **why**, briefly.")
            for i in range(comparisons // 10)
        )
        outputs = Output.objects.bulk_create(
            Output(prompt=p, model_name=f"model-{m}", text=f"Answer {m} to {p.external_id}:\n\n- point one\n- {m}")
            for p in prompts
            for m in range(MODELS)
        )
        by_prompt = itertools.groupby(outputs, key=lambda o: o.prompt_id)
        Comparison.objects.bulk_create(
            (
                Comparison(campaign=campaign, prompt_id=prompt_id, output_a=a, output_b=b)
                for prompt_id, group in by_prompt
                for a, b in itertools.combinations(sorted(group, key=lambda o: o.pk), 2)
            ),
            batch_size=5000,
        )
    fill_missing_html()
    return int(campaign.pk)


def seed_annotation(comparisons: int, clients: int) -> tuple[int, list[str]]:
    """Return the annotator campaign's id (3 ratings per comparison) and one API token per client."""
    from django.contrib.auth.models import User
    from rest_framework.authtoken.models import Token

    from annotation.models import Campaign

    campaign_id = seed_campaign(f"cluster-annotation-{comparisons}", comparisons=comparisons, required=3)
    users = []
    for i in range(clients):
        user, created = User.objects.get_or_create(username=f"cluster-annotator-{i}")
        if created:
            user.set_unusable_password()
            user.save()
        users.append(user)
    Campaign.objects.get(pk=campaign_id).annotators.add(*users)
    return campaign_id, [Token.objects.get_or_create(user=u)[0].key for u in users]


def seed_judging(comparisons: int, *, name: str) -> str:
    """Create a new campaign of ``comparisons`` for one judge run (a judge never judges a comparison twice)."""
    slug = f"cluster-judge-{name}-{int(time.time())}"
    seed_campaign(slug, comparisons=comparisons, required=1)
    return slug


def reset_annotation(campaign_id: int) -> None:
    """Forget the annotator campaign's ratings and assignments, so each phase starts from the same state."""
    from django.db import connection

    touched = "SELECT id FROM annotation_comparison WHERE campaign_id = %(c)s AND last_claimed_by IS NOT NULL"
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM annotation_rating WHERE comparison_id IN ({touched})", {"c": campaign_id})
        cursor.execute(f"DELETE FROM annotation_assignment WHERE comparison_id IN ({touched})", {"c": campaign_id})
        cursor.execute("DELETE FROM annotation_annotatorstatus WHERE campaign_id = %(c)s", {"c": campaign_id})
        cursor.execute(
            "UPDATE annotation_comparison SET filled = 0, last_claimed_by = NULL "
            "WHERE campaign_id = %(c)s AND last_claimed_by IS NOT NULL",
            {"c": campaign_id},
        )
        cursor.execute("VACUUM ANALYZE annotation_comparison, annotation_assignment, annotation_rating")


# --- judge runs ----------------------------------------------------------------------------------------------


class JudgeRun(threading.Thread):
    """Start a judge run with ``manage.py judge --wait`` and keep resuming it until it ends (the command itself
    may die when the primary restarts under it)."""

    def __init__(self, slug: str, limit: int) -> None:
        super().__init__(daemon=True)
        self.slug, self.limit = slug, limit
        self.run_id: int | None = None
        self.attempts = 0
        self.elapsed = 0.0
        self.outputs: list[str] = []

    def command(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, **cluster_env()}
        cmd = [sys.executable, "manage.py", "judge", self.slug, *args]
        return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=1800)

    def run(self) -> None:
        started = time.monotonic()
        done = self.command("--judge", "cluster-judge", "--limit", str(self.limit), "--wait", "--poll", "0.5")
        self.attempts = 1
        self.outputs.append(done.stdout[-400:] + done.stderr[-800:])
        started_run = re.search(r"run #(\d+)", done.stdout)  # its first line: "run #N: judge on campaign, ..."
        self.run_id = int(started_run[1]) if started_run else None
        while self.run_id is not None and self.status() not in {"completed", "failed", "cancelled"}:
            if time.monotonic() - started > 1500:
                break
            time.sleep(1)
            done = self.command("--resume", str(self.run_id), "--wait", "--poll", "0.5")
            self.attempts += 1
            self.outputs.append(done.stdout[-400:] + done.stderr[-800:])
        self.elapsed = time.monotonic() - started

    def status(self) -> str:
        from django.db import DatabaseError, connection

        from judging.models import JudgeRun as Run

        if self.run_id is None:
            return "never started"
        for _ in range(60):
            try:
                return str(Run.objects.get(pk=self.run_id).status)
            except DatabaseError:  # the primary restarting: ask again
                connection.close()
                time.sleep(1)
        return "unknown"


def verdicts_done(run_id: int) -> int:
    return int(query("SELECT count(*) FROM judging_judgeverdict WHERE run_id = %s AND state = 'done'", [run_id]))


# --- the checks ----------------------------------------------------------------------------------------------


def query(sql: str, params: list[Any] | None = None) -> Any:
    from django.db import DatabaseError, connection

    for attempt in range(30):
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql, params or [])
                return cursor.fetchone()[0]
        except DatabaseError:
            connection.close()
            if attempt == 29:
                raise
            time.sleep(1)
    return None


def checks(campaign_id: int, logs: list[Log], runs: list[JudgeRun]) -> list[tuple[str, bool, str]]:
    acked = sorted({a for log in logs for a in log.acked})
    lost = query(
        """SELECT count(*) FROM unnest(%s::bigint[]) AS acked(id)
           WHERE NOT EXISTS (SELECT 1 FROM annotation_assignment s
                             JOIN annotation_rating r ON r.comparison_id = s.comparison_id AND r.rater_id = s.rater_id
                             WHERE s.id = acked.id)""",
        [acked],
    )
    over = query(
        """SELECT count(*) FROM (SELECT c.id FROM annotation_comparison c
                                 JOIN annotation_campaign k ON k.id = c.campaign_id
                                 JOIN annotation_rating r ON r.comparison_id = c.id
                                 WHERE c.campaign_id = %s
                                 GROUP BY c.id, k.ratings_per_comparison
                                 HAVING count(*) > k.ratings_per_comparison) t""",
        [campaign_id],
    )
    filled = query(
        """SELECT count(*) FROM annotation_comparison c JOIN annotation_campaign k ON k.id = c.campaign_id
           WHERE c.campaign_id = %s AND c.filled > k.ratings_per_comparison""",
        [campaign_id],
    )
    duplicate_verdicts = query(
        """SELECT count(*) FROM (SELECT 1 FROM judging_judgeverdict
                                 GROUP BY judge_id, comparison_id, "order", repeat HAVING count(*) > 1) t"""
    )
    duplicate_judge_ratings = query(
        """SELECT count(*) FROM (SELECT 1 FROM annotation_rating WHERE rater_kind = 'judge'
                                 GROUP BY rater_id, comparison_id, left_output_id HAVING count(*) > 1) t"""
    )
    results = [
        ("0 ratings lost that a client was told were saved", lost == 0, f"{len(acked):,} acknowledged, {lost} missing"),
        (
            "0 over-assignments",
            over == 0 and filled == 0,
            f"{over} comparisons with more ratings than required, {filled} with filled > required",
        ),
        (
            "0 duplicate verdicts",
            duplicate_verdicts == 0 and duplicate_judge_ratings == 0,
            f"{duplicate_verdicts} duplicate (judge, comparison, order) verdicts, "
            f"{duplicate_judge_ratings} duplicate judge ratings",
        ),
    ]
    for run in runs:
        status = run.status() if run.run_id else "never started"
        pending = query(
            "SELECT count(*) FROM judging_judgeverdict WHERE run_id = %s AND state IN ('pending', 'claimed')",
            [run.run_id],
        )
        results.append(
            (
                f"judge run {run.run_id} completes",
                status == "completed" and pending == 0,
                f"status {status}, {verdicts_done(run.run_id) if run.run_id else 0} verdicts done, {pending} pending, "
                f"{run.elapsed:.0f} s, judge command started {run.attempts} time(s)",
            )
        )
    other = sum((log.other for log in logs), Counter())
    retried = sum((log.retried for log in logs), Counter())
    gave_up = sum(log.lost for log in logs)
    results.append(
        (
            "clients saw only retryable errors",
            not other and gave_up == 0,
            f"retried: {dict(retried) or 'none'}; other: {dict(other) or 'none'}; given up: {gave_up}",
        )
    )
    return results


# --- the run -------------------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)] * 1000


def describe_cpu(used: dict[str, float]) -> str:
    return ", ".join(f"{host} {seconds:.1f}" for host, seconds in used.items() if seconds >= 0.05)


def baseline(tokens: list[str], campaign_id: int, args: argparse.Namespace) -> None:
    for direct in (False, True):
        where = "directly to web1 and web2 (half each)" if direct else "through the load balancer"
        print(f"--- without faults: {len(tokens)} clients {where} for {args.baseline_seconds:.0f} s")
        reset_annotation(campaign_id)
        log = Log()
        before = cpu_snapshot()
        started = time.monotonic()
        run_load(tokens, campaign_id, args.baseline_seconds, log, direct=direct)
        elapsed = time.monotonic() - started
        used = cpu_used(before)
        serving = sum(used[h] for h in ("lb", "web1", "web2", "db"))
        print(
            f"ratings: {log.ratings:,} in {elapsed:.1f} s = {log.ratings / elapsed:.0f}/s; request p50 "
            f"{percentile(log.latencies, 0.5):.1f} ms, p95 {percentile(log.latencies, 0.95):.1f} ms; errors: "
            f"{dict(log.retried + log.other) or 'none'}"
        )
        if log.ratings:
            print(
                f"CPU per rating: {serving / log.ratings * 1000:.2f} ms (lb + web1 + web2 + db; "
                f"replica {used['replica'] / log.ratings * 1000:.2f} ms more); CPU s by host: {describe_cpu(used)}"
            )
    for workers in ("worker1 + worker2", "worker1 alone"):
        print(f"--- without faults: a judge run of {args.baseline_judge} comparisons (both orders) on {workers}")
        run = JudgeRun(seed_judging(args.baseline_judge, name="baseline"), args.baseline_judge)
        if workers == "worker1 alone":
            cluster("kill-host", "worker2", "TERM")
        llm_before = llm_cpu()
        before = cpu_snapshot()
        run.start()
        run.join()
        used = cpu_used(before)
        llm = llm_cpu() - llm_before
        done = verdicts_done(run.run_id) if run.run_id else 0
        judging = used["worker1"] + used["worker2"] + used["db"] - llm
        rate = done / max(run.elapsed, 1e-9)
        print(f"verdicts: {done:,} in {run.elapsed:.1f} s = {rate:.1f}/s (status {run.status()})")
        if done:
            print(
                f"CPU per judgment: {judging / done * 1000:.2f} ms (worker1 + worker2 + db, without the LLM "
                f"server's {llm / done * 1000:.2f} ms); CPU s by host: {describe_cpu(used)}"
            )
    cluster("start-host", "worker2")


def llm_cpu() -> float:
    """Return the CPU seconds of the local LLM server (on the db host), to leave out of the cost of a judgment."""
    pids = subprocess.run(["ip", "netns", "pids", "ep-db"], capture_output=True, text=True).stdout.split()
    total = 0
    for pid in pids:
        try:
            if b"serve_local_llm" not in Path(f"/proc/{pid}/cmdline").read_bytes():
                continue
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(v) for v in fields[11:15])
    return total / TICKS


def faults(
    tokens: list[str], campaign_id: int, judge_slug: str, args: argparse.Namespace
) -> tuple[list[tuple[str, bool, str]], JudgeRun]:
    seconds = args.seconds
    print(f"--- with faults: {len(tokens)} clients and a judge run of {args.judge} comparisons for {seconds:.0f} s")
    log = Log()
    load = threading.Thread(target=run_load, args=(tokens, campaign_id, seconds, log), daemon=True)
    run = JudgeRun(judge_slug, args.judge)
    started = time.monotonic()
    load.start()
    run.start()
    schedule = [
        (0.10, "SIGKILL web1", ("kill-host", "web1")),
        (0.22, "web1 back", ("start-host", "web1")),
        (0.30, "SIGKILL worker1 mid-run", ("kill-host", "worker1")),
        (0.45, "restart Redis", ("restart-redis",)),
        (0.65, "restart the PostgreSQL primary", ("restart-primary",)),
    ]
    for share, what, action in schedule:
        time.sleep(max(0.0, started + share * seconds - time.monotonic()))
        t0 = time.monotonic()
        cluster(*action)
        print(f"t={time.monotonic() - started:5.1f} s  {what} ({time.monotonic() - t0:.1f} s)", flush=True)
    load.join()
    print(
        f"t={time.monotonic() - started:5.1f} s  load ended: {log.ratings:,} ratings acknowledged, "
        f"request p95 {percentile(log.latencies, 0.95):.0f} ms"
    )
    run.join()
    print(f"t={time.monotonic() - started:5.1f} s  judge run {run.run_id} ended after {run.attempts} command(s)")
    cluster("start-host", "worker1")
    return checks(campaign_id, [log], [run]), run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--comparisons", type=int, default=10_000, help="of the annotator campaign")
    parser.add_argument("--seconds", type=float, default=100.0, help="of load with the faults")
    parser.add_argument("--judge", type=int, default=1500, help="comparisons of the judge run under faults")
    parser.add_argument("--baseline-seconds", type=float, default=20.0, help="of load without faults (0: none)")
    parser.add_argument("--baseline-judge", type=int, default=500, help="comparisons of the judge run without faults")
    args = parser.parse_args()
    for name in ("clients", "comparisons", "judge", "baseline_judge"):
        if not 1 <= getattr(args, name) <= 1_000_000:
            parser.error(f"--{name.replace('_', '-')} must be between 1 and 1,000,000")
    if not 10 <= args.seconds <= 3600 or not 0 <= args.baseline_seconds <= 3600:
        parser.error("--seconds must be 10-3600 and --baseline-seconds 0-3600")
    setup_django()
    started = time.monotonic()
    campaign_id, tokens = seed_annotation(args.comparisons, args.clients)
    judge_slug = seed_judging(args.judge, name="faults")
    print(
        f"seeded in {time.monotonic() - started:.0f} s: annotator campaign {campaign_id}, judge campaign {judge_slug}"
    )
    if args.baseline_seconds:
        reset_annotation(campaign_id)
        baseline(tokens, campaign_id, args)
    reset_annotation(campaign_id)
    results, run = faults(tokens, campaign_id, judge_slug, args)
    print("--- checks (SQL on the primary)")
    for name, ok, detail in results:
        print(f"{'PASS' if ok else 'FAIL'}  {name}: {detail}")
    if not all(ok for _, ok, _ in results):
        print("--- the judge command's last output:\n" + "\n".join(run.outputs[-2:]))
    sys.exit(0 if all(ok for _, ok, _ in results) else 1)


if __name__ == "__main__":
    main()
