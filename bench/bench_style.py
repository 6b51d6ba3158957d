"""Style control: ours (``python -m scoring rank --style-control``'s path) against FastChat's pipeline.

The baseline is FastChat's ``compute_style_control`` plus ``compute_bootstrap_style_control`` written out here from
its published objective (``fastchat/serve/monitor/rating_systems.py``; the ``fschat`` release on PyPI predates it):
``pandas.read_json``, the features from ``conv_metadata`` per battle, standardised with ``np.mean``/``np.std``,
L-BFGS-B on the per-battle loss with ``np.add.at`` gradients (``maxiter`` 100, ``gtol`` 1e-6, ``reg`` 0.5), and the
bootstrap as battle indices resampled with replacement, fitted over a process pool of ``os.cpu_count()`` workers.
Ours reads the same file with ``scoring.loaders.read_style_battles`` and fits with ``scoring.style``.

    python bench/bench_style.py                      # 1M Arena-shaped battles, 1,000 rounds of ours, 100 of FastChat's
    python bench/bench_style.py --battles 200000 --rounds 200 --baseline-rounds 20
    python bench/bench_style.py --quick              # a smoke run
    python bench/bench_style.py --file /work/bench-data/realistic_1m.jsonl --baseline-read lines   # a log written once

``--baseline-read lines`` gives FastChat's side a leaner reader than its ``pandas.read_json``: ``json.loads`` line by
line keeping only the three battle keys and the eight counts (pandas holds every nested object of every record:
over 18 GB for 1M Arena-shaped records, more than the benchmark machine can spare). It only makes FastChat faster.

Prints the wall seconds of each stage, the ratio (FastChat's pipeline / ours), and the largest difference between
the two point estimates (rating points) and coefficients.
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import sys
import tempfile
import time
from functools import partial
from multiprocessing import Pool
from pathlib import Path
from typing import Any

for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy.optimize import minimize  # noqa: E402
from scipy.special import expit  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from arena_logs import write_realistic  # noqa: E402  (this script's directory)

from scoring import style  # noqa: E402
from scoring.loaders import read_style_battles  # noqa: E402
from scoring.style import style_leaderboard  # noqa: E402

KEYS = ("sum_assistant_{}_tokens", "header_count_{}", "list_count_{}", "bold_count_{}")
ALPHA = math.log(10.0)
OURS: dict[str, Any] = {}  # our point estimate, for the baseline's objective to judge


def baseline_preprocess(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Return FastChat's (matchups, standardised features, outcomes, models) for the battles."""
    codes, models = pd.factorize(pd.concat([frame["model_a"], frame["model_b"]]))
    n = len(frame)
    matchups = np.column_stack([codes[:n], codes[n:]])
    outcomes = np.full(n, 0.5)
    outcomes[(frame["winner"] == "model_a").to_numpy()] = 1.0
    outcomes[(frame["winner"] == "model_b").to_numpy()] = 0.0

    def total(value: Any) -> int:
        return value if isinstance(value, int) else sum(value.values())

    counts = np.zeros((8, n))
    for k, key in enumerate(side_key.format(side) for side in "ab" for side_key in KEYS):
        if "conv_metadata" in frame:
            counts[k] = frame["conv_metadata"].map(lambda meta, key=key: total(meta[key])).to_numpy()
        else:  # read by lean_read: the counts are columns already
            counts[k] = frame[key].to_numpy()
    ratio = (counts[:4] - counts[4:]) / (counts[:4] + counts[4:] + 1.0)
    features = ((ratio - ratio.mean(axis=1)[:, None]) / ratio.std(axis=1)[:, None]).T
    return matchups, np.ascontiguousarray(features), outcomes, list(models)


def baseline_loss(
    params: np.ndarray, n_models: int, matchups: np.ndarray, features: np.ndarray, outcomes: np.ndarray, reg: float
) -> tuple[float, np.ndarray]:
    """Return FastChat's penalised per-battle log loss and its gradient."""
    ratings, beta = params[:n_models], params[n_models:]
    probs = expit(ALPHA * (ratings[matchups[:, 0]] - ratings[matchups[:, 1]]) + features @ beta)
    loss = -(np.log(probs) * outcomes + np.log(1.0 - probs) * (1.0 - outcomes)).sum() + reg / 2 * params @ params
    error = outcomes - probs
    grad = reg * params
    np.add.at(grad[:n_models], matchups, (-ALPHA * error)[:, None] * np.array([1.0, -1.0]))
    grad[n_models:] -= features.T @ error
    return float(loss), grad


def baseline_fit(
    matchups: np.ndarray,
    features: np.ndarray,
    outcomes: np.ndarray,
    n_models: int,
    idxs: np.ndarray | None = None,
    reg: float = 0.5,
) -> np.ndarray:
    """Fit FastChat's contextual Bradley-Terry by L-BFGS-B (its settings), on a resample when ``idxs`` is given."""
    if idxs is not None:
        matchups, features, outcomes = matchups[idxs], features[idxs], outcomes[idxs]
    result = minimize(
        baseline_loss,
        np.zeros(n_models + features.shape[1]),
        args=(n_models, matchups, features, outcomes, reg),
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": 100, "gtol": 1e-6},
    )
    return np.asarray(result.x)


def cpu_seconds() -> float:
    """Return the CPU seconds of this process (all threads) and of its finished children (the pool's workers)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def lean_read(path: Path) -> pd.DataFrame:
    """Return the battles of a JSON Lines log with only the keys FastChat's style control reads (counts summed)."""
    import json

    columns: dict[str, list[Any]] = {name: [] for name in ("model_a", "model_b", "winner")}
    names = [side_key.format(side) for side in "ab" for side_key in KEYS]
    columns.update({name: [] for name in names})
    with path.open("rb") as handle:
        for line in handle:
            record = json.loads(line)
            meta = record["conv_metadata"]
            for name in ("model_a", "model_b", "winner"):
                columns[name].append(record[name])
            for name in names:
                value = meta[name]
                columns[name].append(value if isinstance(value, int) else sum(value.values()))
    return pd.DataFrame(columns)


def run_baseline(path: Path, rounds: int, seed: int, reader: str = "pandas") -> dict[str, Any]:
    """Run FastChat's pipeline: read, point fit, bootstrap over a process pool; return times and the estimates."""
    cpu = cpu_seconds()
    started = time.perf_counter()
    frame = lean_read(path) if reader == "lines" else pd.read_json(path, lines=path.suffix == ".jsonl")
    matchups, features, outcomes, models = baseline_preprocess(frame)
    read = time.perf_counter() - started
    point = baseline_fit(matchups, features, outcomes, len(models))
    fitted = time.perf_counter() - started
    rng = np.random.default_rng(seed)
    boot_idxs = rng.integers(0, len(matchups), size=(rounds, len(matchups)))
    with Pool(os.cpu_count()) as pool:
        boot = pool.map(partial(baseline_fit, matchups, features, outcomes, len(models)), boot_idxs)
    done = time.perf_counter() - started
    cpu = cpu_seconds() - cpu
    ratings = dict(zip(models, 1000 + 400 * point[: len(models)], strict=True))
    mine = np.array([ours_point[model] for model in models]) if (ours_point := OURS.get("ratings")) else None
    if mine is not None:
        ours_params = np.r_[(mine - 1000) / 400, OURS["beta"]]
        OURS["losses"] = tuple(
            baseline_loss(params, len(models), matchups, features, outcomes, 0.5)[0] for params in (ours_params, point)
        )
        # The objective is 0.5-strongly convex (its L2 term): no point is farther from the optimum than |gradient| /
        # 0.5, here FastChat's own gradient at our estimate.
        gradient = baseline_loss(ours_params, len(models), matchups, features, outcomes, 0.5)[1]
        OURS["distance_bound"] = float(400 * np.linalg.norm(gradient) / 0.5)
        OURS["newton_distance"] = newton_distance(models, gradient)
        if len(matchups) <= 250_000:  # beyond, thousands of L-BFGS iterations take longer than the run itself
            close = minimize(
                baseline_loss,
                point,
                args=(len(models), matchups, features, outcomes, 0.5),
                jac=True,
                method="L-BFGS-B",
                options={"maxiter": 20000, "gtol": 1e-9, "ftol": 0.0},
            ).x
            OURS["converged_gap"] = float(np.abs(400 * (close[: len(models)] - ours_params[: len(models)])).max())
    return {
        "read": read,
        "fit": fitted - read,
        "bootstrap": done - fitted,
        "total": done,
        "cpu": cpu,
        "ratings": ratings,
        "beta": point[len(models) :],
        "rounds": len(boot),
    }


def newton_distance(models: list[str], gradient: np.ndarray) -> float:
    """Return the largest rating change of a Newton step from our estimate with FastChat's gradient there.

    Our Hessian at our estimate, FastChat's gradient (its own code): near the optimum the step is the distance to
    it, far tighter than |gradient| / reg, which assumes the flattest direction everywhere.
    """
    battles = OURS["battles"]
    features, _, _ = style.standardise(style.raw_features(battles), battles.weights)
    design = style.build_design(battles, features)
    m = len(battles.models)
    params = np.r_[(np.array([OURS["ratings"][name] for name in battles.models]) - 1000) / 400, OURS["beta"]]
    _, hess = style._terms(design, None, params, design.weights, 0.5)
    where = {name: i for i, name in enumerate(models)}
    ours_order = np.r_[[where[name] for name in battles.models], len(models) + np.arange(len(params) - m)]
    step = np.linalg.solve(hess, gradient[ours_order])
    return float(400 * np.abs(step[:m]).max())


def run_ours(path: Path, rounds: int, seed: int) -> dict[str, Any]:
    """Run ours: read, point fit and bootstrap; return times and the estimates."""
    started, cpu = time.perf_counter(), cpu_seconds()
    battles = read_style_battles(path)
    read, read_cpu = time.perf_counter() - started, cpu_seconds() - cpu
    point = style_leaderboard(battles)
    fitted, fitted_cpu = time.perf_counter() - started, cpu_seconds() - cpu
    board = style_leaderboard(battles, bootstrap=rounds, rng=np.random.default_rng(seed))
    done, done_cpu = time.perf_counter() - started, cpu_seconds() - cpu
    return {
        "read": read,
        "fit": fitted - read,
        "bootstrap": done - fitted - (fitted - read),  # the bootstrapped call refits the point estimate first
        "total": done - (fitted - read),
        "cpu": done_cpu - (fitted_cpu - read_cpu),  # the point fit's CPU counted once
        "ratings": {row.model: row.rating for row in point.ratings},
        "beta": np.array([item.coefficient for item in point.style]),
        "iterations": point.iterations,
        "warnings": board.warnings,
        "board": board,
        "battles": battles,
    }


def main() -> None:
    """Write (or take) an Arena-shaped log and time both pipelines on it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--battles", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=1000, help="our bootstrap rounds")
    parser.add_argument("--baseline-rounds", type=int, default=100, help="FastChat's bootstrap rounds")
    parser.add_argument("--file", type=Path, default=None, help="use this log instead of writing one")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="20,000 battles, 20 and 4 rounds")
    parser.add_argument(
        "--baseline-read",
        choices=("pandas", "lines"),
        default="pandas",
        help="FastChat's reader: pandas.read_json (its own) or a leaner line-by-line json.loads (JSON Lines only)",
    )
    args = parser.parse_args()
    if args.quick:
        args.battles, args.rounds, args.baseline_rounds = 20_000, 20, 4
    with tempfile.TemporaryDirectory() as tmp:
        path = args.file or Path(tmp) / "arena.jsonl"
        if args.file is None:
            write_realistic(path, args.battles, seed=args.seed)
        ours = run_ours(path, args.rounds, args.seed)
        OURS.update(ours)
        theirs = run_baseline(path, args.baseline_rounds, args.seed, args.baseline_read)
    gap = max(abs(ours["ratings"][m] - theirs["ratings"][m]) for m in ours["ratings"])
    print(
        f"battles {sum(row.votes for row in ours['board'].ratings) // 2}, cores {os.cpu_count()}, our rounds "
        f"{args.rounds}, FastChat's {args.baseline_rounds}, FastChat's reader {args.baseline_read}, load average "
        f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}"
    )
    for name, result in (("ours", ours), ("fastchat", theirs)):
        print(
            f"{name:<9} read {result['read']:8.2f} s  fit {result['fit']:7.2f} s  "
            f"bootstrap {result['bootstrap']:8.2f} s  total {result['total']:8.2f} s"
        )
    per_round = (ours["bootstrap"] / max(args.rounds, 1), theirs["bootstrap"] / max(args.baseline_rounds, 1))
    print(f"per bootstrap round: ours {per_round[0]:.3f} s, FastChat's {per_round[1]:.3f} s (wall, its pool)")
    print(
        f"ratio, file to leaderboard (FastChat / ours): {theirs['total'] / ours['total']:.2f}x wall, "
        f"{theirs['cpu'] / ours['cpu']:.2f}x CPU ({theirs['cpu']:.1f} s / {ours['cpu']:.1f} s)"
    )
    fits = (theirs["fit"] + theirs["bootstrap"]) / (ours["fit"] + ours["bootstrap"])
    print(f"ratio, fits only (point + bootstrap): {fits:.2f}x")
    print(
        f"largest rating difference of the point estimates: {gap:.4f} points; coefficients "
        f"{np.abs(ours['beta'] - theirs['beta']).max():.2e}; our Newton iterations {ours['iterations']}"
    )
    loss_ours, loss_theirs = OURS["losses"]
    print(
        f"FastChat's objective at our estimate {loss_ours:.4f}, at its own (L-BFGS, 100 iterations) {loss_theirs:.4f};"
        f" our estimate at most {OURS['distance_bound']:.2e} points from its exact optimum (|gradient| / reg), "
        f"about {OURS['newton_distance']:.2e} (a Newton step with its gradient)"
    )
    if "converged_gap" in OURS:
        print(f"ours against the same objective minimised to gtol 1e-9: {OURS['converged_gap']:.4f} points")
    for text in ours["warnings"]:
        print(f"warning: {text}")


if __name__ == "__main__":
    main()
