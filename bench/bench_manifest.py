"""Benchmark: a reproducibility manifest's ratings digest (SHA-256 streamed by COPY, plus the sketch) on N ratings.

Seeds (or reuses) bench_export.py's campaign ``bench-ratings-N`` and digests its ratings in a child process, so
that the peak RSS printed is the digest's own; then a second digest (the one reproduce takes) for the timing of a
warm cache. Baseline: the same rows read into Python as one list (``fetchall``), which is what bounded memory avoids.

    DATABASE_URL=postgres://... python bench/bench_manifest.py [--ratings N] [--fresh]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_export import seed  # noqa: E402  (sets Django up)
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


def child(args: list[str]) -> tuple[dict[str, float], float]:
    """Run this script as a child with args; return its JSON line and its peak RSS in MB."""
    proc = subprocess.Popen([sys.executable, __file__, *args], stdout=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    output = proc.stdout.read() if proc.stdout else ""
    if status != 0:
        raise SystemExit(f"child {args} failed with status {status}")
    return json.loads(output.strip().splitlines()[-1]), usage.ru_maxrss / 1024


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
        result, rss = child(["--child", mode, slug])
        rate = result["ratings"] / result["seconds"]
        print(
            f"{mode:>9}: {result['ratings']:,} ratings in {result['seconds']:.2f} s ({rate:,.0f}/s), "
            f"peak RSS {rss:.0f} MB"
        )


if __name__ == "__main__":
    main()
