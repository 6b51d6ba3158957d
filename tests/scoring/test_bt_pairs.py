"""Half-tie Bradley-Terry fits of many rounds over the pairs that met."""

from __future__ import annotations

import numpy as np
import pytest

from scoring import bt_fit, bt_pairs
from tests.scoring.test_bt_bootstrap import _exact_fits, _long_tailed_chunk


def test_the_pair_newton_starts_from_another_point_only_where_it_is_finite_and_as_likely() -> None:
    solver, draws, fit = _long_tailed_chunk(12)
    start = np.repeat(fit.theta[None], 12, axis=0)
    other = start.copy()
    other[:4] = np.nan  # not finite: ignored
    other[4:8, 0] += 40.0  # far less likely: ignored, and Newton from there would need many damped steps
    other[8:] = _exact_fits(solver, draws, fit)[8:] + 1e-9  # better: taken
    solved = bt_fit.center(solver._pair_newton(draws, np.zeros(12), start, other), fit.labels)
    assert np.abs(solved - _exact_fits(solver, draws, fit)).max() * bt_fit.RATING_SCALE < 1e-6


@pytest.mark.parametrize("spread", [3.0, 700.0])
def test_the_pair_likelihood_matches_the_dense_one(spread: float) -> None:
    # A spread past SPREAD_LIMIT (exp would underflow) takes the log-sigmoid path.
    solver, draws, _ = _long_tailed_chunk(6)
    theta = np.random.default_rng(3).uniform(-spread / 2, spread / 2, size=(6, solver.m))
    prior = np.array([0.0, 0.0, 0.0, 1.0, 1.0, 0.5])
    likelihood = bt_pairs.PairLikelihood(
        solver.pair_i, solver.pair_j, solver.sums.per_model, solver.fit.labels, draws, prior, solver.scratch_rows
    )
    wins, ties = solver._dense(draws)
    dense = bt_fit.half_terms(theta, wins + ties / 2, prior)
    assert np.allclose(likelihood.loglik(theta.T, np.arange(6)), dense.loglik, rtol=1e-12, atol=1e-8)


def test_the_pair_newton_step_matches_the_dense_one() -> None:
    solver, draws, fit = _long_tailed_chunk(6)
    theta = np.random.default_rng(3).uniform(-1.5, 1.5, size=(6, solver.m))
    prior = np.array([0.0, 0.0, 0.0, 1.0, 1.0, 0.5])
    likelihood = bt_pairs.PairLikelihood(
        solver.pair_i, solver.pair_j, solver.sums.per_model, solver.fit.labels, draws, prior, solver.scratch_rows
    )
    wins, ties = solver._dense(draws)
    dense = bt_fit.half_terms(theta, wins + ties / 2, prior)
    every = np.arange(6)
    system = dense.neg_hess + np.where(prior[:, None, None] == 0.0, bt_fit.centering_matrix(fit.labels, 0), 0.0)
    expected = np.linalg.solve(system, dense.grad[:, :, None])[:, :, 0]
    assert np.allclose(likelihood.newton_step(theta.T, every).T, expected, rtol=1e-9, atol=1e-12)
