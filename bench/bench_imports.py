"""Benchmark: wall time and peak RSS of importing the hostile shapes of issue 12 (item 5), each in its own process.

Shapes (generated once into --dir, default /tmp/evalplatform-bench-imports):
  outputs   95 MB of JSON Lines, 1.45M output rows in the realistic shape (145,000 prompts x 10 models, short texts)
  bad-csv   95 MB of CSV where every row is bad (",,," under the outputs header: 4 errors a row)
  long-line one 50 MB JSON line (a single output of 50 MB)
  nested    one JSON line nested 100,000 levels deep (item 7)
  prompts   the outputs limits at once: 200,000 prompts x 7 models = 1.4M rows (95 MB)
  battles   the ratings limit: 50,000 battles, each its own question (prompt, 2 outputs, comparison, rating)

Each run is a child process that imports the file into a fresh campaign, as a dry run (the admin's preview) or for
real, and reports its wall time and peak RSS (getrusage). --baseline REF runs the same children against the code of
a git revision too (extracted with `git archive` into a temporary directory), so before and after come from the
same run on the same machine. A child still running after --cap seconds is killed and reported as "> cap".

    DATABASE_URL=postgres://... python bench/bench_imports.py [--baseline c8c951b] [--cap 300] [--shapes ...]
(a migrated database: the children create a campaign each and delete it afterwards; they run with DJANGO_DEBUG=0)
Target (issue 12, item 5): peak RSS < 300 MB for any accepted upload (the upload limit is 100 MB).
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SHAPES = ("outputs", "bad-csv", "long-line", "nested", "prompts", "battles")
FILE_NAMES = {
    "outputs": "outputs.jsonl",
    "bad-csv": "bad.csv",
    "long-line": "long-line.jsonl",
    "nested": "nested.jsonl",
    "prompts": "prompts.jsonl",
    "battles": "battles.jsonl",
}
MB = 1024 * 1024


def generate(shape: str, directory: Path) -> Path:
    """Write the shape's file once (kept between runs) and return its path."""
    path = directory / FILE_NAMES[shape]
    if path.exists():
        return path
    directory.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    with partial.open("w", encoding="utf-8") as out:
        writers = {"outputs": _outputs, "bad-csv": _bad_csv, "long-line": _long_line, "nested": _nested}
        writers |= {"prompts": _prompts, "battles": _battles}
        writers[shape](out)
    partial.rename(path)
    return path


def _outputs(out: Any) -> None:
    for prompt in range(145_000):
        text = f"Q{prompt}"
        for model in range(10):
            row = {"prompt_id": f"q{prompt}", "prompt": text, "model": f"m{model}", "output": f"A{prompt % 10}"}
            out.write(json.dumps(row, separators=(",", ":")) + "\n")


def _prompts(out: Any) -> None:
    for prompt in range(200_000):
        for model in range(7):
            row = {"prompt_id": f"q{prompt}", "prompt": f"Q{prompt}", "model": f"m{model}", "output": f"A{model}"}
            out.write(json.dumps(row, separators=(",", ":")) + "\n")


def _battles(out: Any) -> None:
    for battle in range(50_000):
        row = {"question_id": f"q{battle}", "model_a": "a", "model_b": "b", "winner": "tie", "judge": f"j{battle % 50}"}
        out.write(json.dumps(row, separators=(",", ":")) + "\n")


def _bad_csv(out: Any) -> None:
    out.write("prompt_id,prompt,model,output\n")
    line = ",,,\n" * 1024
    for _ in range(95 * MB // len(line)):
        out.write(line)


def _long_line(out: Any) -> None:
    out.write('{"prompt_id":"p1","prompt":"Q","model":"m","output":"')
    chunk = "x" * MB
    for _ in range(50):
        out.write(chunk)
    out.write('"}\n')


def _nested(out: Any) -> None:
    out.write('{"prompt_id":"p1","prompt":"Q","model":"m","output":"A","extra":' + "[" * 100_000 + "]" * 100_000)
    out.write("}\n")


def child(path: Path, *, dry_run: bool, code: Path) -> None:
    """Import `path` into a fresh campaign with the code under `code`; print wall seconds, peak RSS and outcome."""
    sys.path.insert(0, str(code))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalplatform.settings")
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.db import connection

    from annotation import importers
    from annotation.models import Campaign

    owner, _ = User.objects.get_or_create(username="bench-imports")
    campaign = Campaign.objects.create(name="bench", slug=f"bench-imports-{os.getpid()}-{time.time_ns()}", owner=owner)
    started = time.perf_counter()
    try:
        # The new code reads from the file; the baseline took the upload's bytes (the admin called upload.read()).
        streams = "source" in inspect.signature(importers.parse_outputs).parameters
        source: Any = path if streams else path.read_bytes()
        if path.name.startswith("battles"):
            plan = importers.parse_battles(path.name, source)
            summary = importers.import_battles(campaign_slug=campaign.slug, plan=plan, owner=owner, dry_run=dry_run)
        else:
            parsed = importers.parse_outputs(path.name, source)
            summary = importers.import_outputs(campaign=campaign, parsed=parsed, dry_run=dry_run)
        outcome = summary.describe()
    except importers.ImportRefused as refused:
        outcome = f"refused: {refused.total:,} errors, first: {refused.lines[0][:100]}"
    except Exception as exc:  # the baseline's answer to some shapes is a crash; report it as the admin would (500)
        outcome = f"crashed (500): {type(exc).__name__}: {str(exc)[:100]}"
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # Reported before the clean-up, which the parent's cap may cut short (deleting 75,000 prompts takes minutes).
    print(json.dumps({"seconds": round(seconds, 1), "peak_mb": round(peak_mb), "outcome": outcome}), flush=True)
    with connection.cursor() as cursor:  # raw SQL: the ORM's cascade would load every row
        for table in ("rating", "comparison"):
            cursor.execute(
                f"DELETE FROM annotation_{table} WHERE {'comparison_' if table == 'rating' else ''}id IN "
                "(SELECT id FROM annotation_comparison WHERE campaign_id = %s)",
                [campaign.pk],
            )
        cursor.execute(
            "DELETE FROM annotation_output WHERE prompt_id IN "
            "(SELECT id FROM annotation_prompt WHERE campaign_id = %s)",
            [campaign.pk],
        )
        cursor.execute("DELETE FROM annotation_prompt WHERE campaign_id = %s", [campaign.pk])
    campaign.delete()


def measure(path: Path, *, dry_run: bool, code: Path, cap: float) -> dict[str, Any]:
    """Run one child process; a child past the cap is killed."""
    command = [sys.executable, __file__, "--child", str(path), "--code", str(code)] + (["--dry-run"] if dry_run else [])
    # As in production: with DEBUG on, Django would keep the SQL of the last 9,000 queries (bulk inserts) in memory.
    env = os.environ | {"DJANGO_DEBUG": "0", "DJANGO_SECRET_KEY": os.environ.get("DJANGO_SECRET_KEY", "bench-" * 8)}
    started = time.perf_counter()
    try:
        # In the code's own directory: a checkout's directory comes first on sys.path once Django is set up.
        done = subprocess.run(command, capture_output=True, text=True, timeout=cap, check=False, cwd=code, env=env)
    except subprocess.TimeoutExpired as expired:
        printed = expired.stdout.decode() if isinstance(expired.stdout, bytes) else (expired.stdout or "")
        if printed.strip():  # the import was done: the clean-up was cut short
            return dict(json.loads(printed.strip().splitlines()[-1]))
        return {"seconds": f"> {cap:.0f}", "peak_mb": "?", "outcome": "killed at the cap"}
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:] or ["?"]
        seconds = round(time.perf_counter() - started, 1)
        return {"seconds": seconds, "peak_mb": "?", "outcome": f"child failed: {tail[0][:100]}"}
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def baseline_tree(ref: str) -> Path:
    """Extract the files of `ref` into a temporary directory (git archive: the repository is left as it is)."""
    target = Path(tempfile.mkdtemp(prefix="bench-imports-baseline-"))
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--code", type=Path, default=ROOT, help=argparse.SUPPRESS)
    parser.add_argument("--dry-run", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "evalplatform-bench-imports")
    parser.add_argument("--baseline", metavar="REF", help="also run the children against this git revision")
    parser.add_argument("--cap", type=float, default=300, help="seconds before a child is killed (default 300)")
    parser.add_argument("--shapes", nargs="+", choices=SHAPES, default=list(SHAPES))
    parser.add_argument("--baseline-only", action="store_true", help="run only the baseline's children")
    parser.add_argument("--no-real", action="store_true", help="only the dry runs (previews)")
    args = parser.parse_args()
    if args.child:
        child(args.child, dry_run=args.dry_run, code=args.code)
        return
    trees = [] if args.baseline_only else [("current", ROOT)]
    if args.baseline:
        trees.insert(0, (f"baseline {args.baseline}", baseline_tree(args.baseline)))
    print(f"{'code':<18} {'shape':<10} {'run':<8} {'seconds':>8} {'peak MB':>8}  outcome", flush=True)
    for shape in args.shapes:
        path = generate(shape, args.dir)
        # Only the well-formed shape gets a real import: the others are refused by the preview already.
        runs = [True] if shape in {"bad-csv", "long-line", "nested"} or args.no_real else [True, False]
        for dry_run in runs:
            for label, code in trees:
                result = measure(path, dry_run=dry_run, code=code, cap=args.cap)
                run = "preview" if dry_run else "import"
                print(
                    f"{label:<18} {shape:<10} {run:<8} {result['seconds']!s:>8} {result['peak_mb']!s:>8}  "
                    f"{result['outcome']}",
                    flush=True,
                )
    for _, code in trees:
        if code != ROOT:
            shutil.rmtree(code, ignore_errors=True)


if __name__ == "__main__":
    main()
