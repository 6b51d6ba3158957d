"""Benchmark: one campaign of N ratings at several sizes side by side (issue 18: 1,000,000 against 10,000,000).

    DATABASE_URL=postgres://.../ep_scale python bench/bench_scale.py --ratings 1000000,10000000 [--only OP ...]

Each size gets its own database, ``<DATABASE_URL's name>_<N>`` (created and migrated here), so the campaign of N
ratings is alone in its tables, as on a server that holds one large campaign; ``--keep`` keeps the databases for
the next run (a kept campaign of the right size is reused), else they are dropped at the end.

The seed, by SQL (INSERT ... SELECT over generate_series, so its memory does not grow with N): --prompts prompts
(default N / 10) answered by 3 of --models models each (default 1,000 from 10M ratings, else 100), the 3 pairs of
each prompt as comparisons; --judges judges rate most of them in both orders (90% of the ratings, imported), --humans
annotators (accounts of the campaign) a minority through assignments as the rating page leaves them (two per
comparison drawn at random, a third on every fifth; `filled` and the claim order columns set to match), half of
those comparisons also judged; 1% of the human comparisons carry a gold verdict. A campaign of 20,000 ratings is
seeded after it in the same database: with a single campaign the admin drops its campaign filters. Verdicts follow
a hidden better side per comparison, with noise and a slight left bias for judges. The ratings table's secondary
indexes are built after the rows are in (as a bulk load does), and foreign keys are not checked row by row during
it (every id comes from a join of the rows just inserted).

Then, each in its own child process (so the peak RSS, the process's VmHWM, is its own; "base" is the child's RSS
before the operation, Django loaded), on the same seeded campaign at each size:

- ``claim``: --claims claim + rating pairs through the services the API calls (``claim_next`` then
  ``submit_rating``, in process, on one connection, no HTTP), by the seeded annotators in turn: wall p50 / p95 of a
  pair, the CPU of the child and of its PostgreSQL backend per pair (read from /proc when the server runs on this
  machine), and the WAL bytes and buffer hits and reads per pair (pg_stat_database). The pairs are removed again
  afterwards, so every size measures the same campaign. The HTTP cost on top is bench_assignment.py's.
- the agreement report (``compute_agreement``, 200 bootstrap rounds) and the old report's first step, every selected
  rating as a ``RatingRow`` object collapsed to tuples (``agreement_rows``);
- the leaderboard's full recount and its incremental refresh after 1,000 new ratings;
- each export (rows/s, peak RSS);
- the admin's campaign list, campaign change page, ratings changelist filtered to the campaign, to the small
  campaign (``admin_ratings_small``; ``_before``: as it was before the comparison-id bound, through a second admin
  site) and comparisons changelist filtered to the campaign (as a superuser; the second request is timed);

and the disk per rating of ``annotation_rating`` with its indexes. The last table prints every operation at each
size and the ratio of the largest size to the smallest: of the seconds (time), and for ``claim`` of the cost of one
pair (unchanged is 1.0).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalplatform.settings")
import django  # noqa: E402

django.setup()
from django.contrib.auth.models import User  # noqa: E402
from django.db import connection, transaction  # noqa: E402

from annotation.models import AnnotatorStatus, Campaign, Rater, Rating  # noqa: E402

OPERATIONS = (
    "claim",
    "agreement",
    "agreement_rows",
    "recount",
    "refresh",
    "export_ratings",
    "export_arena",
    "export_dpo",
    "admin_campaigns",
    "admin_campaign",
    "admin_ratings",
    "admin_ratings_small",
    "admin_ratings_small_before",
    "admin_comparisons",
)
# A small campaign seeded after the large one in the same database: the admin's list of its ratings is the case where
# a campaign's share of the table, not its size, decides the cost (its ratings have the highest ids).
SMALL = 20_000
HUMAN_SHARE = 0.10
HUMANS_PER_COMPARISON = 2.2  # two humans per comparison, a third on every fifth
CLAIMS = 300
# Figures an operation leaves for its child's JSON line beside rows and seconds (claim: latency and CPU per pair).
EXTRA: dict[str, float] = {}


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
        human_ids = seed_annotators(campaign, humans)
        with connection.cursor() as cursor:
            seed_items(cursor, campaign.pk, prompts, models)
            print(f"  items in {time.perf_counter() - started:.0f} s", flush=True)
            cursor.execute("SELECT count(*) FROM annotation_rating")
            bulk = n_ratings > cursor.fetchone()[0]  # else rebuilding the indexes costs more than it saves
            with rating_indexes_built_after(cursor) if bulk else contextlib.nullcontext():
                seed_ratings(cursor, campaign.pk, judge_ids, human_ids, n_ratings)
                print(f"  ratings in {time.perf_counter() - started:.0f} s", flush=True)
            seed_standing(cursor, campaign.pk)
    with connection.cursor() as cursor:
        # As autovacuum would have left them: statistics, and the visibility map index-only scans read.
        vacuum = "ANALYZE" if connection.in_atomic_block else "VACUUM (ANALYZE)"  # a test's transaction: no VACUUM
        cursor.execute(
            f"{vacuum} annotation_prompt, annotation_output, annotation_comparison, annotation_assignment, "
            "annotation_rating, annotation_annotatorstatus"
        )
    print(f"seeded {n_ratings:,} ratings in {time.perf_counter() - started:.1f} s", flush=True)
    return campaign


def seed_annotators(campaign: Campaign, humans: int) -> list[int]:
    """Return the rater ids of the campaign's annotators scale-human-0.., each an account of the campaign."""
    ids = []
    for i in range(humans):
        user, _ = User.objects.get_or_create(username=f"scale-human-{i}")
        rater = Rater.objects.filter(user=user).first() or Rater.objects.create(
            name=f"scale-human-{i}", kind="human", user=user
        )
        ids.append(rater.pk)
    campaign.annotators.add(*User.objects.filter(rater__id__in=ids))
    return ids


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
    # The comparisons numbered 1.. in id order, for the plans below to take ranges of.
    cursor.execute("DROP TABLE IF EXISTS scale_k")
    cursor.execute(
        """CREATE TEMPORARY TABLE scale_k ON COMMIT DROP AS
           SELECT id, output_a_id, output_b_id, row_number() OVER (ORDER BY id) AS k
           FROM annotation_comparison WHERE campaign_id = %s""",
        [campaign_id],
    )
    cursor.execute("CREATE INDEX ON scale_k (k)")
    cursor.execute("ANALYZE scale_k")


@contextlib.contextmanager
def rating_indexes_built_after(cursor: Any) -> Any:
    """Drop the ratings table's secondary indexes for the block and build them again after it, and skip the
    row-by-row foreign key triggers in it (a bulk load's shape: several times faster than maintaining 8 indexes row
    by row, and without a queue of deferred checks that grows with the rows). A duplicate the seed made would fail
    the rebuild of its unique index."""
    cursor.execute(
        """SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema()
           AND tablename = 'annotation_rating'
           AND indexname NOT IN (SELECT conname FROM pg_constraint WHERE conrelid = 'annotation_rating'::regclass)"""
    )
    indexes = cursor.fetchall()
    for name, _ in indexes:
        cursor.execute(f'DROP INDEX "{name}"')
    cursor.execute("SET LOCAL session_replication_role = replica")
    yield
    cursor.execute("SET LOCAL session_replication_role = DEFAULT")
    cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
    for _, definition in indexes:
        cursor.execute(definition)


# One rating: the comparison's hidden better side wins 75% of the time (judges 5 points more often for the side
# shown on the left), the other 15%, tie 7%, both bad 3%.
RATING_INSERT = """
    INSERT INTO annotation_rating (comparison_id, rater_id, rater_kind, source, assignment_id, verdict, winner_id,
                                   left_output_id, strength, rationale, time_ms, metadata, created_at)
    SELECT p.id, p.rater, p.kind, p.source, p.assignment, v.verdict,
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
    SELECT c.id, c.output_a_id AS a, c.output_b_id AS b, j.rater, 'judge' AS kind, 'import' AS source,
           NULL::bigint AS assignment, o.a_left, NULL::int AS time_ms
    FROM scale_k c
    CROSS JOIN unnest(%s::bigint[]) AS j(rater)
    CROSS JOIN (VALUES (true), (false)) AS o(a_left)
    WHERE c.k > %s AND c.k <= %s"""
# The humans' assignments, as rating them leaves them: state rated, the side shown on the left drawn at random, and
# the 2-3 annotators of a comparison drawn at random (o, o + d, o + 2d modulo H: distinct while 2d < H), as the
# engine's claims scatter them. (Annotators in a fixed rotation put each one's history in exactly the range of the
# claim index its next claim walks first: every claim then skipped thousands of its own comparisons.)
HUMAN_ASSIGNMENTS = """
    INSERT INTO annotation_assignment (comparison_id, rater_id, left_output_id, state, lease_expires_at, created_at,
                                       updated_at)
    SELECT c.id, (%(humans)s::bigint[])[1 + (r.o + s * r.d) %% %(h)s],
           CASE WHEN random() < 0.5 THEN c.output_a_id ELSE c.output_b_id END, 'rated', now(), now(), now()
    FROM scale_k c
    CROSS JOIN LATERAL (SELECT floor(random() * %(h)s)::int AS o, 1 + floor(random() * ((%(h)s - 1) / 2))::int AS d
                        WHERE c.k > 0) r
    CROSS JOIN generate_series(0, 2) s
    WHERE c.k > %(start)s AND c.k <= %(end)s AND (s < 2 OR c.k %% 5 = 0)
    ORDER BY c.k, s
    LIMIT %(rest)s"""
HUMAN_PLAN = """
    SELECT c.id, c.output_a_id AS a, c.output_b_id AS b, x.rater_id AS rater, 'human' AS kind,
           'annotator' AS source, x.id AS assignment, x.left_output_id = c.output_a_id AS a_left,
           (5000 + random() * 60000)::int AS time_ms
    FROM annotation_assignment x JOIN annotation_comparison c ON c.id = x.comparison_id
    WHERE c.campaign_id = %s"""
JUDGE_CHUNK = 250_000  # comparisons per judge INSERT: a bounded statement, and progress to print


def seed_ratings(cursor: Any, campaign_id: int, judges: list[int], humans: list[int], n_ratings: int) -> None:
    """Insert the judges' ratings (both orders), then the humans' (half on judged comparisons), then gold."""
    judged, human = plan(n_ratings, len(judges))
    for low in range(0, judged, JUDGE_CHUNK):
        cursor.execute(RATING_INSERT.replace("{plan}", JUDGE_PLAN), [judges, low, min(low + JUDGE_CHUNK, judged)])
    start = judged - human // 2
    rest = n_ratings - 2 * len(judges) * judged
    cursor.execute(
        HUMAN_ASSIGNMENTS, {"humans": humans, "h": len(humans), "start": start, "end": start + human, "rest": rest}
    )
    cursor.execute(RATING_INSERT.replace("{plan}", HUMAN_PLAN), [campaign_id])
    cursor.execute(
        """UPDATE annotation_comparison c SET gold_verdict = 'win', gold_winner_id = CASE
               WHEN (c.id * 7919) %% 100 < 55 THEN c.output_a_id ELSE c.output_b_id END
           FROM scale_k n
           WHERE n.id = c.id AND n.k > %s AND n.k <= %s AND (n.k - %s) %% 100 = 1""",
        [start, start + human, start],
    )


def seed_standing(cursor: Any, campaign_id: int) -> None:
    """Set each comparison's filled slots and last claimant from its assignments, and each annotator's count."""
    cursor.execute(
        """UPDATE annotation_comparison c SET filled = n.k, last_claimed_by = n.last
           FROM (SELECT comparison_id, count(*) AS k, (array_agg(rater_id ORDER BY id DESC))[1] AS last
                 FROM annotation_assignment GROUP BY comparison_id) n
           WHERE n.comparison_id = c.id AND c.campaign_id = %s""",
        [campaign_id],
    )
    cursor.execute(
        """INSERT INTO annotation_annotatorstatus (campaign_id, rater_id, rated_count, gold_answered, gold_correct,
                                                   paused, paused_reason, excluded, excluded_reason, updated_at)
           SELECT %s, r.id, count(x.id), 0, 0, false, '', false, '', now()
           FROM annotation_rater r JOIN auth_user u ON u.id = r.user_id
           JOIN annotation_campaign_annotators m ON m.user_id = u.id AND m.campaign_id = %s
           LEFT JOIN annotation_assignment x ON x.rater_id = r.id
               AND x.comparison_id IN (SELECT id FROM scale_k)
           GROUP BY r.id""",
        [campaign_id, campaign_id],
    )


def vm_hwm_mb() -> float:
    """Return this process's peak resident memory (VmHWM) in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def operation(name: str, campaign: Campaign, out: str, *, claims: int = CLAIMS) -> Callable[[], int]:
    """Return the timed call of one operation; it returns the rows it handled."""
    from results.agreement import collapse, compute_agreement
    from results.counts import rater_counts
    from results.exports import write_export
    from results.leaderboards import compute_leaderboard
    from results.raters import RaterSelection
    from results.selectors import rating_rows

    everyone = RaterSelection()
    if name == "claim":
        return claim_and_rate(campaign, claims)
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


def claim_and_rate(campaign: Campaign, claims: int) -> Callable[[], int]:
    """Return the timed run of `claims` claim + rating pairs by the campaign's annotators in turn; it leaves the
    latency, CPU, WAL and buffer pages per pair in EXTRA and removes its ratings and assignments afterwards."""
    from annotation.services import RatingInput, claim_next, submit_rating

    annotators = list(campaign.annotators.order_by("id"))
    rng = random.Random(18)

    def pair(user: User) -> None:
        lease = claim_next(user=user, campaign_id=campaign.pk)
        if lease.shown is None:
            raise SystemExit(f"{user.username} was given nothing to rate in {campaign.slug}")
        answer = RatingInput(choice=rng.choice(["left", "left", "right", "tie"]), time_ms=rng.randrange(5000, 60000))
        submit_rating(user=user, assignment_id=lease.shown.assignment_id, answer=answer)

    def run() -> int:
        first = _last_assignment_id()
        pair(annotators[-1])  # the first pair of a process prepares its statements: not timed
        server = _server_counters()
        backend = _backend_cpu_seconds()
        cpu = time.process_time()
        walls = []
        for i in range(claims):
            started = time.perf_counter()
            pair(annotators[i % len(annotators)])
            walls.append(time.perf_counter() - started)
        EXTRA["p50_ms"] = statistics.median(walls) * 1000
        EXTRA["p95_ms"] = statistics.quantiles(walls, n=20)[-1] * 1000 if claims > 1 else walls[0] * 1000
        EXTRA["client_cpu_ms"] = (time.process_time() - cpu) / claims * 1000
        EXTRA["db_cpu_ms"] = (_backend_cpu_seconds() - backend) / claims * 1000
        # WAL bytes and buffer pages per pair: what a rating costs the disk (its reads were hits or disk reads).
        after = _server_counters()
        for i, key in enumerate(("wal_b", "blks_hit", "blks_read")):
            EXTRA[key] = (after[i] - server[i]) / claims
        _remove_pairs(campaign, after=first)
        return claims

    return run


def _last_assignment_id() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(max(id), 0) FROM annotation_assignment")
        return int(cursor.fetchone()[0])


def _server_counters() -> tuple[float, float, float]:
    """Return the WAL position in bytes and the database's buffer hits and reads (this connection's statistics
    flushed first, so they count up to now)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")
        cursor.execute(
            """SELECT pg_current_wal_insert_lsn() - '0/0'::pg_lsn, blks_hit, blks_read FROM pg_stat_database
               WHERE datname = current_database()"""
        )
        wal, hit, read = cursor.fetchone()
    return float(wal), float(hit), float(read)


def _backend_cpu_seconds() -> float:
    """Return the CPU seconds of this connection's PostgreSQL backend; nan when the server is not on this machine."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _remove_pairs(campaign: Campaign, *, after: int) -> None:
    """Delete the ratings and assignments made since assignment `after` and give their slots and counts back."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            """WITH gone AS (DELETE FROM annotation_rating WHERE assignment_id > %s RETURNING rater_id)
               UPDATE annotation_annotatorstatus s SET rated_count = s.rated_count - n.k
               FROM (SELECT rater_id, count(*) AS k FROM gone GROUP BY rater_id) n
               WHERE s.rater_id = n.rater_id AND s.campaign_id = %s""",
            [after, campaign.pk],
        )
        cursor.execute(
            """WITH gone AS (DELETE FROM annotation_assignment WHERE id > %s AND state IN ('leased', 'rated')
                             RETURNING comparison_id)
               UPDATE annotation_comparison c SET filled = c.filled - n.k
               FROM (SELECT comparison_id, count(*) AS k FROM gone GROUP BY comparison_id) n
               WHERE c.id = n.comparison_id""",
            [after],
        )
        cursor.execute("DELETE FROM annotation_assignment WHERE id > %s", [after])
    AnnotatorStatus.objects.filter(campaign=campaign, gold_answered__gt=0).update(
        gold_answered=0, gold_correct=0, paused=False, paused_reason="", paused_at=None
    )


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


ADMIN_URLS = {
    "admin_campaigns": "/admin/annotation/campaign/",
    "admin_campaign": "/admin/annotation/campaign/{pk}/change/",
    "admin_ratings": "/admin/annotation/rating/?comparison__campaign__id__exact={pk}",
    "admin_ratings_small": "/admin/annotation/rating/?comparison__campaign__id__exact={pk}",
    "admin_ratings_small_before": "/admin/annotation/rating/?comparison__campaign__id__exact={pk}",
    "admin_comparisons": "/admin/annotation/comparison/?campaign__id__exact={pk}",
}


def admin_page(name: str, campaign: Campaign) -> Callable[[], int]:
    """Return a GET of one admin page of the campaign (of the small campaign for *_small), as a superuser; it
    returns the bytes of HTML. The Django admin drops a filter with a single choice, so a campaign's lists are only
    filtered in a database that holds a second campaign (the small one)."""
    from django.test import Client, RequestFactory

    user, created = User.objects.get_or_create(username="scale-admin", defaults={"is_superuser": True})
    if created or not user.is_staff:
        user.is_staff = user.is_superuser = True
        user.save()
    if "_small" in name:
        campaign = Campaign.objects.get(slug=f"bench-scale-{SMALL}")
    url = ADMIN_URLS[name].format(pk=campaign.pk)
    if name.endswith("_before"):
        view = before_ratings_changelist()
        factory = RequestFactory()

        def get() -> int:
            request = factory.get(url, SERVER_NAME="localhost")
            request.user = user
            response = view(request)
            response.render()
            return len(response.content)

    else:
        client = Client()
        client.force_login(user)

        def get() -> int:
            response = client.get(url, SERVER_NAME="localhost")
            if response.status_code != 200:
                raise SystemExit(f"{url} answered {response.status_code}")
            return len(response.content)

    get()  # the first request of a process compiles templates and fills caches: time the second
    return get


def before_ratings_changelist() -> Callable[..., Any]:
    """Return the ratings changelist as it was before its campaign filter bounded the comparison ids (commit
    9c082bc): Django's related-field filter, and the count of the whole table beside the campaign's."""
    from django.contrib import admin

    from annotation.admin import RatingAdmin
    from annotation.admin_scoping import ScopedRelatedFieldListFilter

    class BeforeRatingAdmin(RatingAdmin):
        list_filter = ["source", "verdict", ("comparison__campaign", ScopedRelatedFieldListFilter)]
        show_full_result_count = True

    site = admin.AdminSite(name="admin")
    model_admin = BeforeRatingAdmin(Rating, site)
    return model_admin.changelist_view


def run_child(name: str, slug: str, claims: int) -> None:
    """Child process: time one operation and print rows, seconds, base and peak RSS (and EXTRA) as JSON."""
    campaign = Campaign.objects.get(slug=slug)
    with tempfile.TemporaryDirectory() as out:
        call = operation(name, campaign, out, claims=claims)
        base = vm_hwm_mb()
        started = time.perf_counter()
        rows = call()
        seconds = time.perf_counter() - started
    print(json.dumps({"op": name, "rows": rows, "seconds": seconds, "base_mb": base, "peak_mb": vm_hwm_mb(), **EXTRA}))


def disk_per_rating() -> tuple[int, float, float]:
    """Return the ratings in annotation_rating and the bytes per rating of the table and of its indexes."""
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT (SELECT count(*) FROM annotation_rating), pg_table_size('annotation_rating'),
                      pg_indexes_size('annotation_rating')"""
        )
        count, table, indexes = cursor.fetchone()
    return int(count), table / max(count, 1), indexes / max(count, 1)


def disk_of_database() -> dict[str, Any]:
    """Return the disk per rating of the ratings table and its indexes, and of the whole database."""
    count, table, indexes = disk_per_rating()
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT pg_database_size(current_database()),
                      pg_total_relation_size('annotation_assignment'), pg_total_relation_size('annotation_comparison'),
                      pg_total_relation_size('annotation_output') + pg_total_relation_size('annotation_prompt')"""
        )
        database, assignments, comparisons, texts = cursor.fetchone()
    return {
        "ratings": count,
        "table_b": table,
        "indexes_b": indexes,
        "database_b": database / max(count, 1),
        "database_gb": database / 1e9,
        "assignments_gb": assignments / 1e9,
        "comparisons_gb": comparisons / 1e9,
        "texts_gb": texts / 1e9,
    }


def database_url(base: str, n_ratings: int) -> str:
    """Return the URL of size n_ratings's own database: the base URL's name with _<n_ratings>."""
    parsed = urlparse(base)
    return urlunparse(parsed._replace(path=f"{parsed.path.rstrip('/')}_{n_ratings}"))


def create_database(url: str) -> None:
    """Create the database of url when missing and migrate it."""
    import psycopg

    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    with psycopg.connect(urlunparse(parsed._replace(path="/postgres")), autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is None:
            conn.execute(f'CREATE DATABASE "{name}"')
    env = {**os.environ, "DATABASE_URL": url}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=REPO, env=env, check=True)


def drop_database(url: str) -> None:
    import psycopg

    parsed = urlparse(url)
    with psycopg.connect(urlunparse(parsed._replace(path="/postgres")), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{parsed.path.lstrip("/")}" WITH (FORCE)')


def load() -> str:
    return "load " + " ".join(f"{x:.1f}" for x in os.getloadavg())


def measure_size(args: argparse.Namespace, n_ratings: int, url: str) -> dict[str, dict[str, Any] | None]:
    """Seed (or reuse) size n_ratings's campaign in its database and run every operation on it in children."""
    os.environ["DATABASE_URL"] = url
    create_database(url)
    models = args.models or (1000 if n_ratings >= 10_000_000 else 100)
    prompts = args.prompts or max(n_ratings // 10, 10)
    spec = [str(n_ratings), str(models), str(prompts), str(args.judges), str(args.humans), str(int(args.fresh))]
    seeded = child(["--child", "seed", *spec])
    if seeded is None:
        raise SystemExit(f"the seed of {n_ratings:,} ratings failed")
    small = child(["--child", "seed", str(SMALL), "100", str(SMALL // 10), str(args.judges), str(args.humans), "0"])
    if small is None:
        raise SystemExit(f"the seed of the small campaign beside {n_ratings:,} ratings failed")
    print(
        f"{n_ratings:,} ratings, {prompts:,} prompts, {models} models, {args.judges} judges, {args.humans} humans "
        f"in {url.rsplit('/', 1)[1]} (seed {seeded['seconds']:.0f} s, 0 if kept; {load()})",
        flush=True,
    )
    figures: dict[str, dict[str, Any] | None] = {}
    for name in args.only:
        result = child(["--claims", str(args.claims), "--child", name, seeded["slug"]])
        figures[name] = result
        print(f"  {name:<18} {cell(name, result)}  ({load()})", flush=True)
    disk = child(["--child", "disk", seeded["slug"]])
    figures["disk"] = disk
    print(f"  {'disk':<18} {cell('disk', disk)}", flush=True)
    return figures


def child(args: list[str], *, attempts: int = 2) -> dict[str, Any] | None:
    """Run this script as a child with args; return its JSON line, or None when it failed `attempts` times.

    Each failure is said on stderr. A second attempt, because a shared checkout's compiled kernels may be rebuilt
    under a running child (a SIGSEGV as it loads them); the seed is one transaction, so a failed one left nothing.
    """
    for _ in range(attempts):
        proc = subprocess.Popen([sys.executable, __file__, *args], stdout=subprocess.PIPE, text=True)
        output, _ = proc.communicate()
        if proc.returncode == 0:
            result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
            return result
        print(f"child {args} failed with status {proc.returncode}", file=sys.stderr, flush=True)
    return None


def cell(name: str, r: dict[str, Any] | None) -> str:
    """Return one operation's figures at one size, compactly."""
    if r is None:
        return "failed"
    if name == "disk":
        return (
            f"{r['table_b']:.0f}+{r['indexes_b']:.0f} B/rating (table+indexes); database {r['database_gb']:.2f} GB "
            f"= {r['database_b']:.0f} B/rating"
        )
    if name == "claim":
        return (
            f"p50 {r['p50_ms']:.1f} ms p95 {r['p95_ms']:.1f} ms, CPU {r['client_cpu_ms']:.1f}+{r['db_cpu_ms']:.1f} ms,"
            f" WAL {r.get('wal_b', 0):,.0f} B, {r.get('blks_hit', 0):,.0f} hits {r.get('blks_read', 0):,.1f} reads"
        )
    if name.startswith("admin_"):
        return f"{r['seconds']:.2f} s ({r['rows'] // 1000} kB)"
    rate = r["rows"] / r["seconds"] if r["seconds"] else float("inf")
    return f"{r['seconds']:.2f} s {rate:,.0f} rows/s {r['peak_mb']:.0f} MB"


def ratio(name: str, small: dict[str, Any] | None, large: dict[str, Any] | None) -> str:
    """Return the large size's cost over the small one's: per pair for claim, bytes per rating for disk, else time."""
    if small is None or large is None:
        return ""
    if name == "claim":
        cost = ("p50_ms", "p95_ms", "client_cpu_ms", "db_cpu_ms")
        return " ".join(f"{k.removesuffix('_ms')} {large[k] / small[k]:.2f}x" for k in cost if small[k])
    if name == "disk":
        return f"{(large['table_b'] + large['indexes_b']) / (small['table_b'] + small['indexes_b']):.2f}x per rating"
    return f"{large['seconds'] / small['seconds']:.1f}x time" if small["seconds"] else ""


def child_main(args: argparse.Namespace) -> None:
    kind, *rest = args.child
    if kind == "seed":
        n_ratings, models, prompts, judges, humans, fresh = map(int, rest)
        started = time.perf_counter()
        kept = Campaign.objects.filter(slug=f"bench-scale-{n_ratings}").exists() and not fresh
        campaign = seed(n_ratings, models=models, prompts=prompts, judges=judges, humans=humans, fresh=bool(fresh))
        seconds = 0.0 if kept else time.perf_counter() - started
        print(json.dumps({"slug": campaign.slug, "seconds": seconds}))
    elif kind == "disk":
        print(json.dumps(disk_of_database()))
    else:
        run_child(kind, rest[0], args.claims)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ratings", default="1000000", help="Sizes, comma-separated (e.g. 1000000,10000000).")
    parser.add_argument("--models", type=int, default=None, help="default: 1,000 from 10M ratings, else 100")
    parser.add_argument("--prompts", type=int, default=None, help="default: ratings / 10")
    parser.add_argument("--judges", type=int, default=2)
    parser.add_argument("--humans", type=int, default=200)
    parser.add_argument("--claims", type=int, default=CLAIMS, help="Timed claim + rating pairs.")
    parser.add_argument("--fresh", action="store_true", help="Re-seed even if the campaign exists.")
    parser.add_argument("--keep", action="store_true", help="Keep the databases (else dropped at the end).")
    parser.add_argument("--only", nargs="+", choices=OPERATIONS, default=list(OPERATIONS))
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(args)
        return
    sizes = sorted(int(n.replace("_", "")) for n in args.ratings.split(","))
    if sizes[0] < 100 or args.claims < 1:
        raise SystemExit("--ratings must be at least 100 and --claims at least 1")
    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/evalplatform")
    os.environ["EVALPLATFORM_CELERY_DIR"] = tempfile.mkdtemp(prefix="bench-scale-celery-")  # the refreshes it queues
    figures = {}
    try:
        for n in sizes:
            figures[n] = measure_size(args, n, database_url(base, n))
    finally:
        if not args.keep:
            for n in sizes:
                drop_database(database_url(base, n))
    print(f"\n{'operation':<18} " + " | ".join(f"{n:,} ratings" for n in sizes) + " | ratio")
    for name in [*args.only, "disk"]:
        cells = " | ".join(cell(name, figures[n][name]) for n in sizes)
        print(f"{name:<18} {cells} | {ratio(name, figures[sizes[0]][name], figures[sizes[-1]][name])}")


if __name__ == "__main__":
    main()
