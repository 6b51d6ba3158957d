"""Benchmark: refresh a campaign leaderboard over N ratings (default 1,000,000; --quick: 100,000).

Ours: a full recount (one SQL aggregation GROUP BY rater, models, order and outcome, stored as the campaign's
count snapshot) and a Bradley-Terry fit on the per-pair counts; then the refresh a request does after 1,000 new
ratings arrive (only the ratings past the snapshot are aggregated); then the same with online Elo, which must
replay every rating in order (left to the background refresh for large campaigns). Baseline, in the same run:
the naive way, loading every rating through the ORM (``select_related`` of both outputs) into (model_a, model_b,
winner) battles in Python and fitting those, timed on a sample of --sample ratings and extrapolated per rating.

    DATABASE_URL=postgres://... python bench/bench_leaderboard.py [--quick] [--ratings N]
Target (issue 6): a campaign with 1,000,000 ratings refreshes within a second.
"""

from __future__ import annotations

import argparse
import time

from bench_export import seed  # also sets Django up
from django.core.management import call_command
from django.db import connection

from annotation.models import Campaign, Rater, Rating
from results.counts import rater_counts
from results.leaderboards import compute_leaderboard
from results.raters import RaterSelection
from scoring import bradley_terry


def naive(campaign_id: int, sample: int) -> tuple[float, int]:
    """Return the seconds to load sample ratings as ORM instances, turn them into battles and fit them."""
    started = time.perf_counter()
    battles = []
    ratings = (
        Rating.objects.filter(comparison__campaign_id=campaign_id)
        .select_related("comparison__output_a", "comparison__output_b")
        .order_by("id")[:sample]
    )
    for r in ratings:
        a, b = r.comparison.output_a, r.comparison.output_b
        left, right = (a, b) if r.left_output_id in (None, a.pk) else (b, a)
        winner = {"tie": "tie", "both_bad": "tie (bothbad)"}.get(r.verdict) or (
            "model_a" if r.winner_id == left.pk else "model_b"
        )
        battles.append((left.model_name or "", right.model_name or "", winner))
    bradley_terry(battles)
    return time.perf_counter() - started, len(battles)


def add_ratings(campaign: Campaign, k: int) -> Rater:
    """Add k ratings by a new rater, as if they had just arrived; return the rater."""
    rater = Rater.objects.create(name=f"bench-late-{Rater.objects.count()}", kind="human")
    with connection.cursor() as cursor:
        cursor.execute(
            """INSERT INTO annotation_rating (comparison_id, rater_id, rater_kind, source, verdict, winner_id,
                                              left_output_id, rationale, metadata, created_at)
               SELECT id, %s, 'human', 'import', 'win', output_a_id, output_b_id, '', '{}', now()
               FROM annotation_comparison WHERE campaign_id = %s ORDER BY id LIMIT %s""",
            [rater.pk, campaign.pk, k],
        )
    return rater


def best_of(runs: int, function: object) -> float:
    """Return the fastest of several timed calls."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        function()  # type: ignore[operator]
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ratings", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="100,000 ratings, baseline sample 10,000.")
    parser.add_argument("--sample", type=int, default=50_000)
    args = parser.parse_args()
    n, sample = (100_000, 10_000) if args.quick else (args.ratings, args.sample)
    call_command("migrate", verbosity=0)  # the bench database may predate newer migrations
    campaign = seed(n)
    everyone = RaterSelection()
    base_s, base_n = naive(campaign.pk, sample)
    base_total = base_s / base_n * n
    print(
        f"baseline  ORM instances -> battles -> BT: {base_n} ratings in {base_s:.2f} s "
        f"(extrapolated to {n:,}: {base_total:.1f} s)"
    )
    recount = best_of(1, lambda: rater_counts(campaign, full=True))
    board = compute_leaderboard(campaign, everyone, with_elo=False)
    print(
        f"ours      full recount (SQL aggregation): {recount:.3f} s for {board['n_battles']:,} battles "
        f"({base_total / recount:.0f}x baseline)"
    )
    late = add_ratings(campaign, 1000)
    started = time.perf_counter()
    board = compute_leaderboard(campaign, everyone, with_elo=False)
    fresh = time.perf_counter() - started
    print(
        f"ours      refresh after 1,000 new ratings (increment + BT on counts): {fresh:.3f} s "
        f"for {board['n_battles']:,} battles ({base_total / fresh:.0f}x baseline)"
    )
    bt_boot = best_of(1, lambda: compute_leaderboard(campaign, everyone, bootstrap=100, with_elo=False))
    print(f"ours      same with 100 bootstrap rounds: {bt_boot:.3f} s")
    elo = best_of(1, lambda: compute_leaderboard(campaign, everyone, with_elo=True))
    print(f"ours      with online Elo (replays every rating in order): {elo:.3f} s")
    Rating.objects.filter(rater=late).delete()  # leave the seeded campaign as it was for the next run
    late.delete()


if __name__ == "__main__":
    main()
