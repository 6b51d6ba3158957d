"""Benchmark the assignment engine over HTTP: 32 annotators doing next + rating round trips against gunicorn.

Runs the server as the README's production command does (gunicorn, 4 sync workers, DJANGO_DEBUG=0) against a
separate database (<DATABASE_URL's name>_bench) holding one campaign of 1,000,000 comparisons (100,000 with
--quick), seeded with INSERT ... SELECT generate_series. Measures the product's claim (random point in the key
space, fullest comparisons first, FOR NO KEY UPDATE SKIP LOCKED) and, as the named baseline, the naive claim
(ORDER BY random() with a row lock, `claim_naive` below, swapped in through EVALPLATFORM_CLAIM_FUNCTION), then
prints p50/p95/p99 request latency, round-trip latency, ratings per second and the ratios.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/ep_annotate python bench/bench_assignment.py [--quick]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse, urlunparse

if TYPE_CHECKING:
    from annotation.services import ClaimRequest

REPO = Path(__file__).resolve().parent.parent
MODELS = 5  # 10 pairs per prompt
REQUIRED = 3
NAIVE = "bench.bench_assignment:claim_naive"

NAIVE_SQL = """
WITH pick AS (
    SELECT c.id, c.output_a_id, c.output_b_id
    FROM annotation_comparison c
    WHERE c.campaign_id = %(campaign)s AND c.gold_verdict IS NULL AND c.filled < %(required)s
      AND NOT EXISTS (SELECT 1 FROM annotation_assignment a WHERE a.comparison_id = c.id AND a.rater_id = %(rater)s)
    ORDER BY random()
    LIMIT 1
    FOR UPDATE
), bump AS (
    UPDATE annotation_comparison c SET filled = c.filled + 1 FROM pick WHERE c.id = pick.id
    RETURNING c.id, c.output_a_id, c.output_b_id
)
INSERT INTO annotation_assignment
    (comparison_id, rater_id, left_output_id, state, lease_expires_at, created_at, updated_at)
SELECT id, %(rater)s, CASE WHEN %(left_is_a)s THEN output_a_id ELSE output_b_id END, 'leased',
    %(expires)s, %(now)s, %(now)s
FROM bump
RETURNING id
"""


def claim_naive(request: ClaimRequest) -> int | None:
    """Baseline claim: shuffle every open comparison with ORDER BY random() and wait on the row lock."""
    from django.db import connection

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
    with connection.cursor() as cursor:
        cursor.execute(NAIVE_SQL, params)
        row = cursor.fetchone()
    return None if row is None else int(row[0])


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

    slug = f"bench-{comparisons}"
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
    campaign.annotators.add(*users)
    return campaign.pk, tokens


def _seed_rows(cursor: Any, campaign_id: int, prompts: int) -> None:
    cursor.execute(
        """
        INSERT INTO annotation_prompt (campaign_id, external_id, text, reference_answer, metadata, created_at)
        SELECT %(c)s, 'p' || g, 'Prompt ' || g || ': explain **why** in a few sentences.', '', '{}', now()
        FROM generate_series(1, %(n)s) g
        """,
        {"c": campaign_id, "n": prompts},
    )
    cursor.execute(
        """
        INSERT INTO annotation_output (prompt_id, model_name, text, metadata)
        SELECT p.id, 'model-' || m, 'An answer with a list:' || E'\\n\\n' || '- point one' || E'\\n' || '- point ' || m,
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


def reset(campaign_id: int) -> None:
    """Forget every rating and assignment of the bench campaign, so each strategy starts from the same state."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM annotation_rating WHERE comparison_id IN "
            "(SELECT id FROM annotation_comparison WHERE campaign_id = %(c)s AND filled > 0)",
            {"c": campaign_id},
        )
        cursor.execute(
            "DELETE FROM annotation_assignment WHERE comparison_id IN "
            "(SELECT id FROM annotation_comparison WHERE campaign_id = %(c)s AND filled > 0)",
            {"c": campaign_id},
        )
        cursor.execute("DELETE FROM annotation_annotatorstatus WHERE campaign_id = %(c)s", {"c": campaign_id})
        cursor.execute(
            "UPDATE annotation_comparison SET filled = 0 WHERE campaign_id = %(c)s AND filled > 0", {"c": campaign_id}
        )
        cursor.execute("VACUUM ANALYZE annotation_comparison")


# ---- server ----------------------------------------------------------------------------------------------------


def start_server(url: str, port: int, claim_function: str) -> subprocess.Popen[bytes]:
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
    command = [str(gunicorn), "evalplatform.wsgi", "--workers", "4", "--bind", f"127.0.0.1:{port}"]
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


# ---- clients ---------------------------------------------------------------------------------------------------


@dataclass
class Samples:
    requests: list[float] = field(default_factory=list)
    round_trips: list[float] = field(default_factory=list)
    ratings: int = 0
    errors: list[str] = field(default_factory=list)


def call(port: int, token: str, path: str, body: dict[str, Any]) -> tuple[int, Any, float]:
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = {"Authorization": f"Token {token}", "Content-Type": "application/json", "Host": "127.0.0.1"}
    conn.request("POST", path, body=json.dumps(body), headers=headers)
    response = conn.getresponse()
    payload = response.read()
    conn.close()
    elapsed = time.perf_counter() - started
    return response.status, (json.loads(payload) if payload else None), elapsed


def client(port: int, token: str, campaign_id: int, stop_at: float, samples: Samples, lock: threading.Lock) -> None:
    try:
        _round_trips(port, token, campaign_id, stop_at, samples, lock)
    except OSError as error:  # a timeout is a result to report, not a crash
        with lock:
            samples.errors.append(repr(error))


def _round_trips(
    port: int, token: str, campaign_id: int, stop_at: float, samples: Samples, lock: threading.Lock
) -> None:
    choices = ["left", "right", "tie", "both_bad"]
    n = 0
    while time.perf_counter() < stop_at:
        status, data, t_next = call(port, token, f"/api/v1/campaigns/{campaign_id}/next/", {})
        if status != 200:
            with lock:
                samples.errors.append(f"next {status}")
            return
        body = {"choice": choices[n % 4], "time_ms": 1000}
        status, _, t_rate = call(port, token, f"/api/v1/assignments/{data['assignment']}/rating/", body)
        n += 1
        with lock:
            samples.requests += [t_next, t_rate]
            if status == 201:
                samples.round_trips.append(t_next + t_rate)
                samples.ratings += 1
            else:
                samples.errors.append(f"rating {status}")


def run_load(port: int, tokens: list[str], campaign_id: int, seconds: float) -> tuple[Samples, float]:
    samples, lock = Samples(), threading.Lock()
    started = time.perf_counter()
    stop_at = started + seconds
    threads = [
        threading.Thread(target=client, args=(port, token, campaign_id, stop_at, samples, lock)) for token in tokens
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return samples, time.perf_counter() - started


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
    reset(campaign_id)
    server = start_server(url, args.port, claim_function)
    try:
        run_load(args.port, tokens[:4], campaign_id, 1.0)  # warm the workers' connections and caches
        reset(campaign_id)
        cpu_before = process_tree_cpu_seconds(server.pid)
        samples, elapsed = run_load(args.port, tokens, campaign_id, args.seconds)
        server_cpu = process_tree_cpu_seconds(server.pid) - cpu_before
    finally:
        server.terminate()
        server.wait(timeout=30)
    p50, p95, p99 = percentiles(samples.requests)
    r50, r95, r99 = percentiles(samples.round_trips)
    result = {
        "p50": p50,
        "p95": p95,
        "p99": p99,
        "rt_p95": r95,
        "rate": samples.ratings / elapsed,
        "cpu_ms": server_cpu * 1000 / max(samples.ratings, 1),
    }
    print(
        f"{name:>8}: {samples.ratings:6d} ratings in {elapsed:5.1f} s = {result['rate']:7.1f} ratings/s | "
        f"request latency ms p50 {p50:6.1f} p95 {p95:6.1f} p99 {p99:6.1f} | "
        f"next+rating round trip ms p50 {r50:6.1f} p95 {r95:6.1f} p99 {r99:6.1f} | errors {len(samples.errors)}"
    )
    print(f"          gunicorn CPU per rating (next + rating): {result['cpu_ms']:.1f} ms")
    if samples.errors:
        print("          first errors:", samples.errors[:5])
    print("         ", check_invariants(campaign_id))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="100,000 comparisons, 10 s per strategy")
    parser.add_argument("--comparisons", type=int, default=None)
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--skip-naive", action="store_true")
    args = parser.parse_args()
    args.comparisons = args.comparisons or (100_000 if args.quick else 1_000_000)
    args.seconds = args.seconds or (10.0 if args.quick else 30.0)

    url = bench_database_url()
    ensure_database(url)
    setup_django(url)
    campaign_id, tokens = seed(args.comparisons, args.clients)
    print(
        f"campaign of {args.comparisons:,} comparisons, {REQUIRED} ratings each; {args.clients} clients over HTTP; "
        f"gunicorn --workers 4, DJANGO_DEBUG=0; {args.seconds:.0f} s per strategy; database {urlparse(url).path[1:]}"
    )
    engine = measure("engine", "", args, url, campaign_id, tokens)
    if args.skip_naive:
        return
    naive = measure("naive", NAIVE, args, url, campaign_id, tokens)
    print(
        f"engine vs naive (ORDER BY random() + row lock): {engine['rate'] / naive['rate']:.1f}x ratings/s, "
        f"p95 {naive['p95'] / engine['p95']:.1f}x lower, p99 {naive['p99'] / engine['p99']:.1f}x lower"
    )
    met = engine["p95"] < 50 and engine["rate"] >= 300
    print(f"targets (p95 < 50 ms, >= 300 ratings/s): {'met' if met else 'NOT met'}")


if __name__ == "__main__":
    main()
