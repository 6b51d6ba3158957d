"""The compiled kernels of style control (style_terms, spd_solve, poisson_classes) against their numpy twins."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit

from scoring import compiled, style
from scoring.style_draws import ClassSampler
from tests.scoring.test_style import simulated


def design_of(n: int, n_models: int, seed: int) -> style.Design:
    """Return the design of simulated battles (standardised features, aggregated rows)."""
    battles = simulated(n, n_models, seed=seed, skew=1.0)
    features, _, _ = style.standardise(style.raw_features(battles), battles.weights)
    return style.build_design(battles, features)


def twin_terms(
    design: style.Design, params: np.ndarray, weights: np.ndarray, reg: float, probs: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Return style._terms computed by the numpy twin (the kernels switched off for the call)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(compiled, "kernels", None)
        return style._terms(design, style._logits(design, params), params, weights, reg, probs)


@pytest.fixture
def built() -> None:
    """Skip where the kernels are not built (test_compiled fails for that)."""
    if compiled.kernels is None:
        pytest.skip("the compiled kernels are not built")


@pytest.mark.parametrize("with_probs", [False, True])
def test_style_terms_equals_the_numpy_gradient_and_hessian(built: None, with_probs: bool) -> None:
    design = design_of(5000, 9, seed=1)
    rng = np.random.default_rng(0)
    params = rng.normal(0.0, 0.3, design.n_models + design.n_features)
    weights = rng.poisson(1.0, len(design.y)).astype(np.float64)  # zeros among them: skipped by the kernel
    probs = expit(style._logits(design, params)) if with_probs else None
    grad, hess = style._terms(design, None, params, weights, 0.5, probs)
    twin_grad, twin_hess = twin_terms(design, params, weights, 0.5, probs)
    assert np.allclose(grad, twin_grad, rtol=1e-10, atol=1e-8)
    assert np.allclose(hess, twin_hess, rtol=1e-10, atol=1e-8)
    assert np.array_equal(hess, hess.T)


def test_style_terms_takes_any_number_of_features_up_to_eight(built: None) -> None:
    design = design_of(3000, 6, seed=2)
    two = style.Design(
        **{
            **vars(design),
            "n_features": 2,
            "features": np.ascontiguousarray(design.features[:, :2]),
            "features_t": np.ascontiguousarray(design.features_t[:2]),
        }
    )
    params = np.linspace(-0.5, 0.5, two.n_models + 2)
    grad, hess = style._terms(two, None, params, two.weights, 0.0)
    twin_grad, twin_hess = twin_terms(two, params, two.weights, 0.0, None)
    assert np.allclose(grad, twin_grad, rtol=1e-10, atol=1e-8)
    assert np.allclose(hess, twin_hess, rtol=1e-10, atol=1e-8)


def test_style_terms_refuses_inconsistent_shapes(built: None) -> None:
    design = design_of(500, 4, seed=3)
    size = design.n_models + design.n_features
    grad, hess = np.empty(size), np.empty((size, size))
    assert compiled.kernels is not None
    with pytest.raises(ValueError, match="inconsistent shapes"):
        compiled.kernels.style_terms(
            design.features,
            design.y,
            design.weights[:-1],
            design.starts,
            design.pair_a,
            design.pair_b,
            np.zeros(size),
            0.5,
            None,
            grad,
            hess,
        )
    bad_pair = design.pair_b.copy()
    bad_pair[0] = design.n_models  # past the last model
    with pytest.raises(ValueError, match="inconsistent shapes"):
        compiled.kernels.style_terms(
            design.features,
            design.y,
            design.weights,
            design.starts,
            design.pair_a,
            bad_pair,
            np.zeros(size),
            0.5,
            None,
            grad,
            hess,
        )


def test_spd_solve_agrees_with_numpy_and_refuses_an_indefinite_matrix(built: None) -> None:
    assert compiled.kernels is not None
    rng = np.random.default_rng(4)
    root = rng.normal(size=(40, 40))
    matrix = root @ root.T + 0.1 * np.eye(40)
    rhs = rng.normal(size=40)
    out = np.empty(40)
    assert compiled.kernels.spd_solve(matrix, rhs, out)
    assert np.allclose(out, np.linalg.solve(matrix, rhs), rtol=1e-9, atol=1e-9)
    assert not compiled.kernels.spd_solve(-matrix, rhs, out)
    assert not compiled.kernels.spd_solve(np.zeros((40, 40)), rhs, out)


@pytest.mark.parametrize("counts", [[1] * 3000, [1, 0, 2, 5, 1, 1, 40, 3] * 400, [0, 3, 1], [2]])
def test_class_sampler_draws_the_same_with_and_without_the_kernels(kernels: str, counts: list[int]) -> None:
    sampler = ClassSampler(np.array(counts))
    draws = sampler.draw(7, np.random.default_rng(11))
    assert draws.shape == (7, len(counts))
    assert (draws.sum(axis=1) == sum(counts)).all()  # every round redraws exactly n battles
    assert (draws[:, np.array(counts) == 0] == 0).all()
    compiled_draws = draws
    if kernels == "compiled":
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(compiled, "kernels", None)
            twin = ClassSampler(np.array(counts)).draw(7, np.random.default_rng(11))
        assert np.array_equal(compiled_draws, twin)


def test_class_sampler_draws_are_multinomial(kernels: str) -> None:
    counts = np.array([1] * 200 + [4] * 50 + [20] * 5)
    n = int(counts.sum())
    draws = ClassSampler(counts).draw(4000, np.random.default_rng(12))
    p = counts / n
    mean, var = draws.mean(axis=0), draws.var(axis=0)
    assert np.abs(mean - n * p).max() < 5 * np.sqrt(n * p * (1 - p) / 4000).max()
    assert np.abs(var / (n * p * (1 - p)) - 1).max() < 0.2
    # Multinomial cells are negatively correlated: cov = -n p_i p_j.
    cov = np.cov(draws[:, 250], draws[:, 251])[0, 1]
    assert abs(cov - (-n * p[250] * p[251])) < 0.15 * n * p[250]


def test_bootstrap_rounds_agree_with_and_without_the_kernels() -> None:
    if compiled.kernels is None:
        pytest.skip("the compiled kernels are not built")
    design = design_of(6000, 10, seed=5)
    point, _ = style.fit(design, reg=0.5)
    fast, _ = style.bootstrap_params(design, point, reg=0.5, rounds=12, rng=np.random.default_rng(6), workers=2)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(compiled, "kernels", None)
        slow, _ = style.bootstrap_params(design, point, reg=0.5, rounds=12, rng=np.random.default_rng(6), workers=1)
    assert np.abs(fast - slow).max() * 400 < 1e-3  # same draws, both refits within 0.001 points of the optimum
