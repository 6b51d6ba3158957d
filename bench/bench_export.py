"""Benchmark: stream a campaign's ratings to JSONL, CSV and Parquet; print rows/s and peak memory.

Seeds a campaign of N ratings (default 1,000,000; --quick: 100,000) with SQL (INSERT ... SELECT generate_series),
kept between runs under the slug ``bench-ratings-N`` (--fresh re-seeds). Each export runs in its own process so
its peak RSS is its own; it also reports its CPU seconds and, when PostgreSQL runs on this machine, those of its
server process (figures that a loaded machine inflates less than rows/s). Baseline, measured in the same run: the
naive way, ``list(Rating.objects.select_related(...))`` then a dict and ``json.dumps`` per row, on a sample of
--sample ratings, extrapolated per row.

    DATABASE_URL=postgres://... python bench/bench_export.py [--quick] [--ratings N] [--fresh] [--formats F ...]
Targets (issue 6): >= 100,000 rows/s and peak RSS < 300 MB for 1,000,000 ratings.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalplatform.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth.models import User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402

from annotation.models import Campaign, Rater, Rating  # noqa: E402

MODELS = 8
RATERS = 20


def seed(n_ratings: int, *, fresh: bool = False) -> Campaign:
    """Return a campaign with n_ratings ratings, seeding it with SQL when absent (or when fresh)."""
    slug = f"bench-ratings-{n_ratings}"
    campaign = Campaign.objects.filter(slug=slug).first()
    if campaign is not None and not fresh and Rating.objects.filter(comparison__campaign=campaign).count() == n_ratings:
        return campaign
    if campaign is not None:
        with connection.cursor() as cursor:
            cursor.execute(
                "DELETE FROM annotation_rating WHERE comparison_id IN "
                "(SELECT id FROM annotation_comparison WHERE campaign_id = %s)",
                [campaign.pk],
            )
        campaign.delete()
    started = time.perf_counter()
    owner, _ = User.objects.get_or_create(username="bench-owner")
    with transaction.atomic():
        campaign = Campaign.objects.create(name=f"Benchmark {n_ratings}", slug=slug, owner=owner, status="active")
        raters = [
            Rater.objects.get_or_create(name=f"bench-rater-{i}", defaults={"kind": "human"})[0].pk
            for i in range(RATERS)
        ]
        pairs = MODELS * (MODELS - 1) // 2
        prompts = -(-n_ratings // (pairs * 3))  # about 3 ratings per comparison
        seed_sql(campaign.pk, prompts, raters, n_ratings)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE annotation_prompt, annotation_output, annotation_comparison, annotation_rating")
    print(f"seeded {n_ratings} ratings in {time.perf_counter() - started:.1f} s", flush=True)
    return campaign


def seed_sql(campaign_id: int, prompts: int, raters: list[int], n_ratings: int) -> None:
    """Insert prompts, outputs, all-pairs comparisons and ratings with set-based SQL."""
    with connection.cursor() as cursor:
        cursor.execute(
            """INSERT INTO annotation_prompt (campaign_id, external_id, text, reference_answer, metadata, created_at)
               SELECT %s, 'q' || g, 'Question ' || g || ': explain the idea briefly, with an example.', '', '{}', now()
               FROM generate_series(1, %s) g""",
            [campaign_id, prompts],
        )
        cursor.execute(
            """INSERT INTO annotation_output (prompt_id, model_name, text, metadata)
               SELECT p.id, 'model-' || m, 'Model ' || m || ' answers ' || p.external_id || '.' || repeat(' Text.', 40),
                      '{}'
               FROM annotation_prompt p, generate_series(0, %s - 1) m WHERE p.campaign_id = %s""",
            [MODELS, campaign_id],
        )
        cursor.execute(
            """INSERT INTO annotation_comparison (campaign_id, prompt_id, output_a_id, output_b_id, random_key,
                                                  filled, created_at)
               SELECT %s, a.prompt_id, a.id, b.id, random(), 0, now()
               FROM annotation_output a JOIN annotation_output b ON b.prompt_id = a.prompt_id AND a.id < b.id
               JOIN annotation_prompt p ON p.id = a.prompt_id WHERE p.campaign_id = %s""",
            [campaign_id, campaign_id],
        )
        cursor.execute(
            """INSERT INTO annotation_rating (comparison_id, rater_id, rater_kind, source, verdict, winner_id,
                                              left_output_id, strength, rationale, time_ms, metadata, created_at)
               SELECT c.id, r.rater, 'human', 'import', v.verdict,
                      CASE WHEN v.verdict = 'win' THEN
                          CASE WHEN v.u < 0.55 + 0.05 * (c.output_a_id %% 8) / 8.0 THEN c.output_a_id
                               ELSE c.output_b_id END END,
                      CASE WHEN v.u2 < 0.5 THEN c.output_a_id ELSE c.output_b_id END,
                      NULL, CASE WHEN v.u2 < 0.1 THEN 'A is clearer.' ELSE '' END,
                      (v.u * 60000)::int, '{}', now() - (v.u2 * interval '30 days')
               FROM (SELECT id, output_a_id, output_b_id, row_number() OVER (ORDER BY id) AS k
                     FROM annotation_comparison WHERE campaign_id = %s) c
               JOIN (SELECT rater, ordinality AS j FROM unnest(%s::bigint[]) WITH ORDINALITY AS t(rater)) r
                 ON r.j <= 3 OR r.j = 4 AND c.k <= %s
               CROSS JOIN LATERAL (SELECT random() AS u, random() AS u2,
                   CASE WHEN random() < 0.85 THEN 'win' WHEN random() < 0.7 THEN 'tie' ELSE 'both_bad' END AS verdict
                   WHERE c.id > 0) v
               ORDER BY c.id, r.j
               LIMIT %s""",
            [campaign_id, raters, max(0, n_ratings - 3 * count_comparisons(cursor, campaign_id)), n_ratings],
        )


def count_comparisons(cursor: Any, campaign_id: int) -> int:
    cursor.execute("SELECT count(*) FROM annotation_comparison WHERE campaign_id = %s", [campaign_id])
    return int(cursor.fetchone()[0])


def backend_cpu() -> float | None:
    """Return the CPU seconds of this connection's PostgreSQL backend, when the server runs on this machine."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_export(slug: str, kind: str, out: str) -> None:
    """Child process: export the campaign (kind is FORMAT.FILE_TYPE) and print rows, seconds and CPU as JSON."""
    from results.exports import write_export
    from results.raters import RaterSelection

    campaign = Campaign.objects.get(slug=slug)
    before, cpu = backend_cpu(), time.process_time()
    started = time.perf_counter()
    rows = write_export(campaign, format=kind.split(".")[0], out=out, selection=RaterSelection()).rows
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    after = backend_cpu()
    postgres = None if before is None or after is None else after - before
    print(json.dumps({"rows": rows, "seconds": seconds, "python_cpu": cpu, "postgres_cpu": postgres}))


def run_baseline(slug: str, sample: int, out: str) -> None:
    """Child process: the naive ORM export (instances with select_related, a dict and json.dumps per row)."""
    campaign = Campaign.objects.get(slug=slug)
    started = time.perf_counter()
    ratings = list(
        Rating.objects.filter(comparison__campaign=campaign)
        .select_related("rater", "comparison__prompt", "comparison__output_a", "comparison__output_b")
        .order_by("id")[:sample]
    )
    with open(out, "w") as handle:
        for r in ratings:
            c = r.comparison
            row = {
                "rating_id": r.pk,
                "comparison_id": c.pk,
                "question_id": c.prompt.external_id,
                "prompt": c.prompt.text,
                "model_a": c.output_a.model_name,
                "model_b": c.output_b.model_name,
                "output_a": c.output_a.text,
                "output_b": c.output_b.text,
                "rater": r.rater.pseudonym,
                "verdict": r.verdict,
                "winner_id": r.winner_id,
                "left_output_id": r.left_output_id,
                "rationale": r.rationale,
                "time_ms": r.time_ms,
                "created_at": r.created_at.isoformat(),
            }
            handle.write(json.dumps(row) + "\n")
    print(json.dumps({"rows": len(ratings), "seconds": time.perf_counter() - started}))


def child(args: list[str], script: str = __file__) -> tuple[dict[str, Any], float]:
    """Run a benchmark script (this one by default) as a child with args; return its JSON line and peak RSS in MB."""
    proc = subprocess.Popen([sys.executable, script, *args], stdout=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    output = proc.stdout.read() if proc.stdout else ""
    if status != 0:
        raise SystemExit(f"child {args} failed with status {status}")
    return json.loads(output.strip().splitlines()[-1]), usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ratings", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="100,000 ratings, baseline sample 10,000.")
    parser.add_argument("--sample", type=int, default=50_000, help="Ratings the naive baseline exports.")
    parser.add_argument("--fresh", action="store_true", help="Re-seed even if the campaign exists.")
    parser.add_argument("--formats", nargs="+", default=["ratings"], choices=["ratings", "arena", "dpo", "alpaca_eval"])
    parser.add_argument("--child", nargs=3, metavar=("KIND", "SLUG", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, slug, out = args.child
        run_baseline(slug, args.sample, out) if kind == "baseline" else run_export(slug, kind, out)
        return
    n, sample = (100_000, 10_000) if args.quick else (args.ratings, args.sample)
    call_command("migrate", verbosity=0)  # the bench database may predate newer migrations
    campaign = seed(n, fresh=args.fresh)
    with tempfile.TemporaryDirectory() as tmp:
        base, base_mb = child(["--sample", str(sample), "--child", "baseline", campaign.slug, f"{tmp}/naive.jsonl"])
        base_rate = base["rows"] / base["seconds"]
        print(
            f"baseline naive ORM + json.dumps: {base['rows']:>9} rows {base_rate:>10,.0f} rows/s  "
            f"peak RSS {base_mb:4.0f} MB (extrapolated to {n:,} rows: {n / base_rate:.1f} s)",
            flush=True,
        )
        for kind in [f"{fmt}.{file_type}" for fmt in args.formats for file_type in ("jsonl", "csv", "parquet")]:
            out = f"{tmp}/{kind}"
            result, peak_mb = child(["--child", kind, campaign.slug, out])
            rate = result["rows"] / result["seconds"]
            size = Path(out).stat().st_size / 1e6
            postgres = "" if result["postgres_cpu"] is None else f" + postgres {result['postgres_cpu']:4.1f} s"
            print(
                f"export {kind:<20}: {result['rows']:>9} rows {rate:>10,.0f} rows/s  peak RSS {peak_mb:4.0f} MB  "
                f"{size:5.0f} MB file  {rate / base_rate:5.1f}x baseline  cpu: python {result['python_cpu']:4.1f} s"
                f"{postgres}",
                flush=True,
            )


if __name__ == "__main__":
    main()
