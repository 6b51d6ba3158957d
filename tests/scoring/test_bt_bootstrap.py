"""Multinomial bootstrap of Bradley-Terry fits."""

from __future__ import annotations

import math

import numpy as np

from scoring import bradley_terry
from tests.scoring.test_bradley_terry import random_battles


def test_davidson_bootstrap_brackets_the_estimate_and_is_seeded() -> None:
    battles = random_battles(11, n_models=5, n_battles=1500)
    first = bradley_terry(battles, ties="davidson", bootstrap=100, rng=np.random.default_rng(5))
    second = bradley_terry(battles, ties="davidson", bootstrap=100, rng=np.random.default_rng(5))
    assert [r.upper for r in first.ratings] == [r.upper for r in second.ratings]
    for row in first.ratings:
        assert row.lower <= row.rating <= row.upper


def test_resamples_without_a_finite_mle_fall_back_to_the_prior() -> None:
    # With three battles most resamples give some model only wins or only losses.
    battles = [("a", "b", "model_a"), ("b", "a", "model_a"), ("a", "b", "tie")]
    board = bradley_terry(battles, bootstrap=200, rng=np.random.default_rng(0))
    assert board.bootstrap_ratings is not None
    assert np.isfinite(board.bootstrap_ratings).all()
    assert all(math.isfinite(row.lower) and math.isfinite(row.upper) for row in board.ratings)


def test_bootstrap_rounds_are_centred_like_the_point_estimate() -> None:
    board = bradley_terry(random_battles(12, n_models=6, n_battles=800), bootstrap=50, rng=np.random.default_rng(1))
    assert board.bootstrap_ratings is not None
    assert np.allclose(board.bootstrap_ratings.mean(axis=1), 1000.0)
