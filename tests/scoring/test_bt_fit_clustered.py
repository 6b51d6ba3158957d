"""Cluster-robust sandwich covariances of the Bradley-Terry fit (``bt_fit.cluster_meat``), against statsmodels."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm

from scoring import bt_fit
from scoring.battles import BattleCounts
from scoring.bradley_terry import bradley_terry_from_counts
from scoring.bt_fit import RATING_SCALE, ClusterCorrection


def _battles(seed: int, n: int = 600, m: int = 4, raters: int = 12) -> tuple[np.ndarray, ...]:
    """Return rater, first, second, outcome (1 first won, 2 second won, 0 tie) of simulated battles."""
    rng = np.random.default_rng(seed)
    theta = np.linspace(0.8, -0.8, m)
    rater = rng.integers(0, raters, n)
    taste = rng.normal(0, 0.6, (raters, m))  # each rater's own view of the models: its votes are correlated
    first = rng.integers(0, m, n)
    second = (first + rng.integers(1, m, n)) % m
    p = 1 / (1 + np.exp(-(theta[first] + taste[rater, first] - theta[second] - taste[rater, second])))
    u = rng.random(n)
    outcome = np.where(u < 0.1, 0, np.where(u < 0.1 + 0.9 * p, 1, 2))
    return rater, first, second, outcome


def _counts(m: int, first: np.ndarray, second: np.ndarray, outcome: np.ndarray) -> BattleCounts:
    wins = np.zeros((m, m), dtype=np.int64)
    ties = np.zeros((m, m), dtype=np.int64)
    for a, b, o in zip(first, second, outcome, strict=True):
        if o == 1:
            wins[a, b] += 1
        elif o == 2:
            wins[b, a] += 1
        else:
            ties[a, b] += 1
            ties[b, a] += 1
    return BattleCounts.from_arrays([f"m{k}" for k in range(m)], wins, ties)


def _statsmodels_se(
    rater: np.ndarray, first: np.ndarray, second: np.ndarray, outcome: np.ndarray, m: int, correction: bool
) -> np.ndarray:
    """Return the clustered standard errors of theta_k - theta_0 from a binomial GLM on the per-battle design."""
    x = np.zeros((len(first), m))
    x[np.arange(len(first)), first] += 1.0
    x[np.arange(len(first)), second] -= 1.0
    y = np.where(outcome == 1, 1.0, np.where(outcome == 2, 0.0, 0.5))
    model = sm.GLM(y, x[:, 1:], family=sm.families.Binomial())
    fit = model.fit(cov_type="cluster", cov_kwds={"groups": rater, "use_correction": correction}, tol=1e-12)
    return np.asarray(fit.bse)


@pytest.mark.parametrize(("correction", "seed"), [("cr1", 1), ("cr0", 2), ("cr1", 3)])
def test_clustered_standard_errors_equal_statsmodels_glm_cluster(correction: ClusterCorrection, seed: int) -> None:
    m = 4
    rater, first, second, outcome = _battles(seed)
    counts = _counts(m, first, second, outcome)
    cells = bt_fit.cluster_cells("rater", rater.tolist(), first.tolist(), second.tolist(), outcome.tolist())
    board = bradley_terry_from_counts(counts, clusters=cells)
    theta = np.array([(board.rating(f"m{k}").rating - 1000.0) / RATING_SCALE for k in range(m)])
    labels = np.zeros(m, dtype=np.int32)
    cov = bt_fit.sandwich_cov(
        theta, None, counts.wins.astype(float), counts.all_ties.astype(float), labels, 0.0, None, cells, correction
    )
    contrast = np.sqrt(np.diag(cov)[1:] + cov[0, 0] - 2 * cov[0, 1:])
    expected = _statsmodels_se(rater, first, second, outcome, m, correction == "cr1")
    assert contrast == pytest.approx(expected, rel=1e-6)
    assert board.cluster == "rater"
    assert board.to_dict()["cluster"] == "rater"


def test_one_battle_per_cluster_gives_the_plain_sandwich_under_cr0() -> None:
    m = 4
    _, first, second, outcome = _battles(5, n=300)
    counts = _counts(m, first, second, outcome)
    plain = bradley_terry_from_counts(counts)
    theta = np.array([(plain.rating(f"m{k}").rating - 1000.0) / RATING_SCALE for k in range(m)])
    cells = bt_fit.cluster_cells("battle", list(range(len(first))), first.tolist(), second.tolist(), outcome.tolist())
    args = (theta, None, counts.wins.astype(float), counts.all_ties.astype(float), np.zeros(m, dtype=np.int32), 0.0)
    unclustered = bt_fit.sandwich_cov(*args)
    clustered = bt_fit.sandwich_cov(*args, None, cells, "cr0")
    assert clustered == pytest.approx(unclustered, abs=1e-12)


def test_davidson_clustered_meat_with_singleton_clusters_equals_the_plain_davidson_meat() -> None:
    m = 4
    _, first, second, outcome = _battles(6, n=300)
    counts = _counts(m, first, second, outcome)
    board = bradley_terry_from_counts(counts, ties="davidson")
    theta = np.array([(board.rating(f"m{k}").rating - 1000.0) / RATING_SCALE for k in range(m)])
    log_nu = float(np.log(board.tie_parameter or 1.0))
    cells = bt_fit.cluster_cells("battle", list(range(len(first))), first.tolist(), second.tolist(), outcome.tolist())
    meat = bt_fit.cluster_meat(theta, log_nu, cells)
    expected = bt_fit._davidson_meat(theta, log_nu, counts.wins.astype(float), counts.all_ties.astype(float))
    assert meat == pytest.approx(expected, abs=1e-9)


def test_correlated_raters_widen_the_interval() -> None:
    m = 4
    rater, first, second, outcome = _battles(7, n=2000, raters=8)
    counts = _counts(m, first, second, outcome)
    cells = bt_fit.cluster_cells("rater", rater.tolist(), first.tolist(), second.tolist(), outcome.tolist())
    plain = bradley_terry_from_counts(counts)
    clustered = bradley_terry_from_counts(counts, clusters=cells)
    assert clustered.rating("m0").rating == pytest.approx(plain.rating("m0").rating)
    assert clustered.rating("m0").se > 1.5 * plain.rating("m0").se


def test_clusters_must_add_up_to_the_counts_and_exclude_a_bootstrap() -> None:
    m = 4
    rater, first, second, outcome = _battles(8, n=200)
    counts = _counts(m, first, second, outcome)
    short = bt_fit.cluster_cells(
        "rater", rater[:-1].tolist(), first[:-1].tolist(), second[:-1].tolist(), outcome[:-1].tolist()
    )
    with pytest.raises(ValueError, match="do not add up"):
        bradley_terry_from_counts(counts, clusters=short)
    cells = bt_fit.cluster_cells("rater", rater.tolist(), first.tolist(), second.tolist(), outcome.tolist())
    with pytest.raises(ValueError, match="bootstrap"):
        bradley_terry_from_counts(counts, clusters=cells, bootstrap=10)
    with pytest.raises(ValueError, match="outcomes"):
        bt_fit.cluster_cells("rater", [0], [0], [1], [3])


def test_a_single_cluster_gives_no_interval() -> None:
    m = 4
    _, first, second, outcome = _battles(9, n=200)
    counts = _counts(m, first, second, outcome)
    cells = bt_fit.cluster_cells("rater", [0] * len(first), first.tolist(), second.tolist(), outcome.tolist())
    board = bradley_terry_from_counts(counts, clusters=cells)
    assert np.isnan(board.rating("m0").se)
    assert bt_fit.cluster_factor("cr1", 10, 100.0, 3) == pytest.approx(10 / 9 * 99 / 97)
