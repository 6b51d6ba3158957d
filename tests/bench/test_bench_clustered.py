"""bench/bench_clustered.py: the population ratings it measures coverage against, and a short run."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
bench_clustered = importlib.import_module("bench.bench_clustered")  # by name, as the other bench tests


def test_without_tastes_the_population_ratings_are_the_raters_own() -> None:
    expected = 1000.0 + np.linspace(150, -150, bench_clustered.M)
    assert bench_clustered.population_ratings(0.0) == pytest.approx(expected, abs=1e-6)


def test_tastes_pull_the_population_ratings_together() -> None:
    ratings = bench_clustered.population_ratings(0.5)
    assert np.all(np.diff(ratings) < 0)
    assert 0.8 * 300 < ratings[0] - ratings[-1] < 300


def test_a_short_run_prints_both_coverages_and_the_targets() -> None:
    done = subprocess.run(
        [sys.executable, "bench/bench_clustered.py", "--rounds", "20", "--seed", "3"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "unclustered: coverage" in done.stdout
    assert "clustered CR1: coverage" in done.stdout
    assert "target clustered (CR1) coverage 93-97%:" in done.stdout


def test_the_rater_model_mode_prints_each_fits_coverage() -> None:
    done = subprocess.run(
        [sys.executable, "bench/bench_clustered.py", "--rater-model", "--rounds", "1", "--votes", "40"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    for kind in ("plain", "rater-aware", "rater-aware, clustered"):
        assert f"{kind}: coverage" in done.stdout
