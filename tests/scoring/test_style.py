"""Style control (scoring/style.py) against independent fits of the same objective: a plain per-battle scipy fit of
FastChat's ``compute_style_control`` objective, scikit-learn's LogisticRegression and statsmodels' Logit."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.special import expit

from scoring import style
from scoring.style import StyleBattles, StyleFitError, style_counts, style_leaderboard
from scoring.style_draws import ClassSampler

TRUE_BETA = np.array([1.2, 0.25, 0.35, 0.15])


def simulated(n: int, n_models: int, seed: int, ties: float = 0.1, skew: float = 0.0) -> StyleBattles:
    """Return battles drawn from the contextual Bradley-Terry model with known ratings and style effects."""
    rng = np.random.default_rng(seed)
    strength = rng.normal(0.0, 0.4, n_models)
    popularity = 1.0 / (1.0 + np.arange(n_models)) ** skew
    popularity /= popularity.sum()
    a = rng.choice(n_models, size=n, p=popularity)
    b = (a + 1 + rng.choice(n_models - 1, size=n)) % n_models
    counts_a = np.column_stack(
        [rng.integers(10, 1500, n), rng.integers(0, 6, n), rng.integers(0, 12, n), rng.integers(0, 9, n)]
    )
    counts_b = np.column_stack(
        [rng.integers(10, 1500, n), rng.integers(0, 6, n), rng.integers(0, 12, n), rng.integers(0, 9, n)]
    )
    raw = (counts_a - counts_b) / (counts_a + counts_b + 1)
    p = expit(math.log(10) * (strength[a] - strength[b]) + raw @ TRUE_BETA)
    outcome = np.where(rng.random(n) < p, 0, 1)
    tie = rng.random(n) < ties
    outcome[tie] = np.where(rng.random(int(tie.sum())) < 0.3, 3, 2)
    return StyleBattles(
        models=tuple(f"model-{i:02d}" for i in range(n_models)),
        model_a=a.astype(np.int64),
        model_b=b.astype(np.int64),
        outcome=outcome.astype(np.int64),
        counts_a=counts_a.astype(np.int64),
        counts_b=counts_b.astype(np.int64),
        weights=np.ones(n, dtype=np.int64),
    )


def fastchat_features(battles: StyleBattles) -> np.ndarray:
    """Return FastChat's preprocess_for_style features, written out per battle: ratio, then np.mean / np.std."""
    diff = (battles.counts_a - battles.counts_b).astype(float)
    ratio = diff / (battles.counts_a + battles.counts_b + 1.0)
    out: np.ndarray = (ratio - ratio.mean(axis=0)) / ratio.std(axis=0)
    return out


def reference_fit(battles: StyleBattles, reg: float) -> tuple[np.ndarray, np.ndarray]:
    """Minimise FastChat's contextual BT objective over the battles one by one (L-BFGS run to tight tolerance).

    Loss: -sum(y log p + (1 - y) log(1 - p)) + reg / 2 * |params|^2, p = expit(ln10 (r_a - r_b) + f . beta),
    y = 1, 0 or 1/2 for ties; ratings 1000 + 400 r.
    """
    features = fastchat_features(battles)
    y = np.select([battles.outcome == 0, battles.outcome == 1], [1.0, 0.0], 0.5)
    m = len(battles.models)
    alpha = math.log(10.0)

    def objective(params: np.ndarray) -> tuple[float, np.ndarray]:
        logits = alpha * (params[battles.model_a] - params[battles.model_b]) + features @ params[m:]
        p = expit(logits)
        value = -np.sum(y * np.log(p) + (1 - y) * np.log(1 - p)) + reg / 2 * params @ params
        error = y - p
        grad = reg * params.copy()
        np.add.at(grad, battles.model_a, -alpha * error)
        np.add.at(grad, battles.model_b, alpha * error)
        grad[m:] -= features.T @ error
        return value, grad

    result = minimize(
        objective, np.zeros(m + 4), jac=True, method="L-BFGS-B", options={"maxiter": 20000, "gtol": 1e-10, "ftol": 0}
    )
    ratings = 1000 + 400 * result.x[:m]
    return ratings - (ratings.mean() - 1000 if reg == 0 else 0.0), result.x[m:]


def by_model(board: style.StyleLeaderboard, models: tuple[str, ...]) -> np.ndarray:
    """Return the board's ratings in the order of ``models``."""
    ratings = {row.model: row.rating for row in board.ratings}
    return np.array([ratings[name] for name in models])


@pytest.mark.parametrize("reg", [0.5, 2.0, 0.0])
def test_style_leaderboard_agrees_with_a_plain_fit_of_fastchats_objective(reg: float) -> None:
    battles = simulated(6000, 12, seed=1)
    board = style_leaderboard(battles, reg=reg)
    ratings, beta = reference_fit(battles, reg)
    assert np.abs(by_model(board, battles.models) - ratings).max() < 0.01
    assert np.allclose([row.coefficient for row in board.style], beta, atol=1e-5)


def test_style_leaderboard_agrees_with_fastchat_on_a_long_tailed_log() -> None:
    battles = simulated(20000, 40, seed=2, skew=1.5)
    board = style_leaderboard(battles, reg=0.5)
    ratings, _ = reference_fit(battles, 0.5)
    assert np.abs(by_model(board, battles.models) - ratings).max() < 0.5


def test_regularised_fit_matches_sklearn_logistic_regression_with_c_one_over_reg() -> None:
    from sklearn.linear_model import LogisticRegression

    battles = simulated(4000, 8, seed=3)
    m = len(battles.models)
    features = fastchat_features(battles)
    design = np.zeros((len(features), m + 4))
    rows = np.arange(len(features))
    design[rows, battles.model_a] = math.log(10)
    design[rows, battles.model_b] = -math.log(10)
    design[:, m:] = features
    y = np.select([battles.outcome == 0, battles.outcome == 1], [1.0, 0.0], 0.5)
    # A tie is half a win and half a loss: each battle as a win with weight y and a loss with weight 1 - y.
    stacked = np.vstack([design, design])
    labels = np.r_[np.ones(len(y)), np.zeros(len(y))]
    weights = np.r_[y, 1 - y]
    model = LogisticRegression(C=1 / 0.5, fit_intercept=False, tol=1e-12, max_iter=10000)
    model.fit(stacked, labels, sample_weight=weights)
    board = style_leaderboard(battles, reg=0.5)
    assert np.abs(by_model(board, battles.models) - (1000 + 400 * model.coef_[0, :m])).max() < 0.01
    assert np.allclose([row.coefficient for row in board.style], model.coef_[0, m:], atol=1e-5)


def test_unregularised_fit_matches_statsmodels_logit() -> None:
    import statsmodels.api as sm

    battles = simulated(5000, 8, seed=4)
    m = len(battles.models)
    features = fastchat_features(battles)
    # Model 0 is the reference (column dropped); a decisive battle counts twice, a tie once each way.
    design = np.zeros((len(features), m - 1 + 4))
    rows = np.arange(len(features))
    for column, side in ((battles.model_a, 1.0), (battles.model_b, -1.0)):
        keep = column > 0
        design[rows[keep], column[keep] - 1] = side * math.log(10)
    design[:, m - 1 :] = features
    y = np.select([battles.outcome == 0, battles.outcome == 1], [1.0, 0.0], 0.5)
    endog = np.r_[np.ceil(y), np.floor(y)]
    result = sm.Logit(endog, np.vstack([design, design])).fit(disp=0, method="newton", tol=1e-12, maxiter=100)
    theta = np.r_[0.0, result.params[: m - 1]]
    expected = 1000 + 400 * (theta - theta.mean())
    board = style_leaderboard(battles, reg=0.0)
    assert np.abs(by_model(board, battles.models) - expected).max() < 0.01
    assert np.allclose([row.coefficient for row in board.style], result.params[m - 1 :], atol=1e-6)


def test_style_coefficients_recover_the_simulated_effects() -> None:
    battles = simulated(60000, 10, seed=5, ties=0.0)
    board = style_leaderboard(battles, reg=0.0)
    std = np.array(board.feature_std)
    recovered = np.array([row.coefficient for row in board.style]) / std
    assert np.abs(recovered - TRUE_BETA).max() < 0.05


def test_identical_battles_aggregate_to_the_same_fit_as_repeated_rows() -> None:
    battles = simulated(3000, 6, seed=6)
    doubled = StyleBattles(
        models=battles.models,
        model_a=np.r_[battles.model_a, battles.model_a],
        model_b=np.r_[battles.model_b, battles.model_b],
        outcome=np.r_[battles.outcome, battles.outcome],
        counts_a=np.vstack([battles.counts_a, battles.counts_a]),
        counts_b=np.vstack([battles.counts_b, battles.counts_b]),
        weights=np.ones(6000, dtype=np.int64),
    )
    weighted = StyleBattles(**{**vars(battles), "weights": np.full(3000, 2, dtype=np.int64)})
    a, b = style_leaderboard(doubled), style_leaderboard(weighted)
    assert np.allclose(by_model(a, battles.models), by_model(b, battles.models), atol=1e-9)
    assert a.n_battles == b.n_battles == 6000


def test_bootstrap_gives_reproducible_intervals_around_the_estimate() -> None:
    battles = simulated(8000, 8, seed=7)
    first = style_leaderboard(battles, bootstrap=60, rng=np.random.default_rng(3))
    second = style_leaderboard(battles, bootstrap=60, rng=np.random.default_rng(3))
    assert first.to_dict() == second.to_dict()
    features, _, _ = style.standardise(style.raw_features(battles), battles.weights)
    design = style.build_design(battles, features)
    point, _ = style.fit(design, reg=0.5)
    one, _ = style.bootstrap_params(design, point, reg=0.5, rounds=70, rng=np.random.default_rng(5), workers=1)
    two, _ = style.bootstrap_params(design, point, reg=0.5, rounds=70, rng=np.random.default_rng(5), workers=2)
    assert np.array_equal(one, two)  # the threads share out chunks; the numbers depend on the seed alone
    for row in first.ratings:
        assert row.lower < row.rating < row.upper
        assert 1 <= row.rank_lower <= row.rank <= row.rank_upper <= len(first.ratings)
    for coefficient in first.style:
        assert coefficient.lower < coefficient.coefficient < coefficient.upper
    assert first.to_dict()["interval"] == "bootstrap"


def test_bootstrap_rounds_are_exact_refits_of_the_redrawn_battles() -> None:
    battles = simulated(3000, 6, seed=8)
    features, _, _ = style.standardise(style.raw_features(battles), battles.weights)
    design = style.build_design(battles, features)
    point, _ = style.fit(design, reg=0.5)
    rounds, failed = style.bootstrap_params(design, point, reg=0.5, rounds=3, rng=np.random.default_rng(0))
    assert failed == 0
    # One chunk of rounds, drawn from the first stream spawned from the generator's seed words.
    stream = np.random.SeedSequence(np.random.default_rng(0).integers(0, 1 << 63, size=4)).spawn(1)[0]
    draws = ClassSampler(np.rint(design.weights).astype(np.int64)).draw(3, np.random.default_rng(stream))
    for k in range(3):
        cold, _ = style.fit(design, reg=0.5, weights=draws[k])
        assert np.abs(rounds[k] - cold).max() * 400 < 5e-3  # both stop within about 0.001 points of the optimum


def test_unregularised_fit_refuses_battles_without_a_finite_estimate() -> None:
    battles = simulated(2000, 5, seed=9, ties=0.0)
    unbeaten = (battles.model_b == 0) & (battles.outcome == 0) | (battles.model_a == 0) & (battles.outcome == 1)
    keep = ~unbeaten & ~(((battles.model_a == 0) | (battles.model_b == 0)) & (battles.outcome >= 2))
    sub = StyleBattles(
        **{
            **vars(battles),
            **{
                name: getattr(battles, name)[keep]
                for name in ("model_a", "model_b", "outcome", "counts_a", "counts_b", "weights")
            },
        }
    )
    with pytest.raises(StyleFitError, match="does not exist"):
        style_leaderboard(sub, reg=0.0)
    board = style_leaderboard(sub, reg=0.5)
    assert board.ratings[0].model == "model-00"


def test_unregularised_bootstrap_leaves_out_rounds_without_an_estimate_and_says_so() -> None:
    battles = simulated(400, 5, seed=10)
    # A sixth model with one win and one loss: many redraws leave it unbeaten or winless.
    rare = StyleBattles(
        models=(*battles.models, "rare"),
        model_a=np.r_[battles.model_a, 5, 5],
        model_b=np.r_[battles.model_b, 0, 1],
        outcome=np.r_[battles.outcome, 0, 1],
        counts_a=np.vstack([battles.counts_a, [[100, 1, 2, 3], [50, 0, 0, 1]]]),
        counts_b=np.vstack([battles.counts_b, [[80, 0, 1, 1], [70, 2, 1, 0]]]),
        weights=np.ones(402, dtype=np.int64),
    )
    board = style_leaderboard(rare, reg=0.0, bootstrap=40, rng=np.random.default_rng(0))
    assert any("bootstrap rounds had no finite" in text for text in board.warnings)
    assert board.bootstrap == 40


def test_a_constant_feature_gets_coefficient_zero_and_a_warning() -> None:
    battles = simulated(2000, 5, seed=11)
    flat_a, flat_b = battles.counts_a.copy(), battles.counts_b.copy()
    flat_a[:, 3] = flat_b[:, 3] = 0
    board = style_leaderboard(StyleBattles(**{**vars(battles), "counts_a": flat_a, "counts_b": flat_b}))
    assert board.style[3].coefficient == 0.0
    assert any("'bold'" in text for text in board.warnings)


def test_style_leaderboard_rejects_a_negative_regularisation() -> None:
    with pytest.raises(ValueError, match=">= 0"):
        style_leaderboard(simulated(100, 3, seed=0), reg=-1.0)


def test_style_counts_sums_arena_conv_metadata() -> None:
    metadata = {
        "sum_assistant_a_tokens": 120,
        "header_count_a": {"h1": 1, "h2": 2, "h3": 0, "h4": 0, "h5": 0, "h6": 0},
        "list_count_a": {"ordered": 3, "unordered": 4},
        "bold_count_a": {"**": 5, "__": 1},
        "sum_assistant_b_tokens": 80,
        "header_count_b": {"h1": 0, "h2": 0, "h3": 0, "h4": 0, "h5": 0, "h6": 0},
        "list_count_b": {"ordered": 0, "unordered": 2},
        "bold_count_b": {"**": 0, "__": 0},
        "sum_user_tokens": 9,
    }
    assert style_counts(metadata) == (120, 3, 7, 6, 80, 0, 2, 0)


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ("x", "must be an object"),
        ({}, "sum_assistant_a_tokens"),
        ({"sum_assistant_a_tokens": -1}, "sum_assistant_a_tokens"),
        ({"sum_assistant_a_tokens": 1, "header_count_a": {"h1": "2"}}, "header_count_a"),
        ({"sum_assistant_a_tokens": True}, "sum_assistant_a_tokens"),
    ],
)
def test_style_counts_names_the_bad_field(metadata: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        style_counts(metadata)
