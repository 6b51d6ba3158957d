"""Benchmark ``python -m scoring`` against a FastChat Bradley-Terry pipeline, and Krippendorff's alpha.

Run from the repository root::

    python bench/bench_scoring.py            # 1,000,000 battles, 100 models, 1,000 bootstrap rounds
    python bench/bench_scoring.py --quick    # 100,000 battles, 30 models, 200 rounds
    python bench/bench_scoring.py --shape realistic --battles 200000 --array   # Arena-shaped JSON array

``--shape realistic`` writes what FastChat's ``clean_battle`` files look like (``bench/arena_logs.py``: every key,
nested ``conv_metadata``/``dedup_tag``/``category_tag``, some conversations, long-tailed popularity among 150 models,
most pairs with 1-10 votes); ``--array`` writes one JSON array instead of JSON Lines (the baseline then reads it
with ``pandas.read_json`` as ``elo_analysis.py --clean-battle-file`` does).

The baseline follows the public description of Chatbot Arena's pipeline (FastChat's ``compute_bt`` and
``compute_bootstrap_bt``): ``pandas.read_json(lines=True)``, unique (model_a, model_b, outcome) rows weighted by
their counts, L-BFGS-B on the Bradley-Terry log-likelihood (ties as half a win, ratings in units of 400 points),
and a 100-round multinomial bootstrap over the unique rows whose fits run in a pool of ``os.cpu_count()``
processes. It is written here from that description and runs inside this process, so its pandas and scipy
imports are not timed (a separate line prints them and the speed-up with them counted); ours is timed as the
command a user runs, from interpreter start-up to the printed JSON, with ``scoring``'s bytecode compiled first (as
an installation does; ``PYTHONDONTWRITEBYTECODE`` would otherwise have every run compile it). Both are run
``--runs`` times (default 3), alternately, and each reports the run with the median wall time.

Both wall-clock and CPU time are printed (the baseline's CPU time includes its pool's workers), each with the
one-minute load average when it ran: on a shared machine the wall clock also measures the neighbours. The
per-round line separates the bootstrap from the fixed costs (start-up, reading the file).
"""

from __future__ import annotations

import argparse
import compileall
import json
import math
import multiprocessing
import os
import resource
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

# Both pipelines work on small matrices; keep BLAS single-threaded so that neither burns CPU spinning threads.
for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy.optimize import minimize  # noqa: E402
from scipy.special import expit  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from arena_logs import write_realistic, write_uniform  # noqa: E402  (this script's directory)

from scoring import compiled, krippendorff_alpha, rating_table_from_matrix  # noqa: E402

SCALE = 400.0 / math.log(10.0)
BASELINE_BOOT_SECONDS = [0.0]


def make_battles(path: Path, n_battles: int, n_models: int, seed: int) -> None:
    """Write synthetic Arena battles (about 10% ties) as JSON Lines, in blocks to keep memory small."""
    rng = np.random.default_rng(seed)
    strength = rng.normal(0.0, 0.8, n_models)
    names = np.array([f"model-{i:03d}" for i in range(n_models)])
    labels = np.array(["model_a", "model_b", "tie", "tie (bothbad)"])
    with path.open("w") as handle:
        for start in range(0, n_battles, 100_000):
            size = min(100_000, n_battles - start)
            a = rng.integers(0, n_models, size)
            b = (a + rng.integers(1, n_models, size)) % n_models
            p_a = expit(strength[a] - strength[b]) * 0.9
            u = rng.random(size)
            outcome = np.where(u < p_a, 0, np.where(u < 0.9, 1, np.where(u < 0.97, 2, 3)))
            rows = zip(names[a].tolist(), names[b].tolist(), labels[outcome].tolist(), strict=True)
            handle.write("".join(f'{{"model_a": "{x}", "model_b": "{y}", "winner": "{w}"}}\n' for x, y, w in rows))


def read_frame(path: Path) -> pd.DataFrame:
    """Read a battle log as FastChat does: ``pandas.read_json`` (JSON Lines or, for a .json file, an array)."""
    return pd.read_json(path, lines=path.suffix == ".jsonl")


def run_ours(path: Path, rounds: int) -> tuple[float, float, float, dict[str, Any]]:
    """Time ``python -m scoring rank`` as a subprocess; return wall s, CPU s, peak RSS (MB) and its JSON.

    Peak RSS comes from GNU time when available: RUSAGE_CHILDREN would also count the pages a forked child
    inherits from this (larger) benchmark process before it execs.
    """
    command = [
        sys.executable,
        "-m",
        "scoring",
        "rank",
        str(path),
        "--bootstrap",
        str(rounds),
        "--seed",
        "0",
        "--format",
        "json",
    ]
    gnu_time = Path("/usr/bin/time")
    prefix = [str(gnu_time), "-f", "%M"] if gnu_time.exists() else []
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(prefix + command, cwd=REPO_ROOT, capture_output=True, check=True, text=True)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    peak_kb = int(done.stderr.strip().splitlines()[-1]) if prefix else after.ru_maxrss
    peak_mb = peak_kb / 1024
    return seconds, cpu, peak_mb, json.loads(done.stdout)


def _bt_loss(ratings: np.ndarray, pairs: np.ndarray, outcomes: np.ndarray, weights: np.ndarray, alpha: float) -> Any:
    """Return the weighted BT negative log-likelihood and its gradient (baseline; ratings in units of 400 points)."""
    logits = alpha * (ratings[pairs[:, 0]] - ratings[pairs[:, 1]])
    probs = expit(logits)
    loss = -((np.log(probs) * outcomes + np.log(1.0 - probs) * (1.0 - outcomes)) * weights).sum()
    per_row = -alpha * (outcomes - probs) * weights
    grad = np.zeros_like(ratings)
    np.add.at(grad, pairs, per_row[:, None] * np.array([1.0, -1.0]))
    return loss, grad


def _baseline_fit(weights: np.ndarray, pairs: np.ndarray, outcomes: np.ndarray, n_models: int) -> np.ndarray:
    """Fit BT by L-BFGS-B from zero (baseline); return Arena ratings centred at 1000."""
    result = minimize(
        _bt_loss,
        np.zeros(n_models),
        args=(pairs, outcomes, weights, math.log(10.0)),
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": 100, "gtol": 1e-6},
    )
    x: np.ndarray = result.x - result.x.mean()
    return 1000.0 + 400.0 * x


def run_baseline(path: Path, rounds: int, seed: int) -> tuple[float, float, list[str], np.ndarray]:
    """Run the FastChat pipeline; return wall and CPU seconds (its pool's workers included), models, point ratings.

    As FastChat's ``compute_bt`` / ``compute_bootstrap_bt``: unique (a, b, outcome) rows weighted by their counts,
    ratings in units of 400 points with logits ln(10) * (r_a - r_b), and bootstrap weights (multinomial draws
    divided by the number of battles) fitted in a process pool of os.cpu_count() workers.
    """
    start, cpu_start = time.perf_counter(), time.process_time()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    df = read_frame(path)
    codes, models = pd.factorize(pd.concat([df["model_a"], df["model_b"]]))
    n = len(df)
    schedule = np.ones((n, 3), dtype=np.int32)
    schedule[:, 0], schedule[:, 1] = codes[:n], codes[n:]
    schedule[(df["winner"] == "model_a").to_numpy(), 2] = 2
    schedule[(df["winner"] == "model_b").to_numpy(), 2] = 0
    unique, counts = np.unique(schedule, axis=0, return_counts=True)
    pairs, outcomes = unique[:, :2], unique[:, 2] / 2.0
    point = _baseline_fit(counts.astype(np.float64), pairs, outcomes, len(models))
    boot_start = time.perf_counter()
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(n, counts / counts.sum(), size=rounds) / n
    fit = partial(_baseline_fit, pairs=pairs, outcomes=outcomes, n_models=len(models))
    with multiprocessing.get_context("fork").Pool(os.cpu_count()) as pool:
        boot = np.array(list(pool.imap_unordered(fit, draws)))
    np.quantile(boot, [0.025, 0.975], axis=0)
    BASELINE_BOOT_SECONDS[0] = time.perf_counter() - boot_start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    pool_cpu = (after.ru_utime - children.ru_utime) + (after.ru_stime - children.ru_stime)
    return time.perf_counter() - start, time.process_time() - cpu_start + pool_cpu, list(models), point


def baseline_imports() -> float:
    """Return the wall seconds a fresh interpreter takes to import what the baseline uses."""
    start = time.perf_counter()
    code = "import numpy, pandas, scipy.optimize, scipy.special, multiprocessing"
    subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, check=True)
    return time.perf_counter() - start


def exact_ml(path: Path) -> dict[str, float]:
    """Return the exact BT maximum-likelihood ratings by a separate trust-region Newton solve."""
    df = read_frame(path)
    codes, models = pd.factorize(pd.concat([df["model_a"], df["model_b"]]))
    n, m = len(df), len(models)
    won = np.where(df["winner"] == "model_a", 1.0, np.where(df["winner"] == "model_b", 0.0, 0.5))
    wins = np.zeros((m, m))
    np.add.at(wins, (codes[:n], codes[n:]), won)
    np.add.at(wins, (codes[n:], codes[:n]), 1.0 - won)
    total = wins + wins.T

    def negloglik(theta: np.ndarray) -> tuple[float, np.ndarray]:
        d = theta[:, None] - theta[None, :]
        return float(-(wins * -np.logaddexp(0, -d)).sum()), -(wins - total * expit(d)).sum(axis=1)

    def hess(theta: np.ndarray) -> np.ndarray:
        p = expit(theta[:, None] - theta[None, :])
        h: np.ndarray = -total * p * (1 - p)
        np.fill_diagonal(h, -h.sum(axis=1))
        return h + 1.0 / m

    result = minimize(negloglik, np.zeros(m), jac=True, hess=hess, method="trust-exact", options={"gtol": 1e-10})
    x = result.x - result.x.mean()
    return dict(zip(models, 1000.0 + SCALE * x, strict=True))


def bench_alpha(units: int, raters: int, rounds: int, seed: int) -> tuple[float, float]:
    """Time Krippendorff's alpha with a bootstrap on a units x raters matrix with 80% missing ratings."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(1, 6, units)
    matrix = np.where(rng.random((units, raters)) < 0.7, truth[:, None], rng.integers(1, 6, (units, raters)))
    matrix = np.where(rng.random((units, raters)) < 0.8, np.nan, matrix.astype(float))
    start = time.perf_counter()
    table = rating_table_from_matrix(matrix)
    result = krippendorff_alpha(table, level="nominal", bootstrap=rounds, rng=np.random.default_rng(seed))
    return time.perf_counter() - start, result.value


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes for a fast check")
    parser.add_argument("--runs", type=int, default=3, help="runs of each pipeline (the median is reported)")
    parser.add_argument("--shape", choices=("flat", "uniform", "realistic"), default="flat")
    parser.add_argument("--array", action="store_true", help="one JSON array file instead of JSON Lines")
    parser.add_argument("--battles", type=int, default=None, help="number of battles (default 1,000,000)")
    parser.add_argument("--rounds", type=int, default=None, help="our bootstrap rounds (default 1,000)")
    parser.add_argument("--file", type=Path, default=None, help="use this log instead of writing one")
    parser.add_argument("--skip-alpha", action="store_true", help="skip the Krippendorff benchmark")
    args = parser.parse_args()
    n_battles, n_models, rounds = (100_000, 30, 200) if args.quick else (1_000_000, 100, 1000)
    n_battles = args.battles or n_battles
    rounds = args.rounds or rounds
    units = 20_000 if args.quick else 200_000
    with tempfile.TemporaryDirectory() as tmp:
        path = args.file or Path(tmp) / ("battles.json" if args.array else "battles.jsonl")
        if args.file is not None:
            pass
        elif args.shape == "realistic":
            n_models = 150
            write_realistic(path, n_battles, n_models, seed=0, array=args.array)
        elif args.shape == "uniform" or args.array:
            write_uniform(path, n_battles, n_models, seed=0, array=args.array)
        else:
            make_battles(path, n_battles, n_models, seed=0)
        print(
            f"battles: {n_battles:,} ({args.shape} shape, {'JSON array' if path.suffix == '.json' else 'JSON Lines'}),"
            f" file {path.stat().st_size / 1e6:.1f} MB, load {os.getloadavg()[0]:.1f}"
        )
        print(f"compiled kernels: {'built' if compiled.kernels is not None else 'NOT BUILT (numpy twins)'}")
        compileall.compile_dir(REPO_ROOT / "scoring", quiet=1)
        ours_runs, base_runs = [], []
        for _ in range(args.runs):
            ours_runs.append((*run_ours(path, rounds), os.getloadavg()[0]))
            base_runs.append((*run_baseline(path, 100, seed=0), BASELINE_BOOT_SECONDS[0], os.getloadavg()[0]))
        ours_runs.sort(key=lambda run: run[0])
        base_runs.sort(key=lambda run: run[0])
        ours_s, ours_cpu, _, ours, ours_load = ours_runs[len(ours_runs) // 2]
        base_s, base_cpu, models, base_point, base_boot, base_load = base_runs[len(base_runs) // 2]
        print(
            f"ours:     python -m scoring rank --bootstrap {rounds}: {ours_s:7.2f} s wall, {ours_cpu:7.2f} s CPU, "
            f"load {ours_load:.1f}, peak RSS {max(run[2] for run in ours_runs):.0f} MB "
            f"(runs: {', '.join(f'{run[0]:.2f}' for run in ours_runs)} s)"
        )
        print(
            f"baseline: FastChat, 100 bootstrap rounds:            {base_s:7.2f} s wall, {base_cpu:7.2f} s CPU, "
            f"load {base_load:.1f} (runs: {', '.join(f'{run[0]:.2f}' for run in base_runs)} s)"
        )
        print(
            f"speed-up: {base_s / ours_s:.1f}x wall, {base_cpu / ours_cpu:.1f}x CPU "
            f"(ours does {rounds} rounds, the baseline 100)"
        )
        no_boot_s, no_boot_cpu, _, _ = run_ours(path, 0)
        print(
            f"bootstrap: ours {max(ours_s - no_boot_s, 0.0):.2f} s wall for {rounds} rounds, baseline "
            f"{base_boot:.2f} s for 100; ours without bootstrap: {no_boot_s:.2f} s wall, "
            f"{no_boot_cpu:.2f} s CPU (load {os.getloadavg()[0]:.1f})"
        )
        imports = baseline_imports()
        print(
            f"start-up: the baseline's imports (numpy, pandas, scipy) take {imports:.2f} s, not counted above; "
            f"counted, the speed-up is {(base_s + imports) / ours_s:.1f}x wall"
        )
        exact = exact_ml(path)
        mine = {row["model"]: row["rating"] for row in ours["ratings"]}
        diff_ours = max(abs(mine[m] - exact[m]) for m in exact)
        diff_base = max(abs(b - exact[m]) for m, b in zip(models, base_point, strict=True))
        print(f"max |rating - exact ML|: ours {diff_ours:.2e}, baseline {diff_base:.2e} rating points")
    if args.skip_alpha:
        return
    alpha_s, alpha = bench_alpha(units, 20, 1000, seed=0)
    print(f"krippendorff alpha, {units:,} units x 20 raters (80% missing), 1000 rounds: {alpha_s:.2f} s")
    print(f"(alpha = {alpha:.4f})")


if __name__ == "__main__":
    main()
