"""Benchmark what one claim costs as the rater's own history grows: the engine vs the claim before bands.

A rater who has rated many comparisons nobody else has taken yet holds them all at level 1. The claim before
(named baseline `random-key arms`: each level walked in random_key order from a random point, the rater's own
comparisons skipped one by one by NOT EXISTS) reads each of them on every claim; the engine leaves them out as
one index range (annotation.engine). For each history size, the rater's comparisons are inserted by SQL in a
transaction that is rolled back, and the claim statement runs under EXPLAIN (ANALYZE, BUFFERS) (each run rolled
back to a savepoint): the script prints the median execution time and buffer hits of each, and their ratios.
Buffer hits count the pages read, so they do not depend on the machine's load; the times do.

Uses the annotator benchmark's database and campaign (bench/bench_assignment.py, 100,000 comparisons with
--quick, else 1,000,000), seeding it when missing.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/ep_annotate python bench/bench_claim_history.py [--quick]
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
from datetime import UTC, datetime, timedelta
from typing import Any

import bench_assignment  # the annotator benchmark's database, seeding and reset (this script's directory)

HISTORIES = [0, 200, 1_700, 10_000]
RUNS = 9
REQUIRED = bench_assignment.REQUIRED
# The claim before this change walked an index on (campaign, filled, random_key); it is built for the baseline
# inside the rolled-back transaction.
BASELINE_INDEX = (
    "CREATE INDEX bench_random_key_claim_idx ON annotation_comparison (campaign_id, filled, random_key) "
    "WHERE gold_verdict IS NULL"
)


def baseline_arms(*, required: int, gold: bool) -> list[tuple[str, str]]:
    """The claim's arms before bands: each level from a random point of random_key, then wrapping around."""
    return [
        (f"c.gold_verdict IS NULL AND c.filled = {level} AND c.random_key {side} %(start)s", "c.random_key")
        for level in range(required - 1, -1, -1)
        for side in (">=", "<")
    ]


def claim_statement(arms: Any) -> str:
    from annotation import engine

    original = engine.claim_arms
    engine.claim_arms = arms
    engine.claim_sql.cache_clear()
    try:
        return engine.claim_sql(required=REQUIRED, gold=False)
    finally:
        engine.claim_arms = original
        engine.claim_sql.cache_clear()


def measure(cursor: Any, sql: str, rater: int, campaign_id: int, rng: random.Random) -> tuple[float, int]:
    """Return the median execution time (ms) and buffer hits of RUNS claims from random starting points."""
    now = datetime.now(UTC)
    times, hits = [], []
    for _ in range(RUNS):
        params = {
            "campaign": campaign_id,
            "rater": rater,
            "start": rng.random(),
            "left_is_a": True,
            "expires": now + timedelta(minutes=5),
            "now": now,
        }
        cursor.execute("SAVEPOINT claim")
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
        plan = [row[0] for row in cursor.fetchall()]
        cursor.execute("ROLLBACK TO SAVEPOINT claim")
        times.append(float(re.search(r"Execution Time: ([\d.]+)", plan[-1]).group(1)))  # type: ignore[union-attr]
        hits.append(int(re.search(r"hit=(\d+)", next(line for line in plan if "Buffers" in line)).group(1)))  # type: ignore[union-attr]
    return statistics.median(times), int(statistics.median(hits))


def run(campaign_id: int, history: int, rng: random.Random) -> tuple[tuple[float, int], tuple[float, int]]:
    """Give a fresh rater `history` comparisons at level 1 that nobody else has, then measure both claims."""
    from django.db import connection, transaction

    from annotation.engine import claim_arms

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO annotation_rater (kind, name, pseudonym, created_at) "
            "VALUES ('human', 'bench-history', 'bench-history', now()) RETURNING id"
        )
        rater = cursor.fetchone()[0]
        cursor.execute(
            """
            WITH pick AS (
                SELECT id FROM annotation_comparison
                WHERE campaign_id = %(c)s AND filled = 0 AND gold_verdict IS NULL ORDER BY random() LIMIT %(n)s
            ), given AS (
                INSERT INTO annotation_assignment
                    (comparison_id, rater_id, left_output_id, state, lease_expires_at, created_at, updated_at)
                SELECT c.id, %(r)s, c.output_a_id, 'rated', now(), now(), now()
                FROM annotation_comparison c JOIN pick USING (id)
                RETURNING comparison_id
            )
            UPDATE annotation_comparison SET filled = 1, last_claimed_by = %(r)s
            WHERE id IN (SELECT comparison_id FROM given)
            """,
            {"c": campaign_id, "n": history, "r": rater},
        )
        cursor.execute("ANALYZE annotation_assignment")
        measure(cursor, claim_statement(claim_arms), rater, campaign_id, rng)  # warm the cache
        engine = measure(cursor, claim_statement(claim_arms), rater, campaign_id, rng)
        cursor.execute(BASELINE_INDEX)
        baseline = measure(cursor, claim_statement(baseline_arms), rater, campaign_id, rng)
        transaction.set_rollback(True)
    return engine, baseline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="100,000 comparisons instead of 1,000,000")
    args = parser.parse_args()
    comparisons = 100_000 if args.quick else 1_000_000
    url = bench_assignment.bench_database_url()
    bench_assignment.ensure_database(url)
    bench_assignment.setup_django(url)
    campaign_id, _ = bench_assignment.seed(comparisons, 1)
    bench_assignment.reset(campaign_id)
    rng = random.Random(1)
    print(f"{comparisons:,} comparisons; one claim, median of {RUNS}; baseline: random-key arms (the claim before)")
    print(f"{'own at level 1':>15} | {'engine ms':>9} {'hits':>6} | {'baseline ms':>11} {'hits':>6} | ratio ms, hits")
    for history in HISTORIES:
        (ms, hits), (base_ms, base_hits) = run(campaign_id, history, rng)
        print(
            f"{history:>15,} | {ms:>9.2f} {hits:>6} | {base_ms:>11.2f} {base_hits:>6} | "
            f"{base_ms / ms:.1f}x, {base_hits / hits:.1f}x"
        )


if __name__ == "__main__":
    main()
