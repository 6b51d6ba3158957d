"""The batched Newton solver and the sandwich covariance."""

from __future__ import annotations

import numpy as np
import pytest

from scoring import bt_fit


def test_newton_solves_a_batch_and_keeps_each_component_centred() -> None:
    win = np.array([[[0, 3, 1], [1, 0, 2], [2, 1, 0]], [[0, 1, 1], [1, 0, 1], [1, 1, 0]]], dtype=float)
    labels = np.zeros(3, dtype=np.int32)
    result = bt_fit.newton(win, None, labels, np.zeros(2), np.zeros((2, 3)))
    assert result.converged.all()
    assert np.allclose(result.theta.sum(axis=1), 0, atol=1e-12)
    assert np.allclose(result.theta[1], 0)
    grad = bt_fit.half_terms(result.theta, win, np.zeros(2)).grad
    assert np.abs(grad).max() < 1e-8


def test_sandwich_equals_the_inverse_hessian_when_the_model_is_exactly_right() -> None:
    # Counts proportional to the model's own probabilities make J equal to H (information equality).
    theta = np.array([0.5, 0.0, -0.5])
    p = 1 / (1 + np.exp(-(theta[:, None] - theta[None, :])))
    n = 1000.0
    wins = n * p
    np.fill_diagonal(wins, 0)
    cov = bt_fit.sandwich_cov(theta, None, wins, np.zeros((3, 3)), np.zeros(3, dtype=np.int32), 0.0)
    neg_hess = bt_fit.half_terms(theta[None], wins[None], np.zeros(1)).neg_hess[0]
    assert cov == pytest.approx(np.linalg.pinv(neg_hess), abs=1e-10)
