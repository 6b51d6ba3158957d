"""bench/bench_style.py: its FastChat pipeline agrees with ours on a small log, and a quick run prints the ratio."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from scoring.loaders import read_style_battles
from scoring.style import style_leaderboard

REPO_ROOT = Path(__file__).resolve().parents[2]
bench_style = importlib.import_module("bench.bench_style")  # by name, as the other bench tests
write_realistic = importlib.import_module("bench.arena_logs").write_realistic


def test_fastchats_pipeline_agrees_with_ours_within_half_a_point(tmp_path: Path) -> None:
    path = tmp_path / "arena.jsonl"
    write_realistic(path, 4000, n_models=10, seed=2)
    matchups, features, outcomes, models = bench_style.baseline_preprocess(pd.read_json(path, lines=True))
    theirs = bench_style.baseline_fit(matchups, features, outcomes, len(models))
    board = style_leaderboard(read_style_battles(path), reg=0.5)
    ours = {row.model: row.rating for row in board.ratings}
    assert max(abs(ours[model] - (1000 + 400 * theirs[i])) for i, model in enumerate(models)) < 0.5
    assert np.allclose([item.coefficient for item in board.style], theirs[len(models) :], atol=1e-3)


def test_a_quick_run_prints_times_ratios_and_the_gap() -> None:
    done = subprocess.run(
        [sys.executable, "bench/bench_style.py", "--quick"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "ratio, file to leaderboard (FastChat / ours):" in done.stdout
    assert "ours against the same objective minimised to gtol 1e-9:" in done.stdout
