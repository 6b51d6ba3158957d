"""Judge audit statistics: the logistic slope against statsmodels, stability and paired means on known inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import statsmodels.api as sm

from scoring.judge_audit import logistic_slope, paired_means, repeats_for_majority, stability


def _data(n: int, slope: float, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(n // 2), 2)
    x = rng.normal(size=n)
    y = rng.random(n) < 1 / (1 + np.exp(-(0.2 + slope * x)))
    return x, y, groups


def test_logistic_slope_equals_statsmodels_logit_with_model_based_errors() -> None:
    x, y, _ = _data(800, 1.2, seed=1)
    ours = logistic_slope(list(x), list(y))
    fit = sm.Logit(y.astype(float), sm.add_constant(x)).fit(disp=0)
    assert ours.slope == pytest.approx(fit.params[1], abs=1e-8)
    assert ours.intercept == pytest.approx(fit.params[0], abs=1e-8)
    assert ours.se == pytest.approx(fit.bse[1], rel=1e-6)
    assert (ours.lower, ours.upper) == pytest.approx(tuple(fit.conf_int()[1]), rel=1e-6)
    assert ours.p_value == pytest.approx(fit.pvalues[1], rel=1e-5)


def test_logistic_slope_clustered_equals_statsmodels_cluster_robust_errors() -> None:
    x, y, groups = _data(600, -0.7, seed=2)
    ours = logistic_slope(list(x), list(y), clusters=list(groups))
    fit = sm.Logit(y.astype(float), sm.add_constant(x)).fit(disp=0, cov_type="cluster", cov_kwds={"groups": groups})
    assert ours.slope == pytest.approx(fit.params[1], abs=1e-8)
    assert ours.se == pytest.approx(fit.bse[1], rel=1e-6)
    assert ours.clusters == 300


def test_logistic_slope_is_nan_when_it_does_not_exist() -> None:
    assert math.isnan(logistic_slope([1.0, 2.0, 3.0, 4.0], [False, False, True, True]).slope)  # separated
    assert math.isnan(logistic_slope([1.0, 1.0, 1.0], [False, True, True]).slope)  # no spread
    assert math.isnan(logistic_slope([], []).slope)


def test_stability_flip_rate_counts_disagreeing_pairs_of_runs() -> None:
    result = stability([["A", "A", "B"], ["A", "A", "A"], ["B", "tie"], ["A"]], rng=np.random.default_rng(0))
    assert result.items == 3  # the single run is not an item
    assert result.flip_rate == pytest.approx((2 / 3 + 0 + 1) / 3)
    assert result.unstable_share == pytest.approx(2 / 3)
    assert result.lower <= result.flip_rate <= result.upper


def test_repeats_for_a_stable_majority_follow_the_binomial() -> None:
    # With a 20% chance of departing: 1 run 0.80, 3 runs 0.896, 5 runs 0.942, 7 runs 0.967.
    assert repeats_for_majority(0.2) == 7
    assert repeats_for_majority(0.0) == 1
    assert repeats_for_majority(0.5) is None
    flip = 2 * 0.2 * 0.8
    assert stability([["A", "B"]] * 0, rng=np.random.default_rng(0)).repeats_for_majority is None
    runs = [["A"] * 8 + ["B"] * 2] * 10
    assert stability(runs, rng=np.random.default_rng(0)).flip_rate == pytest.approx(1 - (56 + 2) / 90)
    assert (1 - math.sqrt(1 - 2 * flip)) / 2 == pytest.approx(0.2)


def test_paired_means_difference_and_intervals() -> None:
    result = paired_means([1, 1, 0.5, 1], [0, 0.5, 0.5, 1], bootstrap=500, rng=np.random.default_rng(0))
    assert (result.judge, result.humans, result.difference) == pytest.approx((0.875, 0.5, 0.375))
    assert result.difference_ci[0] <= 0.375 <= result.difference_ci[1]
    with pytest.raises(ValueError, match="one each per item"):
        paired_means([1], [], rng=np.random.default_rng(0))
