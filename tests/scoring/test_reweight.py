"""Sandwich intervals with battles reweighted by inverse pair frequency (``reweight="pairs"``)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray
from scipy.optimize import minimize

from scoring import BattleCounts, bradley_terry, bradley_terry_from_counts
from scoring.bt_fit import pair_weights

SCALE = 400 / math.log(10)
REPO_ROOT = Path(__file__).resolve().parents[2]
Array = NDArray[np.float64]


def skewed_battles(seed: int) -> list[tuple[str, str, str]]:
    """Return battles of 5 models whose pairs have 3 to 400 battles each, about 10% ties."""
    rng = np.random.default_rng(seed)
    strength = rng.normal(0, 1, 5)
    out = []
    for i in range(5):
        for j in range(i + 1, 5):
            for _ in range(int(rng.choice([3, 8, 40, 400]))):
                u = rng.random()
                if u < 0.1:
                    winner = "tie"
                else:
                    p = 1 / (1 + math.exp(strength[j] - strength[i]))
                    winner = "model_a" if rng.random() < p else "model_b"
                out.append((f"m{i}", f"m{j}", winner) if rng.random() < 0.5 else (f"m{j}", f"m{i}", _swap(winner)))
    return out


def _swap(winner: str) -> str:
    """Return the winner label with the sides exchanged."""
    return {"model_a": "model_b", "model_b": "model_a"}.get(winner, winner)


def design(battles: list[tuple[str, str, str]]) -> tuple[list[str], Array, Array, Array]:
    """Return models, the per-battle design (+1 for a, -1 for b), outcomes (ties 1/2) and pair weights."""
    models = sorted({m for a, b, _ in battles for m in (a, b)})
    index = {m: k for k, m in enumerate(models)}
    x = np.zeros((len(battles), len(models)))
    y = np.array([{"model_a": 1.0, "model_b": 0.0}.get(w, 0.5) for _, _, w in battles])
    pairs = [frozenset((a, b)) for a, b, _ in battles]
    for row, (a, b, _) in enumerate(battles):
        x[row, index[a]], x[row, index[b]] = 1.0, -1.0
    frequency = {pair: pairs.count(pair) for pair in set(pairs)}
    raw = np.array([1.0 / frequency[pair] for pair in pairs])
    return models, x, y, raw * len(battles) / raw.sum()


def reference_fit(x: Array, y: Array, w: Array) -> tuple[Array, Array]:
    """Return centred theta and its sandwich covariance from a per-battle weighted logistic regression.

    The last model is the reference (strength 0); the estimate and covariance are then mapped to mean zero.
    """
    z = x[:, :-1]

    def loss(beta: Array) -> tuple[float, Array]:
        eta = z @ beta
        p = 1 / (1 + np.exp(-eta))
        value = -np.sum(w * (y * -np.logaddexp(0, -eta) + (1 - y) * -np.logaddexp(0, eta)))
        return float(value), -(z.T @ (w * (y - p)))

    beta = minimize(loss, np.zeros(z.shape[1]), jac=True, method="BFGS", options={"gtol": 1e-11}).x
    p = 1 / (1 + np.exp(-(z @ beta)))
    bread = z.T @ (z * (w * p * (1 - p))[:, None])
    meat = z.T @ (z * (w**2 * (y - p) ** 2)[:, None])
    inv = np.linalg.inv(bread)
    m = x.shape[1]
    to_centred = (np.eye(m) - 1.0 / m) @ np.vstack([np.eye(m - 1), np.zeros((1, m - 1))])
    return to_centred @ beta, to_centred @ inv @ meat @ inv @ to_centred.T


def test_pair_weights_sum_to_the_battles_and_give_every_pair_the_same_total() -> None:
    totals = np.array([[0, 90, 10, 0], [90, 0, 0, 0], [10, 0, 0, 1], [0, 0, 1, 0]], dtype=float)
    w = pair_weights(totals)
    assert np.triu(w * totals).sum() == pytest.approx(101.0)
    assert w[0, 1] == pytest.approx(101 / (3 * 90))
    assert w[2, 3] == pytest.approx(101 / 3)
    assert np.allclose(w, w.T)
    assert w[1, 2] == 0.0
    assert w[1, 3] == 0.0


def test_equally_frequent_pairs_give_the_plain_fit() -> None:
    rng = np.random.default_rng(3)
    battles = []
    for i in range(4):
        for j in range(i + 1, 4):
            battles += [(f"m{i}", f"m{j}", str(rng.choice(["model_a", "model_b", "tie"]))) for _ in range(25)]
    for ties in ("half", "davidson"):
        plain = bradley_terry(battles, ties=ties)
        weighted = bradley_terry(battles, ties=ties, reweight="pairs")
        assert weighted.models == plain.models
        assert weighted.reweight == "pairs"
        assert plain.reweight is None
        for a, b in zip(weighted.ratings, plain.ratings, strict=True):
            assert a.rating == pytest.approx(b.rating, abs=1e-9)
            assert a.se == pytest.approx(b.se, rel=1e-9)
            assert (a.lower, a.upper) == pytest.approx((b.lower, b.upper), abs=1e-9)


@pytest.mark.parametrize("seed", [0, 1])
def test_ratings_and_sandwich_se_match_a_weighted_logistic_regression(seed: int) -> None:
    battles = skewed_battles(seed)
    models, x, y, w = design(battles)
    theta, cov = reference_fit(x, y, w)
    board = bradley_terry(battles, reweight="pairs", tol=1e-10)
    plain = bradley_terry(battles, tol=1e-10)
    for k, model in enumerate(models):
        row = board.rating(model)
        assert row.rating == pytest.approx(1000 + SCALE * theta[k], abs=1e-4)
        assert row.se == pytest.approx(SCALE * math.sqrt(cov[k, k]), rel=1e-5)
        assert row.lower == pytest.approx(row.rating - 1.959963984540054 * row.se)
    gaps = [abs(board.rating(m).rating - plain.rating(m).rating) for m in models]
    assert max(gaps) > 1.0  # the skewed pair counts do change the fit


def test_ratings_and_se_match_statsmodels_glm_with_var_weights() -> None:
    sm = pytest.importorskip("statsmodels.api")
    battles = [b for b in skewed_battles(2) if b[2] != "tie"]
    models, x, y, w = design(battles)
    result = sm.GLM(y, x[:, :-1], family=sm.families.Binomial(), var_weights=w).fit(cov_type="HC0", tol=1e-12)
    m = len(models)
    to_centred = (np.eye(m) - 1.0 / m) @ np.vstack([np.eye(m - 1), np.zeros((1, m - 1))])
    theta = to_centred @ result.params
    se = np.sqrt(np.diag(to_centred @ result.cov_params() @ to_centred.T))
    board = bradley_terry(battles, reweight="pairs", tol=1e-10)
    for k, model in enumerate(models):
        assert board.rating(model).rating == pytest.approx(1000 + SCALE * theta[k], abs=1e-4)
        assert board.rating(model).se == pytest.approx(SCALE * se[k], rel=1e-5)


def test_a_pair_with_many_more_votes_no_longer_dominates() -> None:
    # A cycle: a beats b 9:1 in 1000 battles, b beats c and c beats a 9:1 in 10 battles each.
    wins = np.array([[0, 900, 1], [100, 0, 9], [9, 1, 0]])
    counts = BattleCounts.from_arrays(["a", "b", "c"], wins=wins)
    plain = bradley_terry_from_counts(counts)
    assert plain.rating("a").rating - plain.rating("b").rating > 200
    # Reweighted every pair weighs 1020 / 3 battles at 9:1, a symmetric cycle: all three ratings are equal.
    board = bradley_terry_from_counts(counts, reweight="pairs")
    for row in board.ratings:
        assert row.rating == pytest.approx(1000.0, abs=1e-6)


def test_reweight_rejects_a_bootstrap_and_unknown_schemes() -> None:
    counts = BattleCounts.from_arrays(["a", "b"], wins=[[0, 3], [2, 0]])
    with pytest.raises(ValueError, match="bootstrap"):
        bradley_terry_from_counts(counts, reweight="pairs", bootstrap=10)
    with pytest.raises(ValueError, match="reweight"):
        bradley_terry_from_counts(counts, reweight="models")  # type: ignore[arg-type]


def test_cli_reweight_pairs(tmp_path: Path) -> None:
    battles = skewed_battles(4)
    path = tmp_path / "battles.jsonl"
    path.write_text("".join(json.dumps({"model_a": a, "model_b": b, "winner": w}) + "\n" for a, b, w in battles))
    done = subprocess.run(
        [sys.executable, "-m", "scoring", "rank", str(path), "--reweight", "pairs"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    board = bradley_terry(battles, reweight="pairs")
    assert payload["reweight"] == "pairs"
    assert payload["interval"] == "sandwich"
    for row in payload["ratings"]:
        assert row["rating"] == pytest.approx(board.rating(row["model"]).rating, abs=1e-9)
        assert row["se"] == pytest.approx(board.rating(row["model"]).se, rel=1e-9)
    refused = subprocess.run(
        [sys.executable, "-m", "scoring", "rank", str(path), "--reweight", "pairs", "--bootstrap", "10"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    assert refused.returncode == 1
    assert "--reweight pairs" in refused.stderr
