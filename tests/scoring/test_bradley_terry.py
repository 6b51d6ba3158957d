"""Bradley-Terry leaderboards against independent solvers and on degenerate data."""

from __future__ import annotations

import math

import choix
import numpy as np
import pytest
from scipy.optimize import minimize

from scoring import BattleCounts, aggregate_battles, bradley_terry, bradley_terry_from_counts

SCALE = 400 / math.log(10)


def random_battles(seed: int, n_models: int = 8, n_battles: int = 3000) -> list[tuple[str, str, str]]:
    """Return random battles with about 10% ties (some 'tie (bothbad)')."""
    rng = np.random.default_rng(seed)
    strength = rng.normal(0, 1, n_models)
    out = []
    for _ in range(n_battles):
        i, j = rng.choice(n_models, 2, replace=False)
        u = rng.random()
        if u < 0.07:
            winner = "tie"
        elif u < 0.1:
            winner = "tie (bothbad)"
        else:
            winner = "model_a" if rng.random() < 1 / (1 + math.exp(strength[j] - strength[i])) else "model_b"
        out.append((f"m{i}", f"m{j}", winner))
    return out


def choix_ratings(battles: list[tuple[str, str, str]]) -> dict[str, float]:
    """Fit BT with choix, ties as one win each way and wins counted twice (= half ties)."""
    names = sorted({m for a, b, _ in battles for m in (a, b)})
    index = {n: i for i, n in enumerate(names)}
    data = []
    for a, b, w in battles:
        i, j = index[a], index[b]
        data += [(i, j), (i, j)] if w == "model_a" else [(j, i), (j, i)] if w == "model_b" else [(i, j), (j, i)]
    params = choix.ilsr_pairwise(len(names), data, alpha=0, tol=1e-12, max_iter=10_000)
    params -= params.mean()
    return {n: 1000 + SCALE * params[i] for i, n in enumerate(names)}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bradley_terry_matches_choix_on_random_data(seed: int) -> None:
    battles = random_battles(seed)
    board = bradley_terry(battles)
    reference = choix_ratings(battles)
    for row in board.ratings:
        assert row.rating == pytest.approx(reference[row.model], abs=1e-4)
    assert np.mean([row.rating for row in board.ratings]) == pytest.approx(1000, abs=1e-9)


def davidson_reference(battles: list[tuple[str, str, str]]) -> tuple[dict[str, float], float]:
    """Fit Davidson's tie model by plain BFGS on the per-battle likelihood."""
    names = sorted({m for a, b, _ in battles for m in (a, b)})
    index = {n: i for i, n in enumerate(names)}
    ia = np.array([index[a] for a, _, _ in battles])
    ib = np.array([index[b] for _, b, _ in battles])
    outcome = np.array([0 if w == "model_a" else 1 if w == "model_b" else 2 for _, _, w in battles])

    def nll(x: np.ndarray) -> float:
        theta, log_nu = np.append(x[:-1], -x[:-1].sum()), x[-1]
        pa, pb, pt = np.exp(theta[ia] / 2), np.exp(theta[ib] / 2), np.exp(log_nu)
        denom = pa / pb + pb / pa + pt
        num = np.choose(outcome, [pa / pb, pb / pa, np.full(len(ia), pt)])
        return float(-(np.log(num) - np.log(denom)).sum())

    result = minimize(nll, np.zeros(len(names)), method="BFGS", options={"gtol": 1e-9})
    theta = np.append(result.x[:-1], -result.x[:-1].sum())
    return {n: 1000 + SCALE * theta[i] for i, n in enumerate(names)}, float(np.exp(result.x[-1]))


def test_davidson_matches_a_direct_likelihood_fit() -> None:
    battles = random_battles(3, n_models=5, n_battles=2000)
    board = bradley_terry(battles, ties="davidson")
    reference, nu = davidson_reference(battles)
    assert board.tie_parameter == pytest.approx(nu, rel=1e-4)
    for row in board.ratings:
        assert row.rating == pytest.approx(reference[row.model], abs=1e-2)


def test_counts_and_battles_give_the_same_leaderboard() -> None:
    battles = random_battles(4)
    counts = aggregate_battles(battles)
    same = BattleCounts.from_arrays(counts.models, counts.wins, counts.ties, counts.ties_bothbad)
    left, right = bradley_terry(battles), bradley_terry_from_counts(same)
    assert [r.rating for r in left.ratings] == pytest.approx([r.rating for r in right.ratings], abs=1e-9)


def test_leaderboard_rows_carry_counts_ranks_and_intervals() -> None:
    battles = random_battles(5)
    board = bradley_terry(battles)
    assert [row.rank for row in board.ratings] == list(range(1, 9))
    for row in board.ratings:
        assert row.votes == row.wins + row.losses + row.ties
        assert row.lower < row.rating < row.upper
        assert row.upper - row.lower == pytest.approx(2 * 1.959963984540054 * row.se)
        expected_ub = 1 + sum(other.lower > row.upper for other in board.ratings)
        assert row.rank_ub == expected_ub
    p = board.win_probability
    assert np.allclose(p + p.T, 1.0)
    gap = board.ratings[0].rating - board.ratings[1].rating
    assert p[0, 1] == pytest.approx(1 / (1 + 10 ** (-gap / 400)))


def test_ties_count_half_a_win_each_way() -> None:
    board = bradley_terry([("a", "b", "model_a"), ("a", "b", "tie"), ("a", "b", "tie (bothbad)"), ("b", "a", "tie")])
    a, b = board.rating("a"), board.rating("b")
    # a scored 1 + 1.5 = 2.5 of 4, so P(a beats b) = 0.625.
    assert a.rating - b.rating == pytest.approx(400 * math.log10(0.625 / 0.375))
    assert a.ties == 3
    assert a.ties_bothbad == 1


def test_anchor_pins_the_anchor_model_and_keeps_differences() -> None:
    battles = random_battles(6)
    free = bradley_terry(battles)
    pinned = bradley_terry(battles, anchor=("m0", 1200.0), bootstrap=50, rng=np.random.default_rng(0))
    assert pinned.rating("m0").rating == pytest.approx(1200.0)
    assert pinned.rating("m0").lower == pytest.approx(1200.0)
    diff_free = free.rating("m1").rating - free.rating("m0").rating
    assert pinned.rating("m1").rating - 1200.0 == pytest.approx(diff_free)
    with pytest.raises(ValueError, match="anchor"):
        bradley_terry(battles, anchor=("nobody", 1000.0))


def test_bootstrap_is_reproducible_from_the_seed_and_brackets_the_estimate() -> None:
    battles = random_battles(7)
    first = bradley_terry(battles, bootstrap=200, rng=np.random.default_rng(42))
    second = bradley_terry(battles, bootstrap=200, rng=np.random.default_rng(42))
    assert [r.lower for r in first.ratings] == [r.lower for r in second.ratings]
    assert first.interval == "bootstrap"
    for row in first.ratings:
        assert row.lower <= row.rating <= row.upper
    spread = first.bootstrap_ratings.std(axis=0)  # type: ignore[union-attr]
    sandwich = np.array([row.se for row in first.ratings])
    assert np.allclose(spread, sandwich, rtol=0.35)


def test_model_with_only_wins_gets_the_prior_and_a_flag() -> None:
    battles = [("a", "b", "model_a"), ("b", "c", "model_a"), ("c", "b", "model_a"), ("a", "c", "model_a")]
    board = bradley_terry(battles)
    assert board.rating("a").flags == ("only_wins",)
    assert board.prior == 1.0
    assert any("does not exist" in w for w in board.warnings)
    assert all(math.isfinite(row.rating) for row in board.ratings)
    assert board.ratings[0].model == "a"


def test_model_with_only_losses_is_flagged() -> None:
    board = bradley_terry([("a", "b", "model_a"), ("b", "a", "tie"), ("c", "a", "model_b")])
    assert board.rating("c").flags == ("only_losses",)


def test_disconnected_comparison_graph_is_detected_and_named() -> None:
    battles = [("a", "b", "model_a"), ("b", "a", "model_a"), ("c", "d", "tie"), ("d", "c", "model_a")]
    battles += [("c", "d", "model_a")]
    board = bradley_terry(battles)
    assert board.components == [["a", "b"], ["c", "d"]]
    assert any("{a, b}; {c, d}" in w for w in board.warnings)
    assert (board.rating("a").rating + board.rating("b").rating) / 2 == pytest.approx(1000)
    assert (board.rating("c").rating + board.rating("d").rating) / 2 == pytest.approx(1000)


def test_davidson_without_ties_falls_back_to_plain_bradley_terry() -> None:
    battles = [("a", "b", "model_a"), ("b", "a", "model_a"), ("a", "b", "model_a")]
    board = bradley_terry(battles, ties="davidson")
    assert board.tie_parameter is None
    assert any("no ties" in w for w in board.warnings)


def test_invalid_arguments_raise_value_errors() -> None:
    battles = random_battles(8, n_battles=200)
    with pytest.raises(ValueError, match="ties"):
        bradley_terry(battles, ties="thurstone")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="bootstrap"):
        bradley_terry(battles, bootstrap=-1)
    with pytest.raises(ValueError, match="no battles"):
        bradley_terry([])


def test_to_dict_has_the_documented_keys() -> None:
    payload = bradley_terry(random_battles(9, n_battles=300)).to_dict()
    keys = {"model", "rating", "lower", "upper", "rank", "rank_ub", "votes", "wins", "losses", "ties"}
    assert keys <= set(payload["ratings"][0])
    assert payload["win_probability"]["models"] == [row["model"] for row in payload["ratings"]]


def test_a_model_without_battles_is_flagged_and_isolated() -> None:
    counts = BattleCounts.from_arrays(["a", "b", "idle"], [[0, 3, 0], [1, 0, 0], [0, 0, 0]])
    board = bradley_terry_from_counts(counts)
    assert board.rating("idle").flags == ("no_votes",)
    assert board.components == [["a", "b"], ["idle"]]


def test_rank_spread_is_the_central_95_percent_of_each_models_bootstrap_ranks() -> None:
    from scipy.stats import rankdata

    wins = [[0, 52, 60, 70, 90], [48, 0, 51, 62, 80], [40, 49, 0, 55, 71], [30, 38, 45, 0, 60], [10, 20, 29, 40, 0]]
    counts = BattleCounts.from_arrays(["a", "b", "c", "d", "e"], wins=wins)
    board = bradley_terry_from_counts(counts, bootstrap=400, rng=np.random.default_rng(5))
    assert board.bootstrap_ratings is not None
    ranks = np.array([rankdata(-row, method="min") for row in board.bootstrap_ratings])
    for k, row in enumerate(board.ratings):
        ordered = np.sort(ranks[:, k])
        assert row.rank_lower == ordered[int(np.floor(0.025 * (len(ordered) - 1)))]
        assert row.rank_upper == ordered[int(np.ceil(0.975 * (len(ordered) - 1)))]
    spread = [(row.rank_lower, row.rank_upper) for row in board.ratings]
    assert spread[0][0] == 1
    assert spread[-1][1] == 5
    assert any(high > low for low, high in spread[:2])  # a and b are close: their ranks overlap


def test_rank_spread_without_a_bootstrap_is_the_interval_overlap() -> None:
    wins = [[0, 52, 60, 70, 90], [48, 0, 51, 62, 80], [40, 49, 0, 55, 71], [30, 38, 45, 0, 60], [10, 20, 29, 40, 0]]
    board = bradley_terry_from_counts(BattleCounts.from_arrays(["a", "b", "c", "d", "e"], wins=wins))
    for row in board.ratings:
        others = [other for other in board.ratings if other.model != row.model]
        assert row.rank_lower == row.rank_ub == 1 + sum(other.lower > row.upper for other in others)
        assert row.rank_upper == 1 + sum(other.upper >= row.lower for other in others)
    assert board.to_dict()["ratings"][0]["rank_upper"] == board.ratings[0].rank_upper
