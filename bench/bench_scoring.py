"""Benchmark ``python -m scoring`` against a FastChat-style Bradley-Terry pipeline, and Krippendorff's alpha.

Run from the repository root::

    python bench/bench_scoring.py            # 1,000,000 battles, 100 models, 1,000 bootstrap rounds
    python bench/bench_scoring.py --quick    # 100,000 battles, 30 models, 200 rounds

The baseline follows the public description of Chatbot Arena's pipeline (FastChat / lmarena notebooks):
``pandas.read_json(lines=True)``, unique (model_a, model_b, outcome) rows weighted by their counts, L-BFGS on
the Bradley-Terry log-likelihood (ties as half a win), and a 100-round multinomial bootstrap over the unique
rows, run single-process in this benchmark's own process. It is written here from that description.

Both wall-clock and CPU time are printed: on a shared machine the wall clock mostly measures the neighbours. The
per-round line separates the bootstrap from the fixed costs (start-up, reading the file): ours draws an exact
multinomial over every (pair, outcome) cell per round, which numpy does at roughly 150 ns per cell.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
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

from scoring import krippendorff_alpha, rating_table_from_matrix  # noqa: E402

SCALE = 400.0 / math.log(10.0)
BASELINE_BOOT_CPU = [0.0]


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


def _bt_loss(ratings: np.ndarray, pairs: np.ndarray, outcomes: np.ndarray, weights: np.ndarray) -> Any:
    """Return the weighted BT negative log-likelihood and its gradient (baseline)."""
    logits = ratings[pairs[:, 0]] - ratings[pairs[:, 1]]
    probs = expit(logits)
    eps = 1e-300
    loss = -(weights * (outcomes * np.log(probs + eps) + (1 - outcomes) * np.log(1 - probs + eps))).sum()
    per_row = -(outcomes - probs) * weights
    grad = np.zeros_like(ratings)
    np.add.at(grad, pairs[:, 0], per_row)
    np.add.at(grad, pairs[:, 1], -per_row)
    return loss, grad


def _baseline_fit(pairs: np.ndarray, outcomes: np.ndarray, weights: np.ndarray, n_models: int) -> np.ndarray:
    """Fit BT by L-BFGS (baseline); return Arena ratings."""
    result = minimize(
        _bt_loss,
        np.zeros(n_models),
        args=(pairs, outcomes, weights),
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": 100, "gtol": 1e-6},
    )
    x: np.ndarray = result.x - result.x.mean()
    return 1000.0 + SCALE * x


def run_baseline(path: Path, rounds: int, seed: int) -> tuple[float, float, list[str], np.ndarray]:
    """Run the FastChat-style pipeline; return wall and CPU seconds, model names and point ratings."""
    start, cpu_start = time.perf_counter(), time.process_time()
    df = pd.read_json(path, lines=True)
    codes, models = pd.factorize(pd.concat([df["model_a"], df["model_b"]]))
    n = len(df)
    schedule = np.ones((n, 3), dtype=np.int64)
    schedule[:, 0], schedule[:, 1] = codes[:n], codes[n:]
    schedule[(df["winner"] == "model_a").to_numpy(), 2] = 2
    schedule[(df["winner"] == "model_b").to_numpy(), 2] = 0
    unique, counts = np.unique(schedule, axis=0, return_counts=True)
    pairs, outcomes = unique[:, :2], unique[:, 2] / 2.0
    point = _baseline_fit(pairs, outcomes, counts.astype(float), len(models))
    boot_start = time.process_time()
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(n, counts / counts.sum(), size=rounds)
    boot = np.array([_baseline_fit(pairs, outcomes, w.astype(float), len(models)) for w in draws])
    np.quantile(boot, [0.025, 0.975], axis=0)
    BASELINE_BOOT_CPU[0] = time.process_time() - boot_start
    return time.perf_counter() - start, time.process_time() - cpu_start, list(models), point


def exact_ml(path: Path) -> dict[str, float]:
    """Return the exact BT maximum-likelihood ratings by a separate trust-region Newton solve."""
    df = pd.read_json(path, lines=True)
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
    args = parser.parse_args()
    n_battles, n_models, rounds = (100_000, 30, 200) if args.quick else (1_000_000, 100, 1000)
    units = 20_000 if args.quick else 200_000
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "battles.jsonl"
        make_battles(path, n_battles, n_models, seed=0)
        print(f"battles: {n_battles:,} among {n_models} models, file {path.stat().st_size / 1e6:.1f} MB")
        ours_s, ours_cpu, peak_mb, ours = run_ours(path, rounds)
        print(
            f"ours:     python -m scoring rank --bootstrap {rounds}: {ours_s:7.2f} s wall, {ours_cpu:7.2f} s CPU, "
            f"peak RSS {peak_mb:.0f} MB"
        )
        _, no_boot_cpu, _, _ = run_ours(path, 0)
        base_s, base_cpu, models, base_point = run_baseline(path, 100, seed=0)
        print(f"baseline: FastChat-style, 100 bootstrap rounds:      {base_s:7.2f} s wall, {base_cpu:7.2f} s CPU")
        print(
            f"speed-up: {base_s / ours_s:.1f}x wall, {base_cpu / ours_cpu:.1f}x CPU "
            f"(ours does {rounds} rounds, the baseline 100; CPU time is the fairer figure on a busy machine)"
        )
        ours_round = (ours_cpu - no_boot_cpu) / rounds * 1000
        base_round = BASELINE_BOOT_CPU[0] / 100 * 1000
        print(
            f"per bootstrap round (CPU): ours {ours_round:.1f} ms, baseline {base_round:.1f} ms "
            f"({base_round / ours_round:.0f}x); ours without bootstrap: {no_boot_cpu:.2f} s CPU"
        )
        exact = exact_ml(path)
        mine = {row["model"]: row["rating"] for row in ours["ratings"]}
        diff_ours = max(abs(mine[m] - exact[m]) for m in exact)
        diff_base = max(abs(b - exact[m]) for m, b in zip(models, base_point, strict=True))
        print(f"max |rating - exact ML|: ours {diff_ours:.2e}, baseline {diff_base:.2e} rating points")
    alpha_s, alpha = bench_alpha(units, 20, 1000, seed=0)
    print(f"krippendorff alpha, {units:,} units x 20 raters (80% missing), 1000 rounds: {alpha_s:.2f} s")
    print(f"(alpha = {alpha:.4f})")


if __name__ == "__main__":
    main()
