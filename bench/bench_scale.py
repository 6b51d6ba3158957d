"""Benchmark: the reads of one campaign of N ratings (default 1,000,000; issue 18's full run: 10,000,000).

Seeds a campaign by SQL (kept between runs under the slug ``bench-scale-N``; --fresh re-seeds): --prompts prompts
(default N / 10) answered by 3 of --models models each, the 3 pairs of each prompt as comparisons; --judges judges
rate most of them in both orders (90% of the ratings), --humans annotators rate a minority (two per comparison, a
third on every fifth), half of those comparisons also judged; 1% of the human comparisons carry a gold verdict.
Verdicts follow a hidden better side per comparison, with noise and a slight left bias for judges.

Then, each in its own child process (so the peak RSS, the process's VmHWM, is its own; "base" is the child's RSS
before the operation, Django loaded): the agreement report (``compute_agreement``, 200 bootstrap rounds) and, as the
baseline, what the report did before it read compact arrays: every selected rating as a ``RatingRow`` object
(``rating_rows``) collapsed to (unit, rater, value) tuples; the leaderboard's full recount and its incremental
refresh after 1,000 new ratings; each export (rows/s); the admin's campaign change page and the ratings changelist
(the Django test client, as a superuser); and the disk per rating of ``annotation_rating`` with its indexes.

    DATABASE_URL=postgres://... python bench/bench_scale.py [--ratings N] [--fresh] [--only agreement ...]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_export import child
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import connection, transaction

from annotation.models import Campaign, Rater, Rating

OPERATIONS = (
    "agreement",
    "agreement_rows",
    "recount",
    "refresh",
    "export_ratings",
    "export_arena",
    "export_dpo",
    "admin_campaign",
    "admin_ratings",
)
HUMAN_SHARE = 0.10
HUMANS_PER_COMPARISON = 2.2  # two humans per comparison, a third on every fifth


def plan(n_ratings: int, judges: int) -> tuple[int, int]:
    """Return how many comparisons the judges rate (both orders) and how many the humans rate."""
    judged = round(n_ratings * (1 - HUMAN_SHARE) / (2 * judges))
    human = round((n_ratings - 2 * judges * judged) / HUMANS_PER_COMPARISON) + 1
    return judged, human


def seed(n_ratings: int, *, models: int, prompts: int, judges: int, humans: int, fresh: bool = False) -> Campaign:
    """Return the bench campaign of n_ratings ratings, seeding it by SQL when absent (or when fresh)."""
    if models < 3 or judges < 1 or humans < 3:
        raise SystemExit("--models needs at least 3, --judges 1 and --humans 3")
    judged, human = plan(n_ratings, judges)
    if judged + human // 2 > 3 * prompts:
        raise SystemExit(f"{prompts} prompts (3 comparisons each) are too few for {n_ratings} ratings")
    slug = f"bench-scale-{n_ratings}"
    campaign = Campaign.objects.filter(slug=slug).first()
    if campaign is not None and not fresh and Rating.objects.filter(comparison__campaign=campaign).count() == n_ratings:
        return campaign
    if campaign is not None:
        drop(campaign)
    started = time.perf_counter()
    nice_backend()
    owner, _ = User.objects.get_or_create(username="bench-owner")
    with transaction.atomic():
        campaign = Campaign.objects.create(name=f"Scale {n_ratings}", slug=slug, owner=owner, status="active")
        judge_ids = [
            Rater.objects.get_or_create(name=f"scale-judge-{i}", defaults={"kind": "judge"})[0].pk
            for i in range(judges)
        ]
        human_ids = [
            Rater.objects.get_or_create(name=f"scale-human-{i}", defaults={"kind": "human"})[0].pk
            for i in range(humans)
        ]
        with connection.cursor() as cursor:
            seed_items(cursor, campaign.pk, prompts, models)
            seed_ratings(cursor, campaign.pk, judge_ids, human_ids, n_ratings)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE annotation_prompt, annotation_output, annotation_comparison, annotation_rating")
    print(f"seeded {n_ratings:,} ratings in {time.perf_counter() - started:.1f} s", flush=True)
    return campaign


def nice_backend() -> None:
    """Lower the priority of this connection's PostgreSQL backend as far as this process's own, when the server
    runs on this machine and lets us (the seed's inserts are the server's work, not ours)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    with contextlib.suppress(OSError):  # another machine's server, or not ours to renice
        ours = os.getpriority(os.PRIO_PROCESS, 0)
        os.setpriority(os.PRIO_PROCESS, pid, max(ours, os.getpriority(os.PRIO_PROCESS, pid)))


def drop(campaign: Campaign) -> None:
    """Delete a bench campaign and its ratings."""
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM annotation_rating WHERE comparison_id IN "
            "(SELECT id FROM annotation_comparison WHERE campaign_id = %s)",
            [campaign.pk],
        )
    campaign.delete()


def seed_items(cursor: Any, campaign_id: int, prompts: int, models: int) -> None:
    """Insert the prompts, 3 outputs each (3 distinct models) and the 3 comparisons of each prompt."""
    cursor.execute(
        """INSERT INTO annotation_prompt (campaign_id, external_id, text, reference_answer, metadata, created_at,
                                       tags, duplicate_kind)
           SELECT %s, 'q' || g, 'Question ' || g || ': explain the idea briefly, with an example.', '', '{}', now(),
                  '{}', ''
           FROM generate_series(1, %s) g""",
        [campaign_id, prompts],
    )
    step = models // 3
    cursor.execute(
        """INSERT INTO annotation_output (prompt_id, model_name, text, metadata)
           SELECT p.id, 'model-' || ((p.id * 7 + j * %s) %% %s), 'Answer ' || j || ' to ' || p.external_id
                  || '.' || repeat(' Text.', 40), '{}'
           FROM annotation_prompt p, generate_series(0, 2) j WHERE p.campaign_id = %s""",
        [step, models, campaign_id],
    )
    cursor.execute(
        """INSERT INTO annotation_comparison (campaign_id, prompt_id, output_a_id, output_b_id, random_key,
                                              filled, created_at)
           SELECT %s, a.prompt_id, a.id, b.id, random(), 0, now()
           FROM annotation_output a JOIN annotation_output b ON b.prompt_id = a.prompt_id AND a.id < b.id
           JOIN annotation_prompt p ON p.id = a.prompt_id WHERE p.campaign_id = %s""",
        [campaign_id, campaign_id],
    )


# One rating: the comparison's hidden better side wins 75% of the time (judges 5 points more often for the side
# shown on the left), the other 15%, tie 7%, both bad 3%.
RATING_INSERT = """
    INSERT INTO annotation_rating (comparison_id, rater_id, rater_kind, source, verdict, winner_id, left_output_id,
                                   strength, rationale, time_ms, metadata, created_at)
    SELECT p.id, p.rater, p.kind, 'import', v.verdict,
           CASE WHEN v.verdict = 'win' THEN CASE WHEN v.first_wins THEN p.a ELSE p.b END END,
           CASE WHEN p.a_left THEN p.a ELSE p.b END, NULL, '', p.time_ms, '{}', now()
    FROM ({plan}) p
    CROSS JOIN LATERAL (
        SELECT CASE WHEN u < 0.9 THEN 'win' WHEN u < 0.97 THEN 'tie' ELSE 'both_bad' END AS verdict,
               (u < 0.75 + CASE WHEN p.kind = 'judge' AND p.a_left THEN 0.05 ELSE 0 END) = ((p.id * 7919) %% 100 < 55)
                   AS first_wins
        FROM (SELECT random() AS u WHERE p.id > 0) r) v
"""
JUDGE_PLAN = """
    SELECT c.id, c.output_a_id AS a, c.output_b_id AS b, j.rater, 'judge' AS kind, o.a_left, NULL::int AS time_ms
    FROM (SELECT id, output_a_id, output_b_id, row_number() OVER (ORDER BY id) AS k
          FROM annotation_comparison WHERE campaign_id = %s) c
    CROSS JOIN unnest(%s::bigint[]) AS j(rater)
    CROSS JOIN (VALUES (true), (false)) AS o(a_left)
    WHERE c.k <= %s"""
HUMAN_PLAN = """
    SELECT c.id, c.output_a_id AS a, c.output_b_id AS b, (%s::bigint[])[1 + (c.k + s) %% %s] AS rater,
           'human' AS kind, random() < 0.5 AS a_left, (5000 + random() * 60000)::int AS time_ms
    FROM (SELECT id, output_a_id, output_b_id, row_number() OVER (ORDER BY id) AS k
          FROM annotation_comparison WHERE campaign_id = %s) c
    CROSS JOIN generate_series(0, 2) s
    WHERE c.k > %s AND c.k <= %s AND (s < 2 OR c.k %% 5 = 0)
    LIMIT %s"""


def seed_ratings(cursor: Any, campaign_id: int, judges: list[int], humans: list[int], n_ratings: int) -> None:
    """Insert the judges' ratings (both orders), then the humans' (half on judged comparisons), then gold."""
    judged, human = plan(n_ratings, len(judges))
    cursor.execute(RATING_INSERT.replace("{plan}", JUDGE_PLAN), [campaign_id, judges, judged])
    start = judged - human // 2
    rest = n_ratings - 2 * len(judges) * judged
    cursor.execute(
        RATING_INSERT.replace("{plan}", HUMAN_PLAN), [humans, len(humans), campaign_id, start, start + human, rest]
    )
    cursor.execute(
        """UPDATE annotation_comparison c SET gold_verdict = 'win', gold_winner_id = CASE
               WHEN (c.id * 7919) %% 100 < 55 THEN c.output_a_id ELSE c.output_b_id END
           FROM (SELECT id, row_number() OVER (ORDER BY id) AS k FROM annotation_comparison
                 WHERE campaign_id = %s) n
           WHERE n.id = c.id AND n.k > %s AND n.k <= %s AND (n.k - %s) %% 100 = 1""",
        [campaign_id, start, start + human, start],
    )


def vm_hwm_mb() -> float:
    """Return this process's peak resident memory (VmHWM) in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def operation(name: str, campaign: Campaign, out: str) -> Callable[[], int]:
    """Return the timed call of one operation; it returns the rows it handled."""
    from results.agreement import collapse, compute_agreement
    from results.counts import rater_counts
    from results.exports import write_export
    from results.leaderboards import compute_leaderboard
    from results.raters import RaterSelection
    from results.selectors import rating_rows

    everyone = RaterSelection()
    if name == "agreement":
        return lambda: sum(a["n_ratings"] for a in compute_agreement(campaign, everyone)["annotators"])
    if name == "agreement_rows":
        return lambda: len(collapse(rating_rows(campaign, everyone)))
    if name == "recount":
        return lambda: len(rater_counts(campaign, full=True))
    if name == "refresh":
        rater_counts(campaign, full=True)
        late = add_ratings(campaign, 1000)
        return lambda: _refresh(compute_leaderboard(campaign, everyone, with_elo=False), late)
    if name.startswith("export_"):
        fmt = name.removeprefix("export_")
        return lambda: write_export(campaign, format=fmt, out=f"{out}/{fmt}.jsonl", selection=everyone).rows
    return admin_page(name, campaign)


def _refresh(board: dict[str, Any], late: Rater) -> int:
    """Remove the late ratings again (the seeded campaign stays as it was) and return the battles counted."""
    Rating.objects.filter(rater=late).delete()
    late.delete()
    return int(board["n_battles"])


def add_ratings(campaign: Campaign, k: int) -> Rater:
    """Add k ratings by a new rater, as if they had just arrived; return the rater."""
    rater = Rater.objects.create(name=f"scale-late-{time.time_ns()}", kind="human")
    with connection.cursor() as cursor:
        cursor.execute(
            """INSERT INTO annotation_rating (comparison_id, rater_id, rater_kind, source, verdict, winner_id,
                                              left_output_id, rationale, metadata, created_at)
               SELECT id, %s, 'human', 'import', 'win', output_a_id, output_b_id, '', '{}', now()
               FROM annotation_comparison WHERE campaign_id = %s ORDER BY id LIMIT %s""",
            [rater.pk, campaign.pk, k],
        )
    return rater


def admin_page(name: str, campaign: Campaign) -> Callable[[], int]:
    """Return a GET of the admin's campaign change page or the ratings changelist, as a superuser."""
    from django.test import Client

    user, created = User.objects.get_or_create(username="scale-admin", defaults={"is_superuser": True})
    if created or not user.is_staff:
        user.is_staff = user.is_superuser = True
        user.save()
    client = Client()
    client.force_login(user)
    url = (
        f"/admin/annotation/campaign/{campaign.pk}/change/"
        if name == "admin_campaign"
        else f"/admin/annotation/rating/?comparison__campaign__id__exact={campaign.pk}"
    )

    def get() -> int:
        response = client.get(url, SERVER_NAME="localhost")
        if response.status_code != 200:
            raise SystemExit(f"{url} answered {response.status_code}")
        return len(response.content)

    get()  # the first request of a process compiles templates and fills caches: time the second
    return get


def run_child(name: str, slug: str) -> None:
    """Child process: time one operation and print rows, seconds, base and peak RSS as JSON."""
    campaign = Campaign.objects.get(slug=slug)
    with tempfile.TemporaryDirectory() as out:
        call = operation(name, campaign, out)
        base = vm_hwm_mb()
        started = time.perf_counter()
        rows = call()
        seconds = time.perf_counter() - started
    print(json.dumps({"op": name, "rows": rows, "seconds": seconds, "base_mb": base, "peak_mb": vm_hwm_mb()}))


def disk_per_rating() -> tuple[int, float, float]:
    """Return the ratings in annotation_rating and the bytes per rating of the table and of its indexes."""
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT (SELECT count(*) FROM annotation_rating), pg_table_size('annotation_rating'),
                      pg_indexes_size('annotation_rating')"""
        )
        count, table, indexes = cursor.fetchone()
    return int(count), table / max(count, 1), indexes / max(count, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ratings", type=int, default=1_000_000)
    parser.add_argument("--models", type=int, default=None, help="default: 1,000 from 10M ratings, else 100")
    parser.add_argument("--prompts", type=int, default=None, help="default: ratings / 10")
    parser.add_argument("--judges", type=int, default=2)
    parser.add_argument("--humans", type=int, default=200)
    parser.add_argument("--fresh", action="store_true", help="Re-seed even if the campaign exists.")
    parser.add_argument("--only", nargs="+", choices=OPERATIONS, default=list(OPERATIONS))
    parser.add_argument("--child", nargs=2, metavar=("OP", "SLUG"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_child(*args.child)
        return
    if args.ratings < 100:
        raise SystemExit("--ratings must be at least 100")
    models = args.models or (1000 if args.ratings >= 10_000_000 else 100)
    prompts = args.prompts or max(args.ratings // 10, 10)
    call_command("migrate", verbosity=0)
    campaign = seed(
        args.ratings, models=models, prompts=prompts, judges=args.judges, humans=args.humans, fresh=args.fresh
    )
    print(
        f"campaign {campaign.slug}: {args.ratings:,} ratings, {prompts:,} prompts, {models} models, "
        f"{args.judges} judges, {args.humans} humans",
        flush=True,
    )
    print(f"{'operation':<16} {'rows':>11} {'seconds':>9} {'rows/s':>11} {'base MB':>8} {'peak MB':>8}")
    for name in args.only:
        result, _ = child(["--child", name, campaign.slug], __file__)
        rate = result["rows"] / result["seconds"] if result["seconds"] else float("inf")
        print(
            f"{name:<16} {result['rows']:>11,} {result['seconds']:>9.2f} {rate:>11,.0f} "
            f"{result['base_mb']:>8.0f} {result['peak_mb']:>8.0f}",
            flush=True,
        )
    count, table, indexes = disk_per_rating()
    print(
        f"disk: {count:,} ratings in annotation_rating, {table:.0f} B/rating table + {indexes:.0f} B/rating "
        f"indexes = {table + indexes:.0f} B/rating"
    )


if __name__ == "__main__":
    main()
