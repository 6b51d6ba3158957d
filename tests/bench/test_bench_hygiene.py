"""bench/bench_hygiene.py: its synthetic prompts plant what it says, and a quick run prints recall and timings."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import numpy as np

from scoring.near_duplicates import normalise

REPO_ROOT = Path(__file__).resolve().parents[2]
bench_hygiene = importlib.import_module("bench.bench_hygiene")  # by name, as the other bench tests


def test_planted_copies_are_exact_or_edited_copies_of_their_source() -> None:
    texts, family, pairs = bench_hygiene.synthetic_prompts(np.random.default_rng(1), 2000, 0.1)
    assert len(texts) == 2000
    assert 100 < len(pairs) < 300
    exact = sum(normalise(texts[a]) == normalise(texts[b]) for a, b in pairs)
    assert 0.3 < exact / len(pairs) < 0.7
    assert all(family[b] == a for a, b in pairs)


def test_a_quick_run_prints_recall_precision_and_the_influence_search() -> None:
    result = subprocess.run(
        [sys.executable, "bench/bench_hygiene.py", "--prompts", "3000", "--battles", "3000", "--models", "8"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    recall = next(line for line in result.stdout.splitlines() if "recall" in line)
    found, total = recall.split("recall ")[1].split(" ")[0].split("/")
    assert int(found) >= 0.95 * int(total)
    assert "precision" in result.stdout
    assert "influence: " in result.stdout
    assert "adjacent pairs" in result.stdout
