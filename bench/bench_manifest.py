"""Benchmark: a reproducibility manifest's ratings digest (SHA-256 streamed by COPY, plus the sketch) on N ratings.

Seeds (or reuses) bench_export.py's campaign ``bench-ratings-N`` and digests its ratings in a child process, so
that the peak RSS printed is the digest's own; then a second digest (the one reproduce takes) for the timing of a
warm cache. Baseline: the same rows read into Python as one list (``fetchall``), which is what bounded memory avoids.

    DATABASE_URL=postgres://... python bench/bench_manifest.py [--ratings N] [--fresh]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_export import child, seed  # noqa: E402  (sets Django up)
from django.db import connection  # noqa: E402

from annotation.models import Campaign  # noqa: E402


def run_child(slug: str, mode: str) -> None:
    """Child process: digest (or, as the baseline, fetch every row of) the campaign's ratings; print JSON."""
    from results.manifest import ROW_SQL, ratings_digest
    from results.raters import RaterSelection
    from results.selectors import ratings_from

    campaign = Campaign.objects.get(slug=slug)
    started = time.perf_counter()
    if mode == "digest":
        count = ratings_digest(campaign, RaterSelection())["count"]
    else:
        source, params = ratings_from(campaign, RaterSelection(), rater=False)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {ROW_SQL} {source} ORDER BY r.id", params)
            count = len(cursor.fetchall())
    print(json.dumps({"ratings": count, "seconds": time.perf_counter() - started}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ratings", type=int, default=1_000_000)
    parser.add_argument("--fresh", action="store_true", help="Re-seed even if the campaign exists.")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "SLUG"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_child(args.child[1], args.child[0])
        return
    slug = seed(args.ratings, fresh=args.fresh).slug
    for mode in ("digest", "digest", "fetchall"):
        result, rss = child(["--child", mode, slug], script=__file__)
        rate = result["ratings"] / result["seconds"]
        print(
            f"{mode:>9}: {result['ratings']:,} ratings in {result['seconds']:.2f} s ({rate:,.0f}/s), "
            f"peak RSS {rss:.0f} MB"
        )


if __name__ == "__main__":
    main()
