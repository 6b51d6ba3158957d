"""The rater-aware Bradley-Terry fit: gradients, sandwich, planted raters, the plain fit as its special case."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import pytest
from crowdkit.aggregation import NoisyBradleyTerry
from scipy.optimize import approx_fprime

from scoring import bt_fit, rater_bt
from scoring.bradley_terry import bradley_terry_from_counts
from scoring.bt_fit import RATING_SCALE

Vote = tuple[str, str, str, str]


def _simulate(
    seed: int, *, m: int = 8, raters: int = 30, per: int = 100, kinds: Mapping[int, str] | None = None
) -> tuple[np.ndarray, list[Vote]]:
    """Return true strengths and votes: honest raters follow Bradley-Terry; planted ones are careless (coin
    flips), inverted (vote for the weaker side) or always-left."""
    rng = np.random.default_rng(seed)
    theta = np.linspace(1.2, -1.2, m)
    votes: list[Vote] = []
    for k in range(raters):
        kind = (kinds or {}).get(k, "honest")
        for _ in range(per):
            a, b = rng.choice(m, 2, replace=False)
            p = {"careless": 0.5, "left": 1.0}.get(kind, 1 / (1 + np.exp(-(theta[a] - theta[b]))))
            if kind == "inverted":
                p = 1 - p
            votes.append((f"r{k}", f"m{a}", f"m{b}", "left" if rng.random() < p else "right"))
    return theta, votes


def _rmse(ratings: Mapping[str, float], theta: np.ndarray) -> float:
    est = np.array([ratings[f"m{i}"] for i in range(len(theta))])
    true = RATING_SCALE * theta
    return float(np.sqrt(np.mean((est - est.mean() - (true - true.mean())) ** 2)))


PLANTED = {0: "careless", 1: "careless", 2: "inverted", 3: "inverted", 4: "left", 5: "left"}


def test_the_gradient_matches_finite_differences() -> None:
    _, votes = _simulate(1, m=5, raters=6, per=40)
    votes += [("r0", "m0", "m1", "tie"), ("r1", "m2", "m3", "tie")]
    cells = rater_bt.RaterCells.from_votes(votes)
    m, n = len(cells.models), len(cells.raters)
    setup = rater_bt._Setup(cells, m, n, 3.0, 1.5, 1.0, np.zeros(m, dtype=np.int32))
    rng = np.random.default_rng(2)
    x = np.concatenate([rng.normal(0, 1, m), rng.uniform(0.2, 0.9, n), rng.normal(0, 1, n)])
    numeric = approx_fprime(x, lambda y: rater_bt._objective(y, setup)[0], 1e-7)
    assert rater_bt._objective(x, setup)[1] == pytest.approx(numeric, abs=1e-6)


def _dense_sandwich(cells: rater_bt.RaterCells, fit: rater_bt.RaterFit, cluster: bool) -> np.ndarray:
    """Return the sandwich of theta from a finite-difference Hessian and per-vote scores, all parameters dense."""
    m, n = len(cells.models), len(cells.raters)
    setup = rater_bt._Setup(cells, m, n, rater_bt.RELIABILITY_PRIOR, rater_bt.BIAS_SD, fit.prior, fit.labels)
    x = np.concatenate([fit.theta, fit.reliability, fit.left_bias])

    def grad(y: np.ndarray) -> np.ndarray:
        return -rater_bt._objective(y, setup)[1] * cells.n_votes

    hess = -np.array([(grad(x + e * 1e-5) - grad(x - e * 1e-5)) / 2e-5 for e in np.eye(len(x))])
    free = np.ones(len(x), dtype=bool)
    free[m : m + n] = (fit.reliability < 1 - 1e-9) & (fit.reliability > 2 * rater_bt.MIN_RELIABILITY)
    scores = np.zeros((n if cluster else 0, len(x)))
    meat = np.zeros((len(x), len(x)))
    for c in range(len(cells.rater)):
        for outcome, count in enumerate((cells.left_wins[c], cells.right_wins[c], cells.ties[c])):
            if not count:
                continue
            won = np.array([float(outcome == k) for k in range(3)])
            one = rater_bt.RaterCells(
                cells.models,
                cells.raters,
                cells.rater[c : c + 1],
                cells.left[c : c + 1],
                cells.right[c : c + 1],
                won[:1],
                won[1:2],
                won[2:],
            )
            single = rater_bt._Setup(one, m, n, 0.0, 1e100, 1e-300, np.zeros(m, dtype=np.int32))
            score = -rater_bt._objective(x, single)[1]
            if cluster:
                scores[cells.rater[c]] += count * score
            else:
                meat += count * np.outer(score, score)
    if cluster:
        free_params = m - 1 + int(free[m:].sum())
        meat = bt_fit.cluster_factor("cr1", n, cells.n_votes, free_params) * scores.T @ scores
    idx = np.flatnonzero(free)
    inv = np.linalg.inv(((hess + hess.T) / 2)[np.ix_(idx, idx)])
    center = np.eye(m) - 1 / m
    return center @ (inv @ meat[np.ix_(idx, idx)] @ inv)[:m, :m] @ center


@pytest.mark.parametrize("cluster", [None, "rater"])
def test_the_schur_sandwich_equals_the_dense_one(cluster: rater_bt.RaterCluster | None) -> None:
    _, votes = _simulate(3, m=5, raters=8, per=120, kinds={0: "careless", 1: "left"})
    cells = rater_bt.RaterCells.from_votes(votes)
    fit = rater_bt.fit_rater_bt(cells, cluster=cluster)
    assert fit.converged
    dense = _dense_sandwich(cells, fit, cluster == "rater")
    assert np.sqrt(np.diag(fit.cov)) == pytest.approx(np.sqrt(np.diag(dense)), rel=1e-4)


@pytest.mark.parametrize(("seed", "per"), [(11, 30), (12, 100)])
def test_planted_careless_inverted_and_left_raters_hurt_the_plain_fit_more(seed: int, per: int) -> None:
    theta, votes = _simulate(seed, per=per, kinds=PLANTED)
    cells = rater_bt.RaterCells.from_votes(votes)
    board = rater_bt.rater_bradley_terry(cells)
    plain = bradley_terry_from_counts(cells.counts())
    aware = _rmse({r.model: r.rating for r in board.board.ratings}, theta)
    naive = _rmse({r.model: r.rating for r in plain.ratings}, theta)
    assert aware < 0.7 * naive
    rows = {row.rater: row for row in board.raters}
    assert min(rows[f"r{k}"].left_bias for k in (4, 5)) > 2.0
    if per >= 100:  # with 30 votes a coin-flipping rater is not told from an honest one (docs/scoring.md)
        assert max(rows[f"r{k}"].reliability for k in (0, 1, 2, 3)) < 0.8
        assert np.median([rows[f"r{k}"].reliability for k in range(6, 30)]) > 0.95
    assert max(abs(rows[f"r{k}"].left_bias) for k in range(6, 30)) < 1.2


def test_inverted_raters_get_a_reliability_near_zero_with_enough_votes() -> None:
    _, votes = _simulate(13, per=300, kinds={0: "inverted", 1: "inverted"})
    board = rater_bt.rater_bradley_terry(rater_bt.RaterCells.from_votes(votes))
    rows = {row.rater: row for row in board.raters}
    assert rows["r0"].reliability < 0.3
    assert rows["r1"].reliability < 0.3
    assert board.raters[0].rater in ("r0", "r1")  # least reliable first


def test_perfect_raters_give_the_plain_fit_within_its_standard_errors() -> None:
    _, votes = _simulate(14, m=6, raters=10, per=1500)
    cells = rater_bt.RaterCells.from_votes(votes)
    board = rater_bt.rater_bradley_terry(cells)
    plain = bradley_terry_from_counts(cells.counts())
    assert board.board.models == plain.models
    for row in plain.ratings:
        assert abs(board.board.rating(row.model).rating - row.rating) < 1.5 * row.se
    assert min(row.reliability for row in board.raters) > 0.9
    assert max(abs(row.left_bias) for row in board.raters) < 0.25


def test_raters_held_at_reliability_one_and_no_bias_give_exactly_the_plain_likelihood() -> None:
    _, votes = _simulate(15, m=6, raters=10, per=80, kinds=PLANTED)
    cells = rater_bt.RaterCells.from_votes(votes)
    fit = rater_bt.fit_rater_bt(cells, reliability_prior=1e9, bias_sd=1e-3)
    counts = cells.counts()
    win = (counts.wins + counts.all_ties / 2).astype(float)
    labels = np.zeros(len(cells.models), dtype=np.int32)
    plain = bt_fit.newton(win[None], None, labels, np.array([1.0]), np.zeros((1, len(cells.models))))
    assert RATING_SCALE * fit.theta == pytest.approx(RATING_SCALE * bt_fit.center(plain.theta, labels)[0], abs=0.02)
    cov = bt_fit.sandwich_cov(fit.theta, None, counts.wins.astype(float), counts.all_ties.astype(float), labels, 1.0)
    assert np.sqrt(np.diag(fit.cov)) == pytest.approx(np.sqrt(np.diag(cov)), rel=1e-3)


def test_the_model_order_matches_crowd_kit_noisy_bradley_terry() -> None:
    theta, votes = _simulate(16, raters=20, per=60, kinds=PLANTED)
    board = rater_bt.rater_bradley_terry(rater_bt.RaterCells.from_votes(votes))
    frame = pd.DataFrame(
        [(w, left, right, left if outcome == "left" else right) for w, left, right, outcome in votes],
        columns=["worker", "left", "right", "label"],
    )
    scores = NoisyBradleyTerry(n_iter=500).fit(frame).scores_
    assert list(board.board.models) == list(scores.sort_values(ascending=False).index)
    assert list(board.board.models) == [f"m{i}" for i in range(len(theta))]


def test_the_json_holds_each_raters_reliability_and_left_bias() -> None:
    _, votes = _simulate(17, m=4, raters=4, per=50, kinds={0: "left"})
    payload = rater_bt.rater_bradley_terry(rater_bt.RaterCells.from_votes(votes), cluster="rater").to_dict()
    assert payload["method"] == "rater_bradley_terry"
    assert payload["cluster"] == "rater"
    assert payload["rater_model"]["reliability_prior"] == rater_bt.RELIABILITY_PRIOR
    assert {row["rater"] for row in payload["rater_model"]["raters"]} == {"r0", "r1", "r2", "r3"}
    assert set(payload["rater_model"]["raters"][0]) == {"rater", "votes", "reliability", "left_bias"}
    assert sum(row["votes"] for row in payload["rater_model"]["raters"]) == 200
    assert max(payload["rater_model"]["raters"], key=lambda row: row["left_bias"])["rater"] == "r0"


def test_rows_of_one_rater_and_pair_add_up() -> None:
    cells = rater_bt.RaterCells.from_rows(
        [("a", "x", "y", 1, 0, 0), ("a", "x", "y", 2, 1, 1), ("a", "y", "x", 0, 1, 0)]
    )
    assert len(cells.rater) == 2
    assert cells.left_wins.tolist() == [3.0, 0.0]
    assert cells.ties.tolist() == [1.0, 0.0]
    assert cells.counts().wins.tolist() == [[0, 4], [1, 0]]


def test_bad_input_is_refused_with_a_clear_error() -> None:
    with pytest.raises(ValueError, match="outcome must be"):
        rater_bt.RaterCells.from_votes([("a", "x", "y", "maybe")])
    with pytest.raises(ValueError, match="itself"):
        rater_bt.RaterCells.from_votes([("a", "x", "x", "left")])
    with pytest.raises(ValueError, match="negative"):
        rater_bt.RaterCells.from_rows([("a", "x", "y", -1, 0, 0)])
    with pytest.raises(ValueError, match="no votes"):
        rater_bt.fit_rater_bt(rater_bt.RaterCells.from_rows([]))
    cells = rater_bt.RaterCells.from_votes([("a", "x", "y", "left"), ("b", "y", "x", "left")])
    with pytest.raises(ValueError, match="anchor"):
        rater_bt.rater_bradley_terry(cells, anchor=("z", 1000.0))
    other = bradley_terry_from_counts(rater_bt.RaterCells.from_votes([("a", "x", "y", "right")]).counts())
    with pytest.raises(ValueError, match="same votes"):
        rater_bt.rater_bradley_terry(cells, counts=rater_bt.RaterCells.from_votes([("a", "x", "y", "right")]).counts())
    assert other.n_battles == 1
    with pytest.raises(ValueError, match="cluster"):
        rater_bt.fit_rater_bt(cells, cluster="prompt")  # type: ignore[arg-type]


def test_a_disconnected_graph_is_fitted_per_component_and_said() -> None:
    votes = [("a", "x", "y", "left"), ("a", "y", "x", "right"), ("b", "x", "y", "tie"), ("c", "p", "q", "left")]
    votes += [("c", "q", "p", "left"), ("c", "p", "q", "right")]
    board = rater_bt.rater_bradley_terry(rater_bt.RaterCells.from_votes(votes)).board
    assert board.components == [["p", "q"], ["x", "y"]]
    assert any("2 components" in warning for warning in board.warnings)
    assert any("fewer than 30 votes" in warning for warning in board.warnings)
    assert board.rating("x").rating + board.rating("y").rating == pytest.approx(2000.0)
    assert board.rating("x").rating > board.rating("y").rating
