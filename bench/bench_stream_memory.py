"""Peak memory and time of ``python -m scoring rank`` on Arena JSON array files of growing size.

Issue 13's target: 20M battles streamed from one JSON array file (FastChat's ``clean_battle`` shape, every key,
long-tailed popularity: ``bench/arena_logs.py``) with peak memory under 500 MB and time linear in the file size.
Each size is written once and kept in ``--dir`` (a 20M-battle file is about 32 GB): ``--base`` battles are generated
(the slow part) and larger files repeat that block's elements, so their counts are the base's times a whole number;
the scanner's work per byte is the same. Each file is ranked in a child process that reports its own peak resident
memory (``VmHWM`` of /proc/self/status: getrusage's figure for a child would include the parent's pages it forked
from).

    python bench/bench_stream_memory.py --sizes 2000000,20000000 --dir /work/bench-data
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TARGET_MB = 500


def _arena_logs() -> Any:
    spec = importlib.util.spec_from_file_location("arena_logs", HERE / "arena_logs.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def ensure_file(directory: Path, battles: int, base: int) -> Path:
    """Return the array file of ``battles`` realistic battles, writing it first if absent.

    ``battles`` up to ``base`` are generated; more must be a multiple of ``base`` and repeat the base file's body.
    """
    path = directory / f"arena-realistic-{battles}.json"
    if path.exists():
        return path
    started = time.perf_counter()
    partial = path.with_suffix(".partial")
    if battles <= base:
        _arena_logs().write_realistic(partial, battles, array=True)
    else:
        if battles % base:
            raise SystemExit(f"{battles:,} is not a multiple of --base {base:,}")
        body = ensure_file(directory, base, base).read_text(encoding="utf-8").strip()[1:-1].strip("\n")
        with partial.open("w", encoding="utf-8") as out:
            out.write("[\n" + body)
            for _ in range(battles // base - 1):
                out.write(",\n" + body)
            out.write("\n]\n")
    partial.rename(path)
    print(f"wrote {path} ({path.stat().st_size / 1e9:.2f} GB) in {time.perf_counter() - started:.0f} s", flush=True)
    return path


CHILD = """
import runpy, sys
sys.argv = ["scoring", *sys.argv[1:]]
try:
    runpy.run_module("scoring", run_name="__main__")
finally:
    peak = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:"))
    print(int(peak.split()[1]) / 1024, file=sys.stderr)
"""


def rank(path: Path, rounds: int) -> tuple[float, float]:
    """Return (seconds, peak MB) of ranking the file in a child process."""
    started = time.perf_counter()
    command = [sys.executable, "-c", CHILD, "rank", str(path), "--bootstrap", str(rounds), "--seed", "1"]
    done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=HERE.parent)
    seconds = time.perf_counter() - started
    lines = done.stderr.strip().splitlines()
    if done.returncode not in (0, None) and not lines:
        raise SystemExit(f"rank failed: {done.stderr}")
    return seconds, float(lines[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="2000000,20000000", help="battles per file, comma-separated, increasing")
    parser.add_argument("--dir", type=Path, default=Path("/tmp/evalplatform-bench"))
    parser.add_argument("--rounds", type=int, default=100, help="bootstrap rounds")
    parser.add_argument("--base", type=int, default=500_000, help="battles generated; larger files repeat them")
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    sizes = sorted(int(size) for size in args.sizes.split(","))
    results = []
    for battles in sizes:
        path = ensure_file(args.dir, battles, args.base)
        seconds, peak = rank(path, args.rounds)
        gigabytes = path.stat().st_size / 1e9
        results.append((battles, gigabytes, seconds, peak))
        print(
            f"{battles:>11,} battles  {gigabytes:6.2f} GB  {seconds:7.1f} s  {seconds / gigabytes:6.1f} s/GB  "
            f"peak {peak:6.0f} MB",
            flush=True,
        )
    largest = results[-1]
    verdict = "met" if largest[3] < TARGET_MB else "NOT met"
    print(f"target: peak under {TARGET_MB} MB at {largest[0]:,} battles: {verdict}")
    if len(results) > 1:
        first = results[0]
        ratio = (largest[2] / largest[1]) / (first[2] / first[1])
        print(f"time per GB, largest / smallest: {ratio:.2f} (1.00 is linear)")


if __name__ == "__main__":
    main()
