"""Benchmark the assignment engine over HTTP: 32 annotators doing next + rating round trips against gunicorn.

Runs the server as the production command of docs/deployment.md does (gunicorn, 2 gthread workers, --reuse-port,
DJANGO_DEBUG=0) against a separate database (<DATABASE_URL's name>_bench) holding one campaign of 1,000,000
comparisons (100,000 with --quick), seeded with INSERT ... SELECT generate_series, beside a finished campaign the
same annotators rated before (150,000 ratings: a platform in use, see _seed_history). Measures the product's claim
(random point in the key space, fullest comparisons first, FOR NO KEY UPDATE SKIP LOCKED) and, as the named
baseline, the naive claim (ORDER BY random() with a row lock, `claim_naive` below, swapped in through
EVALPLATFORM_CLAIM_FUNCTION), then prints p50/p95/p99 request latency, round-trip latency, ratings per second, CPU
per rating (gunicorn, PostgreSQL, the load generator), the load average, how many connections each gunicorn worker
held, and the ratios.

Two loads, each from 32 clients with one keep-alive connection each:

- Closed loop (saturation), for the engine and the baseline: each client sends its next request as soon as the
  last one is answered, with no think time, so this finds the most ratings per second the server gives. Its
  latencies are not a service level: with N clients always waiting, Little's law fixes the mean latency at
  N / request rate (32 clients at 300 ratings/s, i.e. 600 requests/s, wait about 53 ms on average whatever the
  server does; at 540 ratings/s, 30 ms), so they say how fast the server is, not how long an annotator waits.
- Open loop (--rate, 300 ratings/s by default; the engine only): ratings are due on a fixed schedule (Poisson
  arrivals, as from many independent annotators, exactly rate x seconds of them, or evenly spaced with --arrivals
  even) and each one starts on the first free client. Its latency is counted from when it was due, so time spent
  waiting for a free client counts and a server that falls behind cannot hide it by slowing the clients down
  (coordinated omission). It reports the achieved rate, the latencies and whether the server kept up (every due
  rating started, none more than a second late). This is how the target reads: the server sustains an offered 300
  ratings/s with p95 under 50 ms (real annotators think between ratings; the clients here stand for many of them).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/ep_annotate python bench/bench_assignment.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse, urlunparse

if TYPE_CHECKING:
    from annotation.engine import ClaimRequest, Shown

REPO = Path(__file__).resolve().parent.parent
MODELS = 5  # 10 pairs per prompt
REQUIRED = 3
# A finished campaign the bench annotators rated before (see _seed_history): 150,000 assignments and ratings.
HISTORY_COMPARISONS = 50_000
NAIVE = "bench.bench_assignment:claim_naive"
# Open loop: ratings still waiting for a free client this long after the last one was due are not started.
OPEN_LOOP_GRACE_SECONDS = 5.0

NAIVE_PICK_SQL = """
WITH pick AS (
    SELECT c.id, c.output_a_id, c.output_b_id
    FROM annotation_comparison c
    WHERE c.campaign_id = %(campaign)s AND c.gold_verdict IS NULL AND c.filled < %(required)s
      AND NOT EXISTS (SELECT 1 FROM annotation_assignment a WHERE a.comparison_id = c.id AND a.rater_id = %(rater)s)
    ORDER BY random()
    LIMIT 1
    FOR UPDATE
),"""


def claim_naive(request: ClaimRequest) -> Shown | None:
    """Baseline claim: shuffle every open comparison with ORDER BY random() and wait on the row lock.

    Only the choice of the comparison differs from the engine's claim: it leases it and reads what is shown
    with the same statement tail, on the same prepared-statement path.
    """
    from annotation.engine import LEASE_SQL, shown_from_row
    from evalplatform.db import prepared_cursor

    if request.gold:
        return None
    params: dict[str, Any] = {
        "campaign": request.campaign_id,
        "rater": request.rater_id,
        "required": request.required,
        "left_is_a": request.left_is_a,
        "expires": request.expires,
        "now": request.now,
    }
    with prepared_cursor() as cursor:
        cursor.execute(NAIVE_PICK_SQL + LEASE_SQL, params)
        return shown_from_row(cursor.fetchone())


# ---- database --------------------------------------------------------------------------------------------------


def bench_database_url() -> str:
    url = urlparse(os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/evalplatform"))
    return urlunparse(url._replace(path=url.path.rstrip("/") + "_bench"))


def ensure_database(url: str) -> None:
    import psycopg

    parsed = urlparse(url)
    admin = urlunparse(parsed._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        name = parsed.path.lstrip("/")
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is None:
            conn.execute(f'CREATE DATABASE "{name}"')
    env = {**os.environ, "DATABASE_URL": url}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=REPO, env=env, check=True)


def setup_django(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalplatform.settings")
    sys.path.insert(0, str(REPO))
    import django

    django.setup()


def seed(comparisons: int, clients: int) -> tuple[int, list[str]]:
    """Return the bench campaign's id and one API token per client, seeding the campaign when missing."""
    from django.contrib.auth.models import User
    from django.db import connection, transaction
    from rest_framework.authtoken.models import Token

    from annotation.models import Campaign
    from annotation.stored_html import fill_missing_html

    # v2: every output has its own text, so what the server remembers of rendered texts gets no free hits.
    slug = f"bench-{comparisons}-v2"
    owner, _ = User.objects.get_or_create(username="bench-owner", defaults={"is_staff": True})
    users = []
    for i in range(clients):
        user, created = User.objects.get_or_create(username=f"bench-annotator-{i}")
        if created:
            user.set_unusable_password()
            user.save()
        users.append(user)
    tokens = [Token.objects.get_or_create(user=u)[0].key for u in users]
    campaign = Campaign.objects.filter(slug=slug).first()
    if campaign is None:
        prompts = comparisons // (MODELS * (MODELS - 1) // 2)
        started = time.perf_counter()
        with transaction.atomic():
            campaign = Campaign.objects.create(
                name=f"Bench {comparisons:,}",
                slug=slug,
                status="active",
                owner=owner,
                ratings_per_comparison=REQUIRED,
                gold_rate=0.0,
            )
            with connection.cursor() as cursor:
                _seed_rows(cursor, campaign.pk, prompts)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE annotation_comparison; ANALYZE annotation_output; ANALYZE annotation_prompt")
        print(f"seeded {comparisons:,} comparisons in {time.perf_counter() - started:.1f} s")
    _seed_history(owner, users)
    # Rows inserted by SQL (or seeded before HTML was stored) get their HTML rendered the way an import does.
    started = time.perf_counter()
    rendered = fill_missing_html()
    if rendered:
        print(f"rendered {rendered:,} prompts and outputs in {time.perf_counter() - started:.1f} s")
    campaign.annotators.add(*users)
    return campaign.pk, tokens


def _seed_rows(cursor: Any, campaign_id: int, prompts: int) -> None:
    cursor.execute(
        """
        INSERT INTO annotation_prompt
            (campaign_id, external_id, text, reference_answer, metadata, created_at, tags, duplicate_kind)
        SELECT %(c)s, 'p' || g, 'Prompt ' || g || ': explain **why** in a few sentences.', '', '{}', now(), '{}', ''
        FROM generate_series(1, %(n)s) g
        """,
        {"c": campaign_id, "n": prompts},
    )
    cursor.execute(
        """
        INSERT INTO annotation_output (prompt_id, model_name, text, metadata)
        SELECT p.id, 'model-' || m,
               'Answer ' || m || ' to ' || p.external_id || ', with a list:' || E'\\n\\n' || '- point one' || E'\\n'
               || '- point ' || m,
               '{}'
        FROM annotation_prompt p CROSS JOIN generate_series(1, %(m)s) m
        WHERE p.campaign_id = %(c)s
        """,
        {"c": campaign_id, "m": MODELS},
    )
    cursor.execute(
        """
        INSERT INTO annotation_comparison
            (campaign_id, prompt_id, output_a_id, output_b_id, random_key, filled, created_at)
        SELECT %(c)s, a.prompt_id, a.id, b.id, random(), 0, now()
        FROM annotation_prompt p
        JOIN annotation_output a ON a.prompt_id = p.id
        JOIN annotation_output b ON b.prompt_id = p.id AND a.id < b.id
        WHERE p.campaign_id = %(c)s
        """,
        {"c": campaign_id},
    )


def _seed_history(owner: Any, users: list[Any]) -> None:
    """Give the platform a past: a finished campaign whose comparisons the bench annotators rated, 3 each.

    A database where nobody has rated anything yet is not one the engine runs on for long, and it misleads the
    planner: the reset below leaves the assignment and rating tables empty and vacuumed, PostgreSQL then plans the
    server's prepared statements for empty tables (a sequential scan to look up an assignment), and a connection
    keeps those plans for its lifetime (CONN_MAX_AGE, 60 s: the whole run) while the tables grow to tens of
    thousands of rows. Every claim then read the whole assignment table, several times. With autovacuum on (the
    default) ANALYZE would soon correct the estimates and replan; this machine's server runs with it off. So the
    bench starts from a platform in use: HISTORY_COMPARISONS comparisons rated by the same 32 annotators in another
    campaign, which the reset keeps.
    """
    from django.db import connection, transaction

    from annotation.models import Campaign
    from annotation.services import rater_for_user

    slug = f"bench-history-{HISTORY_COMPARISONS}"
    if Campaign.objects.filter(slug=slug).exists():
        return
    started = time.perf_counter()
    raters = [rater_for_user(user).pk for user in users]
    with transaction.atomic():
        campaign = Campaign.objects.create(
            name="Bench history", slug=slug, status="closed", owner=owner, ratings_per_comparison=REQUIRED
        )
        with connection.cursor() as cursor:
            _seed_rows(cursor, campaign.pk, HISTORY_COMPARISONS // (MODELS * (MODELS - 1) // 2))
            # Comparison n (in id order) was rated by raters n, n + 1 and n + 2 (modulo their number).
            cursor.execute(
                """
                WITH c AS (
                    SELECT id, output_a_id, row_number() OVER (ORDER BY id) AS n
                    FROM annotation_comparison WHERE campaign_id = %(c)s
                ), slots AS (
                    SELECT c.id, c.output_a_id,
                        (%(raters)s::bigint[])[1 + (c.n + k) %% cardinality(%(raters)s::bigint[])] AS rater
                    FROM c CROSS JOIN generate_series(0, %(required)s - 1) k
                ), assigned AS (
                    INSERT INTO annotation_assignment
                        (comparison_id, rater_id, left_output_id, state, lease_expires_at, created_at, updated_at)
                    SELECT id, rater, output_a_id, 'rated', now() - interval '1 day', now() - interval '1 day',
                        now() - interval '1 day'
                    FROM slots
                    RETURNING id, comparison_id, rater_id, left_output_id
                )
                INSERT INTO annotation_rating (comparison_id, rater_id, rater_kind, source, assignment_id, verdict,
                    winner_id, left_output_id, strength, rationale, time_ms, metadata, created_at)
                SELECT comparison_id, rater_id, 'human', 'annotator', id, 'tie', NULL, left_output_id, NULL, '',
                    1000, '{}', now() - interval '1 day'
                FROM assigned
                """,
                {"c": campaign.pk, "raters": raters, "required": REQUIRED},
            )
            cursor.execute(
                """
                UPDATE annotation_comparison c SET filled = %(required)s, last_claimed_by = a.rater_id
                FROM (SELECT comparison_id, max(rater_id) AS rater_id FROM annotation_assignment
                      GROUP BY comparison_id) a
                WHERE c.campaign_id = %(c)s AND a.comparison_id = c.id
                """,
                {"c": campaign.pk, "required": REQUIRED},
            )
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE annotation_comparison, annotation_assignment, annotation_rating")
    print(f"seeded a history of {HISTORY_COMPARISONS:,} rated comparisons in {time.perf_counter() - started:.1f} s")


def reset(campaign_id: int) -> None:
    """Forget every rating and assignment of the bench campaign, so each strategy starts from the same state."""
    from django.db import connection

    with connection.cursor() as cursor:
        touched = "SELECT id FROM annotation_comparison WHERE campaign_id = %(c)s AND last_claimed_by IS NOT NULL"
        cursor.execute(f"DELETE FROM annotation_rating WHERE comparison_id IN ({touched})", {"c": campaign_id})
        cursor.execute(f"DELETE FROM annotation_assignment WHERE comparison_id IN ({touched})", {"c": campaign_id})
        cursor.execute("DELETE FROM annotation_annotatorstatus WHERE campaign_id = %(c)s", {"c": campaign_id})
        cursor.execute(
            "UPDATE annotation_comparison SET filled = 0, last_claimed_by = NULL "
            "WHERE campaign_id = %(c)s AND last_claimed_by IS NOT NULL",
            {"c": campaign_id},
        )
        # Every run deletes what the last one wrote: without vacuuming those tables too, their dead rows piled up
        # (680,000 in annotation_assignment after about 15 runs) and each run was slower than the one before.
        cursor.execute(
            "VACUUM ANALYZE annotation_comparison, annotation_assignment, annotation_rating, annotation_annotatorstatus"
        )


# ---- server ----------------------------------------------------------------------------------------------------


# The production command of docs/deployment.md ("The commands"), with the bench's port.
PRODUCTION_ARGS = "evalplatform.wsgi --workers 2 --worker-class gthread --threads 8 --reuse-port"


def start_server(url: str, port: int, claim_function: str, server_args: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "bench-only-" + "k" * 50,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DJANGO_SECURE_SSL_REDIRECT": "0",
        "EVALPLATFORM_CLAIM_FUNCTION": claim_function,
        "LOG_LEVEL": "WARNING",
    }
    gunicorn = Path(sys.executable).with_name("gunicorn")
    command = [str(gunicorn), *server_args.split(), "--bind", f"127.0.0.1:{port}"]
    server = subprocess.Popen(command, cwd=REPO, env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", "/api/v1/annotator/campaigns/")  # a cheap 403 once a worker answers
            conn.getresponse().read()
            return server
        except OSError:
            time.sleep(0.2)
    server.terminate()
    raise RuntimeError("gunicorn did not start")


def process_tree_cpu_seconds(root: int) -> float:
    """Return the user+system CPU seconds used so far by a process and its children (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(stat.parent.name), int(fields[1])
        if pid == root or ppid == root:
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def postgres_backend_cpu(database: str) -> dict[int, float]:
    """Return the CPU seconds used so far by each PostgreSQL backend serving `database` (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    used = {}
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if (
                not cmdline.read_bytes().startswith(b"postgres: ")
                or f" {database} ".encode() not in cmdline.read_bytes()
            ):
                continue
            fields = (cmdline.parent / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        used[int(cmdline.parent.name)] = (int(fields[11]) + int(fields[12])) / ticks
    return used


class PostgresCpu:
    """Count the CPU seconds of a database's backends from now on, including backends that exit meanwhile.

    The server closes its connections after CONN_MAX_AGE and opens new ones, so two snapshots would lose what the
    backends that exited in between used: a thread reads them every half second (losing at most that much).
    """

    def __init__(self, database: str) -> None:
        self.database = database
        self.start = postgres_backend_cpu(database)
        self.last = dict(self.start)
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)
        self.thread.start()

    def _poll(self) -> None:
        while not self.stopped.wait(0.5):
            self.last |= postgres_backend_cpu(self.database)

    def seconds(self) -> float:
        """Stop counting and return the seconds used since this object was made."""
        self.stopped.set()
        self.thread.join()
        self.last |= postgres_backend_cpu(self.database)
        return sum(used - self.start.get(pid, 0.0) for pid, used in self.last.items())


def connections_per_worker(server_pid: int, port: int) -> list[int]:
    """Return how many established connections to `port` each gunicorn worker holds, largest first (Linux /proc)."""
    established = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01":
                established.add(f"socket:[{fields[9]}]")
    counts = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) != server_pid:
                continue
            links = [os.readlink(fd) for fd in (stat.parent / "fd").iterdir()]
        except OSError:
            continue
        counts.append(sum(link in established for link in links))
    return sorted(counts, reverse=True)


def split_midway(server_pid: int, port: int, seconds: float) -> Callable[[], list[int]]:
    """Count each worker's connections `seconds` from now (in a thread); the returned function waits for it."""
    result: list[int] = []
    thread = threading.Timer(seconds, lambda: result.extend(connections_per_worker(server_pid, port)))
    thread.start()

    def wait() -> list[int]:
        thread.join()
        return result

    return wait


WARM_UP_LIMIT_SECONDS = 300.0


def warm_up(server_pid: int, port: int, tokens: list[str], campaign_id: int) -> float:
    """Drive the load in one-second rounds until every gunicorn worker has taken connections; return the seconds.

    The server counts as started once one worker answers, but on a loaded machine the other may still be importing
    the application (2 s of CPU, tens of seconds of wall time at a load of 20): measured from then, its boot would
    count as CPU per rating and its queue as latency. A worker accepts connections only once it has loaded the
    application, so a round in which every worker holds some means they have all booted (and warmed their caches).
    """
    started = time.perf_counter()
    while True:
        split = split_midway(server_pid, port, 0.5)
        run_load(port, tokens, campaign_id, 1.0)
        counts = split()
        if counts and min(counts) > 0:
            return time.perf_counter() - started
        if time.perf_counter() - started > WARM_UP_LIMIT_SECONDS:
            raise RuntimeError(f"a gunicorn worker took no connection in {WARM_UP_LIMIT_SECONDS:.0f} s: {counts}")


# ---- clients ---------------------------------------------------------------------------------------------------


@dataclass
class Samples:
    requests: list[float] = field(default_factory=list)
    round_trips: list[float] = field(default_factory=list)
    ratings: int = 0
    errors: list[str] = field(default_factory=list)


class Connection:
    """One client's keep-alive HTTP/1.1 connection: a few lines of asyncio, so the load generator, which shares
    the two cores with the server, spends as little CPU per request as it can. Reconnects when the server closes.
    """

    def __init__(self, port: int, token: str) -> None:
        self.port = port
        self.head = f"Host: 127.0.0.1\r\nAuthorization: Token {token}\r\nContent-Type: application/json\r\n"
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: dict[str, Any]) -> tuple[int, Any, float]:
        started = time.perf_counter()
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
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
            self.writer.close()
            self.reader = self.writer = None
        return status, (json.loads(payload) if payload else None), time.perf_counter() - started


async def client(port: int, token: str, campaign_id: int, stop_at: float, samples: Samples) -> None:
    try:
        await _round_trips(Connection(port, token), campaign_id, stop_at, samples)
    except (OSError, asyncio.IncompleteReadError) as error:  # a dropped connection is a result to report
        samples.errors.append(repr(error))


CHOICES = ["left", "right", "tie", "both_bad"]


async def rate_one(conn: Connection, campaign_id: int, n: int, samples: Samples, started: float) -> bool:
    """Make one next + rating round trip; `started` is when it began (or was due); False when it failed."""
    status, data, _ = await conn.post(f"/api/v1/campaigns/{campaign_id}/next/", {})
    t_next = time.perf_counter() - started
    if status != 200:
        samples.errors.append(f"next {status}")
        return False
    body = {"choice": CHOICES[n % 4], "time_ms": 1000}
    status, _, t_rate = await conn.post(f"/api/v1/assignments/{data['assignment']}/rating/", body)
    samples.requests += [t_next, t_rate]
    if status != 201:
        samples.errors.append(f"rating {status}")
        return True
    samples.round_trips.append(t_next + t_rate)
    samples.ratings += 1
    return True


async def _round_trips(conn: Connection, campaign_id: int, stop_at: float, samples: Samples) -> None:
    n = 0
    while time.perf_counter() < stop_at:
        if not await rate_one(conn, campaign_id, n, samples, time.perf_counter()):
            return
        n += 1


def run_load(port: int, tokens: list[str], campaign_id: int, seconds: float) -> tuple[Samples, float]:
    """Drive one client per token in one event loop until `seconds` have passed; return samples and the time."""
    samples = Samples()

    async def drive() -> None:
        stop_at = time.perf_counter() + seconds
        await asyncio.gather(*(client(port, token, campaign_id, stop_at, samples) for token in tokens))

    started = time.perf_counter()
    asyncio.run(drive())
    return samples, time.perf_counter() - started


def arrival_offsets(*, rate: float, seconds: float, arrivals: str, rng: random.Random) -> list[float]:
    """Return the seconds after the start at which ratings are due: `rate` a second for `seconds`.

    "even" spaces them 1/rate apart; "poisson" places them as a Poisson process would (independent annotators:
    bursts and lulls, gaps close to exponential of mean 1/rate) but conditioned on the count: rate x seconds
    moments drawn uniformly over the run, sorted. Drawing the gaps instead would offer a random count, 293/s in
    one 10 s run at 300/s, which then reads as the server missing a target it was not offered.
    """
    due = int(rate * seconds)
    if arrivals == "even":
        return [i / rate for i in range(due)]
    return sorted(rng.uniform(0, seconds) for _ in range(due))


@dataclass
class OpenLoop:
    """How an open-loop run went: what was due, what finished, and how late the last starts were."""

    due: int
    started: int
    max_start_lag: float  # seconds between a rating's due time and when a client could start it


async def drive_open_loop(
    connections: list[Connection], campaign_id: int, offsets: list[float], samples: Samples, grace: float
) -> OpenLoop:
    """Start a next + rating round trip at each offset on the first free connection, and time it from that offset.

    A rating due while every connection is busy waits for one, and its latency counts the wait (the time from when
    it was due), so a server that falls behind shows it in the latencies instead of slowing the arrivals down
    (coordinated omission). Ratings not started within `grace` seconds after the last offset are dropped.
    """
    queue: asyncio.Queue[float] = asyncio.Queue()
    lag = 0.0
    started = 0
    origin = time.perf_counter()
    give_up_at = origin + (offsets[-1] if offsets else 0.0) + grace

    async def worker(conn: Connection) -> None:
        nonlocal lag, started
        n = 0
        while True:
            due = await queue.get()
            now = time.perf_counter()
            if now > give_up_at:
                queue.task_done()
                continue
            lag = max(lag, now - due)
            started += 1
            try:
                await rate_one(conn, campaign_id, n, samples, due)
            except (OSError, asyncio.IncompleteReadError) as error:  # counted; the next rating reconnects
                samples.errors.append(repr(error))
                conn.reader = conn.writer = None
            n += 1
            queue.task_done()

    workers = [asyncio.create_task(worker(conn)) for conn in connections]
    for offset in offsets:
        delay = origin + offset - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait(origin + offset)
    await queue.join()
    for task in workers:
        task.cancel()
    await asyncio.gather(*workers, return_exceptions=True)
    return OpenLoop(due=len(offsets), started=started, max_start_lag=lag)


def run_open_loop(
    port: int, tokens: list[str], campaign_id: int, seconds: float, rate: float, arrivals: str
) -> tuple[Samples, float, OpenLoop]:
    """Offer `rate` ratings a second for `seconds` through one connection per token; return samples and the time."""
    samples = Samples()
    offsets = arrival_offsets(rate=rate, seconds=seconds, arrivals=arrivals, rng=random.Random(4))

    async def drive() -> OpenLoop:
        connections = [Connection(port, token) for token in tokens]
        return await drive_open_loop(connections, campaign_id, offsets, samples, grace=OPEN_LOOP_GRACE_SECONDS)

    started = time.perf_counter()
    outcome = asyncio.run(drive())
    return samples, time.perf_counter() - started, outcome


# ---- report ----------------------------------------------------------------------------------------------------


def percentiles(values: list[float]) -> tuple[float, float, float]:
    if len(values) < 2:
        return float("nan"), float("nan"), float("nan")
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[49] * 1000, cuts[94] * 1000, cuts[98] * 1000


def check_invariants(campaign_id: int) -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT coalesce(max(k), 0) FROM (SELECT count(*) AS k FROM annotation_rating r
            JOIN annotation_comparison c ON c.id = r.comparison_id WHERE c.campaign_id = %(c)s
            GROUP BY r.comparison_id) t
            """,
            {"c": campaign_id},
        )
        most = cursor.fetchone()[0]
    return f"most ratings on one comparison: {most} (required {REQUIRED})"


def measure(
    name: str, claim_function: str, args: argparse.Namespace, url: str, campaign_id: int, tokens: list[str]
) -> dict[str, float]:
    """Run the closed-loop saturation load (and the open-loop one when args.rate) against one server."""
    reset(campaign_id)
    server = start_server(url, args.port, claim_function, args.server_args)
    database = urlparse(url).path.lstrip("/")
    try:
        booted = warm_up(server.pid, args.port, tokens, campaign_id)
        print(f"          every gunicorn worker booted and answering after {booted:.1f} s of warm-up")
        reset(campaign_id)
        cpu = _cpu_counters(server.pid, database)
        split = split_midway(server.pid, args.port, args.seconds / 2)
        samples, elapsed = run_load(args.port, tokens, campaign_id, args.seconds)
        result = report(f"{name} closed loop", samples, elapsed, _cpu_used(server.pid, cpu))
        print(f"          connections per gunicorn worker midway: {split()}")
        print("         ", check_invariants(campaign_id))
        if args.rate and claim_function != NAIVE:
            reset(campaign_id)
            cpu = _cpu_counters(server.pid, database)
            split = split_midway(server.pid, args.port, args.seconds / 2)
            samples, elapsed, outcome = run_open_loop(
                args.port, tokens, campaign_id, args.seconds, args.rate, args.arrivals
            )
            offered = outcome.due / args.seconds
            open_result = report(f"{name} open loop", samples, elapsed, _cpu_used(server.pid, cpu))
            print(f"          connections per gunicorn worker midway: {split()}")
            kept_up = outcome.started == outcome.due and not samples.errors and outcome.max_start_lag < 1.0
            print(
                f"          offered {offered:.1f} ratings/s ({args.arrivals} arrivals, {len(tokens)} clients), "
                f"{outcome.started} of {outcome.due} started, latest start {outcome.max_start_lag * 1000:.0f} ms "
                f"after it was due: {'kept up' if kept_up else 'did NOT keep up'}"
            )
            print("         ", check_invariants(campaign_id))
            result |= {f"open_{key}": value for key, value in open_result.items()}
            result["open_kept_up"] = float(kept_up)
            result["open_offered"] = offered
    finally:
        server.terminate()
        server.wait(timeout=30)
    return result


def _cpu_counters(server_pid: int, database: str) -> tuple[float, PostgresCpu, float]:
    return process_tree_cpu_seconds(server_pid), PostgresCpu(database), time.process_time()


def _cpu_used(server_pid: int, before: tuple[float, PostgresCpu, float]) -> tuple[float, float, float]:
    """Return the CPU seconds gunicorn, the database's backends and this process used since `before`."""
    server, postgres, client = before
    return process_tree_cpu_seconds(server_pid) - server, postgres.seconds(), time.process_time() - client


def report(
    name: str,
    samples: Samples,
    elapsed: float,
    cpu: tuple[float, float, float],
) -> dict[str, float]:
    """Print a run's rate, latencies, CPU per rating (seconds used by gunicorn, PostgreSQL, the load generator)
    and the load average; return the figures."""
    server_cpu, postgres_cpu, client_cpu = cpu
    p50, p95, p99 = percentiles(samples.requests)
    r50, r95, r99 = percentiles(samples.round_trips)
    per_rating = 1000 / max(samples.ratings, 1)
    result = {
        "p50": p50,
        "p95": p95,
        "p99": p99,
        "rt_p95": r95,
        "rate": samples.ratings / elapsed,
        "cpu_ms": server_cpu * per_rating,
    }
    print(
        f"{name:>18}: {samples.ratings:6d} ratings in {elapsed:5.1f} s = {result['rate']:7.1f} ratings/s | "
        f"request latency ms p50 {p50:6.1f} p95 {p95:6.1f} p99 {p99:6.1f} | "
        f"next+rating round trip ms p50 {r50:6.1f} p95 {r95:6.1f} p99 {r99:6.1f} | errors {len(samples.errors)}"
    )
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    print(
        f"          CPU per rating (next + rating): gunicorn {result['cpu_ms']:.2f} ms, "
        f"PostgreSQL backends {postgres_cpu * per_rating:.2f} ms, load generator {client_cpu * per_rating:.2f} ms; "
        f"load average {load}"
    )
    if samples.errors:
        print("          first errors:", samples.errors[:5])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="100,000 comparisons, 10 s per strategy")
    parser.add_argument("--comparisons", type=int, default=None)
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--skip-naive", action="store_true")
    parser.add_argument("--server-args", default=PRODUCTION_ARGS, help="gunicorn arguments (default: production's)")
    parser.add_argument(
        "--rate", type=float, default=300.0, help="open-loop offered ratings/s for the engine (0: closed loop only)"
    )
    parser.add_argument("--arrivals", choices=["poisson", "even"], default="poisson", help="open-loop arrivals")
    args = parser.parse_args()
    args.comparisons = args.comparisons or (100_000 if args.quick else 1_000_000)
    args.seconds = args.seconds or (10.0 if args.quick else 30.0)

    url = bench_database_url()
    ensure_database(url)
    setup_django(url)
    campaign_id, tokens = seed(args.comparisons, args.clients)
    print(
        f"campaign of {args.comparisons:,} comparisons, {REQUIRED} ratings each; {args.clients} clients over HTTP; "
        f"gunicorn {args.server_args}, DJANGO_DEBUG=0; {args.seconds:.0f} s per strategy; "
        f"database {urlparse(url).path[1:]}"
    )
    engine = measure("engine", "", args, url, campaign_id, tokens)
    if not args.skip_naive:
        naive = measure("naive", NAIVE, args, url, campaign_id, tokens)
        print(
            f"engine vs naive (ORDER BY random() + row lock), closed loop: {engine['rate'] / naive['rate']:.1f}x "
            f"ratings/s, p95 {naive['p95'] / engine['p95']:.1f}x lower, p99 {naive['p99'] / engine['p99']:.1f}x lower"
        )
    saturation = engine["rate"] >= 300
    print(f"target >= 300 ratings/s at saturation (closed loop): {'met' if saturation else 'NOT met'}")
    if args.rate:
        offered = engine["open_kept_up"] and engine["open_offered"] >= 300 and engine["open_p95"] < 50
        print(
            f"target p95 < 50 ms at an offered 300 ratings/s (open loop, offered {engine['open_offered']:.0f}/s): "
            f"{'met' if offered else 'NOT met'}"
        )


if __name__ == "__main__":
    main()
