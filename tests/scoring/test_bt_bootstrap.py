"""Multinomial bootstrap of Bradley-Terry fits."""

from __future__ import annotations

import math

import numpy as np
import pytest

from scoring import BattleCounts, aggregate_battles, bradley_terry, bt_bootstrap, bt_fit, compiled
from scoring.bradley_terry import _point_fit
from scoring.bt_bootstrap import DEFAULT_PRIOR, PointFit, TieMode
from scoring.multinomial import MultinomialSampler
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


def _fit_and_cells(battles: list[tuple[str, str, str]], mode: TieMode) -> tuple[BattleCounts, PointFit, np.ndarray]:
    """Return the counts, the point fit and the (pair, outcome) cells of some battles."""
    counts = aggregate_battles(battles)
    fit = _point_fit(counts, mode, DEFAULT_PRIOR, 1e-6, [])
    pair_i, pair_j = np.nonzero(np.triu(counts.totals) > 0)
    cells = np.stack([counts.wins[pair_i, pair_j], counts.wins[pair_j, pair_i], counts.all_ties[pair_i, pair_j]])
    return counts, fit, cells


@pytest.mark.parametrize("mode", ["half", "davidson"])
@pytest.mark.usefixtures("kernels")
def test_rounds_do_not_depend_on_how_many_threads_share_them(mode: TieMode) -> None:
    counts, fit, _ = _fit_and_cells(random_battles(21, n_models=7, n_battles=2000), mode)
    one = bt_bootstrap.bootstrap_thetas(counts, fit, mode, 150, np.random.default_rng(9), workers=1)
    two = bt_bootstrap.bootstrap_thetas(counts, fit, mode, 150, np.random.default_rng(9), workers=2)
    assert np.array_equal(one, two)


@pytest.mark.parametrize("mode", ["half", "davidson"])
@pytest.mark.usefixtures("kernels")
def test_chord_steps_reach_the_maximum_likelihood_of_each_resample(mode: TieMode) -> None:
    counts, fit, cells = _fit_and_cells(random_battles(22, n_models=9, n_battles=4000), mode)
    pair_i, pair_j = np.nonzero(np.triu(counts.totals) > 0)
    draws = MultinomialSampler(cells.ravel()).draw(40, np.random.default_rng(5)).reshape(3, len(pair_i), 40)
    solver = bt_bootstrap._ChordSolver(counts, fit, mode, pair_i, pair_j, cells, 1e-6)
    chord = solver.solve(draws)
    newton = bt_fit.center(
        solver._newton(draws, np.repeat(solver.x0[None], 40, axis=0))[:, : len(counts.models)], fit.labels
    )
    assert np.abs(chord - newton).max() * bt_fit.RATING_SCALE < 1e-6


def test_bootstrap_spread_matches_per_round_multinomial_refits() -> None:
    # A reference built the plain way: numpy's multinomial per round, each round refitted by full Newton.
    battles = random_battles(23, n_models=6, n_battles=3000)
    counts, fit, cells = _fit_and_cells(battles, "half")
    pair_i, pair_j = np.nonzero(np.triu(counts.totals) > 0)
    rng = np.random.default_rng(11)
    drawn = rng.multinomial(cells.sum(), cells.ravel() / cells.sum(), size=2000)
    solver = bt_bootstrap._ChordSolver(counts, fit, "half", pair_i, pair_j, cells, 1e-6)
    reference_draws = drawn.reshape(2000, 3, len(pair_i)).transpose(1, 2, 0).astype(np.float64)
    reference = bt_fit.center(solver._newton(reference_draws, np.repeat(fit.theta[None], 2000, axis=0)), fit.labels)
    ours = bt_bootstrap.bootstrap_thetas(counts, fit, "half", 2000, np.random.default_rng(12))
    assert np.allclose(ours.mean(axis=0), reference.mean(axis=0), atol=0.15 * reference.std(axis=0).min())
    assert np.allclose(ours.std(axis=0), reference.std(axis=0), rtol=0.1)


def test_sparse_comparison_graphs_use_the_pair_list_and_reach_the_same_fits() -> None:
    rng = np.random.default_rng(31)
    strength = rng.normal(0, 1, 12)
    battles = []
    for i in range(12):
        for j in ((i + 1) % 12, (i + 5) % 12):
            for _ in range(150):
                u = rng.random()
                p = 1 / (1 + np.exp(strength[j] - strength[i]))
                battles.append((f"m{i}", f"m{j}", "tie" if u < 0.1 else "model_a" if u < 0.1 + 0.9 * p else "model_b"))
    counts, fit, cells = _fit_and_cells(battles, "half")
    pair_i, pair_j = np.nonzero(np.triu(counts.totals) > 0)
    solver = bt_bootstrap._ChordSolver(counts, fit, "half", pair_i, pair_j, cells, 1e-6)
    assert not solver.sums.dense
    draws = MultinomialSampler(cells.ravel()).draw(30, np.random.default_rng(6)).reshape(3, len(pair_i), 30)
    newton = bt_fit.center(solver._newton(draws, np.repeat(solver.x0[None], 30, axis=0)), fit.labels)
    assert np.abs(solver.solve(draws) - newton).max() * bt_fit.RATING_SCALE < 1e-6


@pytest.mark.parametrize(
    "battles", [random_battles(24, n_models=8, n_battles=3000), random_battles(25, n_models=4, n_battles=30)]
)
def test_the_compiled_chord_steps_match_the_numpy_ones(
    battles: list[tuple[str, str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    if compiled.kernels is None:
        pytest.skip("the compiled kernels are not built (test_compiled fails for that)")
    counts, fit, cells = _fit_and_cells(battles, "half")
    pair_i, pair_j = np.nonzero(np.triu(counts.totals) > 0)
    draws = MultinomialSampler(cells.ravel()).draw(50, np.random.default_rng(8)).reshape(3, len(pair_i), 50)
    solver = bt_bootstrap._ChordSolver(counts, fit, "half", pair_i, pair_j, cells, 1e-6)
    theta, unsettled, lost = solver._compiled_half_chord(draws)
    numpy_theta, numpy_unsettled, numpy_lost = solver._half_chord(draws)
    settled = ~(unsettled | numpy_unsettled)
    assert settled.sum() >= (40 if len(battles) > 30 else 1)
    assert np.abs(theta[settled] - numpy_theta[settled]).max() * bt_fit.RATING_SCALE < 1e-6
    assert np.array_equal(lost, numpy_lost)
    # The few battles of the second case lose edges in some rounds; the first never does.
    assert lost.any() == (len(battles) == 30)
    with_kernels = solver.solve(draws)
    monkeypatch.setattr(compiled, "kernels", None)
    assert np.abs(with_kernels - solver.solve(draws)).max() * bt_fit.RATING_SCALE < 2e-6


@pytest.mark.parametrize("mode", ["half", "davidson"])
def test_rounds_that_lose_a_rare_edge_keep_their_chord_fit_unless_it_splits_the_graph(
    mode: TieMode, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Four models that met often, and one pair that met once: a third of the rounds lose that edge.
    wins = np.array([[0, 120, 90, 1], [80, 0, 110, 70], [110, 90, 0, 100], [0, 130, 100, 0]])
    ties = np.array([[0, 10, 10, 0], [10, 0, 10, 10], [10, 10, 0, 10], [0, 10, 10, 0]])
    counts = BattleCounts.from_arrays(["a", "b", "c", "d"], wins=wins, ties=ties)
    fit = _point_fit(counts, mode, DEFAULT_PRIOR, 1e-9, [])
    assert fit.prior == 0.0
    refits: list[int] = []
    newton = bt_bootstrap._ChordSolver._newton

    def counted(self: bt_bootstrap._ChordSolver, draws: np.ndarray, x: np.ndarray, *chord: np.ndarray) -> np.ndarray:
        refits.append(len(x))
        return newton(self, draws, x, *chord)

    monkeypatch.setattr(bt_bootstrap._ChordSolver, "_newton", counted)
    fast = bt_bootstrap.bootstrap_thetas(counts, fit, mode, 128, np.random.default_rng(3))
    assert sum(refits) == 0
    # Refitting every round that lost the edge by full Newton (what was done before) gives the same ratings.
    never = lambda self, draws, rounds: np.zeros(len(rounds), bool)  # noqa: E731
    monkeypatch.setattr(bt_bootstrap._ChordSolver, "_lost_edge_fit_stands", never)
    slow = bt_bootstrap.bootstrap_thetas(counts, fit, mode, 128, np.random.default_rng(3))
    assert 20 < sum(refits) < 128
    assert np.abs(fast - slow).max() * bt_fit.RATING_SCALE < 1e-4


def test_a_round_whose_pairs_no_longer_connect_the_models_is_refitted_with_the_prior() -> None:
    wins = np.array([[0, 50, 1], [40, 0, 0], [0, 0, 0]])
    counts = BattleCounts.from_arrays(["a", "b", "c"], wins=wins + np.array([[0, 0, 0], [0, 0, 0], [1, 0, 0]]))
    fit = _point_fit(counts, "half", DEFAULT_PRIOR, 1e-9, [])
    pair_i, pair_j = np.nonzero(np.triu(counts.totals) > 0)
    cells = np.stack([counts.wins[pair_i, pair_j], counts.wins[pair_j, pair_i], counts.all_ties[pair_i, pair_j]])
    solver = bt_bootstrap._ChordSolver(counts, fit, "half", pair_i, pair_j, cells, 1e-9)
    draws = np.stack([cells, cells]).transpose(1, 2, 0).astype(np.float64)
    draws[:, 1, 1] = 0.0  # round 1: pair (a, c) did not meet
    assert solver._without_mle(draws, np.array([0, 1])).tolist() == [False, True]


def test_the_vectorised_mle_check_agrees_with_the_graph_algorithms() -> None:
    rng = np.random.default_rng(8)
    weights = 1.0 / (1.0 + (np.arange(25) / 6.0) ** 3)
    a = rng.choice(25, 1800, p=weights / weights.sum())
    b = rng.choice(25, 1800, p=weights / weights.sum())
    keep = a != b
    outcome = np.where(rng.random(1800) < 0.1, 2, np.where(rng.random(1800) < 0.6, 0, 1))[keep]
    labels = ["model_a", "model_b", "tie"]
    counts = aggregate_battles((f"m{x}", f"m{y}", labels[w]) for x, y, w in zip(a[keep], b[keep], outcome, strict=True))
    fit = _point_fit(counts, "half", DEFAULT_PRIOR, 1e-6, [])
    pair_i, pair_j = np.nonzero(np.triu(counts.totals) > 0)
    cells = np.stack([counts.wins[pair_i, pair_j], counts.wins[pair_j, pair_i], counts.all_ties[pair_i, pair_j]])
    solver = bt_bootstrap._ChordSolver(counts, fit, "half", pair_i, pair_j, cells, 1e-6)
    draws = MultinomialSampler(cells.ravel()).draw(200, np.random.default_rng(4)).reshape(3, len(pair_i), 200)
    wins, ties = solver._dense(draws.astype(np.float64))
    expected = np.zeros(200, dtype=bool)
    expected[bt_bootstrap._rounds_without_mle(wins, ties, fit.labels)] = True
    assert 10 < expected.sum() < 190
    assert solver._without_mle(draws, np.arange(200)).tolist() == expected.tolist()


def test_the_pair_newton_refit_matches_the_dense_newton_fit() -> None:
    # Long-tailed data with rare pairs; rounds with and without the prior.
    rng = np.random.default_rng(11)
    weights = 1.0 / (1.0 + (np.arange(30) / 8.0) ** 3)
    a = rng.choice(30, 6000, p=weights / weights.sum())
    b = rng.choice(30, 6000, p=weights / weights.sum())
    keep = a != b
    outcome = np.where(rng.random(6000) < 0.1, 2, np.where(rng.random(6000) < 0.5, 0, 1))[keep]
    labels = ["model_a", "model_b", "tie"]
    counts = aggregate_battles((f"m{x}", f"m{y}", labels[w]) for x, y, w in zip(a[keep], b[keep], outcome, strict=True))
    fit = _point_fit(counts, "half", DEFAULT_PRIOR, 1e-6, [])
    pair_i, pair_j = np.nonzero(np.triu(counts.totals) > 0)
    cells = np.stack([counts.wins[pair_i, pair_j], counts.wins[pair_j, pair_i], counts.all_ties[pair_i, pair_j]])
    solver = bt_bootstrap._ChordSolver(counts, fit, "half", pair_i, pair_j, cells, 1e-9)
    draws = MultinomialSampler(cells.ravel()).draw(48, np.random.default_rng(2)).reshape(3, len(pair_i), 48)
    wins, ties = solver._dense(draws.astype(np.float64))
    assert bt_bootstrap._rounds_without_mle(wins, ties, fit.labels) == []
    prior = np.where(np.arange(48) % 2 == 0, DEFAULT_PRIOR, 0.0)  # both kinds of round in one batch
    start = np.repeat(fit.theta[None], 48, axis=0)
    dense = bt_fit.newton(wins + ties / 2, None, fit.labels, prior, start, None, 1e-9).theta
    pairs = solver._pair_newton(draws.astype(np.float64), prior, start)
    difference = bt_fit.center(dense, fit.labels) - bt_fit.center(pairs, fit.labels)
    assert np.abs(difference).max() * bt_fit.RATING_SCALE < 1e-6


def _long_tailed_chunk(n_rounds: int) -> tuple[bt_bootstrap._ChordSolver, np.ndarray, PointFit]:
    """Return a solver on long-tailed battles with rare pairs (30 models, 6,000 battles) and a chunk of draws."""
    rng = np.random.default_rng(11)
    weights = 1.0 / (1.0 + (np.arange(30) / 8.0) ** 3)
    a = rng.choice(30, 6000, p=weights / weights.sum())
    b = rng.choice(30, 6000, p=weights / weights.sum())
    keep = a != b
    outcome = np.where(rng.random(6000) < 0.1, 2, np.where(rng.random(6000) < 0.5, 0, 1))[keep]
    labels = ["model_a", "model_b", "tie"]
    counts = aggregate_battles((f"m{x}", f"m{y}", labels[w]) for x, y, w in zip(a[keep], b[keep], outcome, strict=True))
    fit = _point_fit(counts, "half", DEFAULT_PRIOR, 1e-6, [])
    pair_i, pair_j = np.nonzero(np.triu(counts.totals) > 0)
    cells = np.stack([counts.wins[pair_i, pair_j], counts.wins[pair_j, pair_i], counts.all_ties[pair_i, pair_j]])
    solver = bt_bootstrap._ChordSolver(counts, fit, "half", pair_i, pair_j, cells, 1e-6)
    draws = MultinomialSampler(cells.ravel()).draw(n_rounds, np.random.default_rng(2))
    return solver, draws.reshape(3, len(pair_i), n_rounds).astype(np.float64), fit


def _exact_fits(solver: bt_bootstrap._ChordSolver, draws: np.ndarray, fit: PointFit) -> np.ndarray:
    """Return each round's centred maximum-likelihood fit by dense Newton to 1e-10 points (the prior where the
    round has no MLE)."""
    rounds = draws.shape[2]
    prior = np.zeros(rounds)
    prior[solver._without_mle(draws, np.arange(rounds))] = DEFAULT_PRIOR
    wins, ties = solver._dense(draws)
    start = np.repeat(fit.theta[None], rounds, axis=0)
    result = bt_fit.newton(wins + ties / 2, None, fit.labels, prior, start, None, 1e-10)
    assert result.converged.all()
    return bt_fit.center(result.theta, fit.labels)


@pytest.mark.usefixtures("kernels")
def test_rounds_whose_chord_steps_stop_short_still_reach_their_maximum_likelihood() -> None:
    # Rare models move a lot in a resample: the point fit's Hessian leaves some rounds unsettled after the capped
    # chord steps, and those are finished by Newton steps from where the chord steps got to.
    solver, draws, fit = _long_tailed_chunk(64)
    unsettled = solver._half_chord(draws)[1]
    assert 5 <= unsettled.sum() <= 60
    assert np.abs(solver.solve(draws) - _exact_fits(solver, draws, fit)).max() * bt_fit.RATING_SCALE < 1e-6


def test_rounds_whose_lost_edges_are_bridged_keep_the_data_strongly_connected() -> None:
    # Few battles: many rounds lose edges, some without a detour, some splitting the graph.
    rng = np.random.default_rng(8)
    weights = 1.0 / (1.0 + (np.arange(25) / 6.0) ** 3)
    a = rng.choice(25, 1800, p=weights / weights.sum())
    b = rng.choice(25, 1800, p=weights / weights.sum())
    keep = a != b
    outcome = np.where(rng.random(1800) < 0.1, 2, np.where(rng.random(1800) < 0.6, 0, 1))[keep]
    labels = ["model_a", "model_b", "tie"]
    counts = aggregate_battles((f"m{x}", f"m{y}", labels[w]) for x, y, w in zip(a[keep], b[keep], outcome, strict=True))
    fit = _point_fit(counts, "half", DEFAULT_PRIOR, 1e-6, [])
    pair_i, pair_j = np.nonzero(np.triu(counts.totals) > 0)
    cells = np.stack([counts.wins[pair_i, pair_j], counts.wins[pair_j, pair_i], counts.all_ties[pair_i, pair_j]])
    solver = bt_bootstrap._ChordSolver(counts, fit, "half", pair_i, pair_j, cells, 1e-6)
    draws = MultinomialSampler(cells.ravel()).draw(200, np.random.default_rng(4)).reshape(3, len(pair_i), 200)
    forward, backward = draws[0] + draws[2] > 0, draws[1] + draws[2] > 0
    bridged = solver._bridged(forward, backward)
    split = solver._not_strongly_connected(forward, backward)
    assert 10 < bridged.sum() < 190
    assert not (bridged & split).any()
    assert (~bridged & ~split).any()  # some rounds without a detour still hold together: the search decides
