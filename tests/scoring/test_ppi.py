"""Prediction-powered Bradley-Terry (scoring/ppi.py) against the PPI authors' ppi_py, plus its invariants."""

from __future__ import annotations

from typing import Any

import numpy as np
import ppi_py
import pytest
from numpy.typing import NDArray

import scoring
from scoring.bt_fit import RATING_SCALE
from scoring.ppi import PPIData, judge_only_fit, ppi_bradley_terry, ppi_fit

Z95 = 1.959963984540054
NAMES = ("alpha", "beta", "gamma", "delta")
THETA = np.array([0.5, 0.0, -0.3, 0.2])


def simulate(
    rng: np.random.Generator, k: int, agree: float, favour: int | None = None
) -> tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.float64], NDArray[np.float64]]:
    """Return k comparisons (a, b, human, judge) of NAMES; the judge copies the human with probability agree.

    Otherwise it votes for model ``favour`` when present (else at random), so it is biased towards it.
    """
    m = len(NAMES)
    a = rng.integers(0, m, k)
    b = (a + rng.integers(1, m, k)) % m
    y = (rng.random(k) < 1 / (1 + np.exp(-(THETA[a] - THETA[b])))).astype(float)
    other = (rng.random(k) < 0.5).astype(float)
    if favour is not None:
        other = np.where(a == favour, 1.0, np.where(b == favour, 0.0, other))
    yhat = np.where(rng.random(k) < agree, y, other)
    return a, b, y, yhat


def make_data(
    rng: np.random.Generator, n: int, big_n: int, agree: float, favour: int | None = None
) -> tuple[PPIData, tuple[NDArray[Any], ...], tuple[NDArray[Any], ...]]:
    """Return PPIData plus the raw arrays of the labelled and unlabelled comparisons."""
    a, b, y, yhat = simulate(rng, n, agree, favour)
    ua, ub, _, uyhat = simulate(rng, big_n, agree, favour)
    data = PPIData.from_comparisons(
        [(NAMES[i], NAMES[j], s, t) for i, j, s, t in zip(a, b, y, yhat, strict=True)],
        [(NAMES[i], NAMES[j], t) for i, j, t in zip(ua, ub, uyhat, strict=True)],
    )
    return data, (a, b, y, yhat), (ua, ub, uyhat)


def design(a: NDArray[np.intp], b: NDArray[np.intp]) -> NDArray[np.float64]:
    """Return e_a - e_b without the first model's column (the first model is the reference at 0)."""
    x = np.zeros((len(a), len(NAMES)))
    x[np.arange(len(a)), a] += 1.0
    x[np.arange(len(a)), b] -= 1.0
    return x[:, 1:]


def index(name: str) -> int:
    """Return the position of a model in PPIData's sorted model tuple."""
    return sorted(NAMES).index(name)


@pytest.mark.parametrize("lam", [0.0, 0.3, 1.0])
def test_contrasts_and_intervals_match_ppi_py_logistic_regression(lam: float) -> None:
    rng = np.random.default_rng(2)
    data, (a, b, y, yhat), (ua, ub, uyhat) = make_data(rng, 400, 4000, agree=0.8, favour=2)
    fit = ppi_fit(data, lam=lam)
    lower, upper = ppi_py.ppi_logistic_ci(design(a, b), y, yhat, design(ua, ub), uyhat, alpha=0.05, lam=lam)
    ref = index(NAMES[0])
    for k, name in enumerate(NAMES[1:]):
        i = index(name)
        contrast = fit.theta[i] - fit.theta[ref]
        se = np.sqrt(fit.cov[i, i] + fit.cov[ref, ref] - 2 * fit.cov[i, ref])
        assert contrast == pytest.approx((lower[k] + upper[k]) / 2, abs=1e-8)
        assert Z95 * se == pytest.approx((upper[k] - lower[k]) / 2, abs=1e-8)


def test_two_models_with_tuned_lambda_match_ppi_py() -> None:
    rng = np.random.default_rng(1)
    y = (rng.random(300) < 0.65).astype(float)
    yhat = np.where(rng.random(300) < 0.85, y, 1 - y)
    uyhat = (rng.random(3000) < 0.6).astype(float)
    board = ppi_bradley_terry([("a", "b", s, t) for s, t in zip(y, yhat, strict=True)], [("a", "b", t) for t in uyhat])
    lower, upper = ppi_py.ppi_logistic_ci(np.ones((300, 1)), y, yhat, np.ones((3000, 1)), uyhat, alpha=0.05)
    # Centred ratings: model a sits at +beta/2, so its interval is half the coefficient's, scaled.
    row = board.rating("a")
    assert 0.0 < board.lam < 1.0
    assert row.lower == pytest.approx(1000 + RATING_SCALE * lower[0] / 2, abs=1e-4)
    assert row.upper == pytest.approx(1000 + RATING_SCALE * upper[0] / 2, abs=1e-4)


def test_two_model_win_probability_is_ppi_py_prediction_powered_mean() -> None:
    rng = np.random.default_rng(5)
    y = (rng.random(200) < 0.7).astype(float)
    yhat = np.where(rng.random(200) < 0.9, y, 1.0)
    uyhat = (rng.random(5000) < 0.8).astype(float)
    data = PPIData.from_comparisons(
        [("a", "b", s, t) for s, t in zip(y, yhat, strict=True)], [("a", "b", t) for t in uyhat]
    )
    for lam in (0.0, 0.4, 1.0):
        theta = ppi_fit(data, lam=lam).theta
        mean = ppi_py.ppi_mean_pointestimate(y, yhat, uyhat, lam=lam)
        assert 1 / (1 + np.exp(-(theta[0] - theta[1]))) == pytest.approx(float(np.squeeze(mean)), abs=1e-9)


def test_lambda_zero_is_the_human_only_bradley_terry_fit() -> None:
    rng = np.random.default_rng(3)
    data, (a, b, y, _), _ = make_data(rng, 600, 2000, agree=0.5, favour=0)
    fit = ppi_fit(data, lam=0.0)
    labels = {1.0: "model_a", 0.0: "model_b"}
    board = scoring.bradley_terry([(NAMES[i], NAMES[j], labels[s]) for i, j, s in zip(a, b, y, strict=True)])
    for name in NAMES:
        row = board.rating(name)
        assert 1000 + RATING_SCALE * fit.theta[index(name)] == pytest.approx(row.rating, abs=1e-6)
        # ppi_py's sample covariance centres the gradients and divides by n - 1; Bradley-Terry's sandwich does not.
        assert RATING_SCALE * np.sqrt(fit.cov[index(name), index(name)]) == pytest.approx(row.se, rel=0.01)


def test_a_judge_that_agrees_with_humans_narrows_the_interval() -> None:
    rng = np.random.default_rng(4)
    data, _, _ = make_data(rng, 500, 5000, agree=1.0)
    board = scoring.ppi_leaderboard(data)
    assert board.lam > 0.85
    for row in board.ratings:
        # Ideal: sqrt(n / (n + N)) = 0.30 of the human-only standard error.
        assert row.se < 0.4 * row.se_human


def test_a_judge_voting_at_random_gets_lambda_near_zero_and_costs_nothing() -> None:
    rng = np.random.default_rng(6)
    data, _, _ = make_data(rng, 500, 5000, agree=0.0)
    board = scoring.ppi_leaderboard(data)
    assert board.lam < 0.15
    # Lambda minimises the total variance; single models may move a few percent with the Hessian's estimate.
    total = sum(row.se**2 for row in board.ratings)
    assert total < 1.02 * sum(row.se_human**2 for row in board.ratings)


def test_a_biased_judge_moves_the_judge_only_fit_but_not_the_combined_one() -> None:
    rng = np.random.default_rng(7)
    data, _, _ = make_data(rng, 3000, 30000, agree=0.6, favour=NAMES.index("gamma"))
    gamma = index("gamma")
    truth = THETA[[NAMES.index(name) for name in sorted(NAMES)]]
    truth = truth - truth.mean()
    combined, judge = ppi_fit(data), judge_only_fit(data)
    assert abs(judge.theta[gamma] - truth[gamma]) > 8 * np.sqrt(judge.cov[gamma, gamma])
    assert abs(combined.theta[gamma] - truth[gamma]) < 3 * np.sqrt(combined.cov[gamma, gamma])


def test_models_without_paired_votes_are_refused() -> None:
    labelled = [("a", "b", 1.0, 1.0), ("b", "a", 0.0, 1.0), ("a", "b", 0.5, 0.5)]
    unlabelled = [("a", "c", 1.0), ("c", "b", 0.0), ("a", "b", 1.0)]
    with pytest.raises(ValueError, match="do not connect all models"):
        ppi_bradley_terry(labelled, unlabelled)


def test_scores_outside_zero_to_one_and_self_comparisons_are_refused() -> None:
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        ppi_bradley_terry([("a", "b", 2.0, 1.0)], [("a", "b", 1.0)])
    with pytest.raises(ValueError, match="against itself"):
        ppi_bradley_terry([("a", "a", 1.0, 1.0)], [("a", "b", 1.0)])


def test_to_dict_is_shaped_like_the_rank_output() -> None:
    rng = np.random.default_rng(8)
    data, _, _ = make_data(rng, 300, 3000, agree=0.9)
    payload = scoring.ppi_leaderboard(data).to_dict()
    assert payload["method"] == "bradley_terry_ppi"
    assert [row["rank"] for row in payload["ratings"]] == [1, 2, 3, 4]
    assert {"model", "rating", "lower", "upper", "rank_ub", "se", "se_human"} <= set(payload["ratings"][0])
    assert payload["n_labelled"] == 300
    assert payload["n_unlabelled"] == 3000
    assert len(payload["win_probability"]["matrix"]) == 4


def test_from_arrays_aggregates_like_from_comparisons() -> None:
    rng = np.random.default_rng(9)
    data, (a, b, y, yhat), (ua, ub, uyhat) = make_data(rng, 200, 800, agree=0.7)
    order = [index(name) for name in NAMES]
    remap = np.array(order)
    arrays = PPIData.from_arrays(sorted(NAMES), (remap[a], remap[b], y, yhat), (remap[ua], remap[ub], uyhat))
    assert np.allclose(ppi_fit(arrays).theta, ppi_fit(data).theta, atol=1e-12)
    with pytest.raises(ValueError, match="model indices"):
        PPIData.from_arrays(["x", "y"], (a, b, y, yhat), (ua, ub, uyhat))


def unrepresentative_data(seed: int) -> PPIData:
    """Humans rated mostly the close pair a-b, the weak judge (60% agreement) mostly the lopsided a-c and b-c."""
    rng = np.random.default_rng(seed)
    labelled = []
    for a, b, p in [("a", "b", 0.5)] * 300 + [("a", "c", 0.75)] * 40 + [("b", "c", 0.75)] * 40:
        y = float(rng.random() < p)
        labelled.append((a, b, y, y if rng.random() < 0.6 else 1 - y))
    unlabelled = [(a, "c", float(rng.random() < 0.9)) for a in ("a", "b") * 2500]
    return PPIData.from_comparisons(labelled, unlabelled)


def test_a_tuned_lambda_never_gives_wider_intervals_than_the_humans_alone() -> None:
    # With the Hessian over all comparisons (as ppi_py takes it once lambda > 0) the tuning picks lambda near 0.66
    # here, whose covariance is about 7x the humans-only one: the fit keeps lambda = 0 instead.
    data = unrepresentative_data(0)
    humans = ppi_fit(data, lam=0.0)
    tuned = ppi_fit(data, lam=0.66)
    assert np.trace(tuned.cov) > 3 * np.trace(humans.cov)
    fit = ppi_fit(data)
    assert fit.lam == 0.0
    assert np.allclose(fit.cov, humans.cov)


def test_the_tuning_survives_a_lambda_one_estimate_that_does_not_exist() -> None:
    data = unrepresentative_data(5)
    with pytest.raises(ValueError, match="does not exist"):
        ppi_fit(data, lam=1.0)
    fit = ppi_fit(data)
    assert np.all(np.isfinite(fit.cov))
    assert np.all(np.isfinite(fit.theta))
