"""AlpacaEval 2's length-controlled win rate (Dubois et al. 2024, "Length-Controlled AlpacaEval").

One model against one baseline. Each annotation has a preference p in [1, 2] (1 the baseline's output wins, 2 the
model's, 1.5 a draw; AlpacaEval's 0 also means a draw), the character lengths of the baseline's and the model's
outputs, and optionally the instruction's difficulty. A generalised linear model predicts the preference from

    logit P(model wins) = w_len * tanh(delta / sd(delta)) + w_diff * difficulty + w_model,

with delta = len(baseline output) - len(model output), fitted to the continuous targets y = p - 1 (cross-entropy),
with an L1 penalty whose strength is chosen by 5-fold cross-validation over C in logspace(-4, 4, 10), the folds
grouping each annotation's two weighted copies and dealt round-robin from the last annotation (the assignment of
scikit-learn's GroupKFold for equal groups, so the choice of C is alpaca_eval's). The length-controlled win rate is
the model's mean predicted preference with the length term set to zero:

    LC = 100 * mean_i sigmoid(w_diff * difficulty_i + w_model),  standard error = 100 * sem of those predictions.

Without difficulties this is alpaca_eval's ``length_controlled_minimal`` GLM; with them its
``length_controlled_noreg``. Its default ``length_controlled_v1`` also regularises towards two "gamed" baselines
whose annotations alpaca_eval downloads (``df_gamed.csv``): pass them as ``reference`` to get that GLM.
Checked against the ``alpaca_eval`` package's own ``get_length_controlled_winrate`` in
``tests/scoring/test_length_controlled.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import special

__all__ = ["LcReference", "LcResult", "estimate_difficulty", "length_controlled_winrate", "raw_winrate"]

FloatArray = npt.NDArray[np.float64]
CS = np.logspace(-4, 4, 10)
N_SPLITS = 5
REGULARIZE_TO_BASELINE = 0.2  # alpaca_eval's length_controlled_v1 weight of the gamed baselines' annotations
MAX_ANNOTATIONS = 5_000_000


@dataclass(frozen=True)
class LcReference:
    """Annotations of other systems that regularise the fit (alpaca_eval's gamed baselines, ``df_gamed.csv``).

    ``std_delta_len`` is already standardised; ``not_gamed`` is False for the gamed rows, which get the weight
    ``REGULARIZE_TO_BASELINE / 2``.
    """

    preference: FloatArray
    std_delta_len: FloatArray
    difficulty: FloatArray
    not_gamed: npt.NDArray[np.bool_]


@dataclass(frozen=True)
class LcResult:
    """The raw and length-controlled win rates (percent) with their standard errors and the GLM's weights."""

    win_rate: float
    standard_error: float
    length_controlled_winrate: float
    lc_standard_error: float
    n_wins: int
    n_wins_base: int
    n_draws: int
    n_total: int
    weights: dict[str, float]
    c: float

    def as_dict(self) -> dict[str, object]:
        """Return the result with alpaca_eval's leaderboard column names."""
        return {
            "win_rate": self.win_rate,
            "standard_error": self.standard_error,
            "length_controlled_winrate": self.length_controlled_winrate,
            "lc_standard_error": self.lc_standard_error,
            "n_wins": self.n_wins,
            "n_wins_base": self.n_wins_base,
            "n_draws": self.n_draws,
            "n_total": self.n_total,
            "glm_weights": self.weights,
            "glm_c": self.c,
        }


def _preferences(preference: npt.ArrayLike) -> FloatArray:
    p = np.asarray(preference, dtype=np.float64)
    p = np.where(p == 0, 1.5, p)
    if p.ndim != 1 or not np.all(np.isfinite(p)) or np.any((p < 1) | (p > 2)):
        raise ValueError("preferences must be finite numbers in [1, 2] (or 0 for a draw)")
    return p


def _sem(values: FloatArray) -> float:
    return float(np.std(values, ddof=1) / np.sqrt(values.size)) if values.size > 1 else float("nan")


def raw_winrate(preference: npt.ArrayLike) -> dict[str, float]:
    """Return alpaca_eval's raw win rate of the model (percent), its standard error and the counts."""
    y = _preferences(preference) - 1
    return {
        "win_rate": float(y.mean() * 100) if y.size else float("nan"),
        "standard_error": _sem(y) * 100,
        "n_wins": int((y > 0.5).sum()),
        "n_wins_base": int((y < 0.5).sum()),
        "n_draws": int((y == 0.5).sum()),
        "n_total": int(y.size),
    }


def _objective(beta: FloatArray, x: FloatArray, y: FloatArray, weight: FloatArray, c: float) -> float:
    """Return C * weighted cross-entropy + L1 norm of beta (liblinear's L1 logistic objective, no intercept)."""
    z = x @ beta
    ce = weight * (y * np.logaddexp(0.0, -z) + (1 - y) * np.logaddexp(0.0, z))
    return c * float(ce.sum()) + float(np.abs(beta).sum())


def _newton_direction(g: FloatArray, h: FloatArray, beta: FloatArray) -> FloatArray:
    """Return d minimising g.d + d'Hd/2 + |beta + d|_1, by coordinate descent (a handful of coordinates)."""
    d = np.zeros_like(beta)
    for _ in range(200):
        before = d.copy()
        for j in range(beta.size):
            if h[j, j] <= 0:
                continue
            # the quadratic in d_j: a d_j^2 / 2 + b d_j + |beta_j + d_j|
            a, b = h[j, j], g[j] + h[j] @ d - h[j, j] * d[j]
            u = beta[j] - b / a  # the minimiser of the smooth part in terms of beta_j + d_j
            d[j] = np.sign(u) * max(abs(u) - 1 / a, 0.0) - beta[j]
        if np.max(np.abs(d - before)) < 1e-13:
            break
    return d


def _fit(x: FloatArray, y: FloatArray, weight: FloatArray, c: float) -> FloatArray:
    """Return the L1-penalised logistic weights (no intercept) for continuous targets y, by proximal Newton."""
    beta = np.zeros(x.shape[1])
    value = _objective(beta, x, y, weight, c)
    for _ in range(100):
        p = special.expit(x @ beta)
        g = c * (x.T @ (weight * (p - y)))
        h = c * (x.T * (weight * p * (1 - p))) @ x + 1e-12 * np.eye(beta.size)
        d = _newton_direction(g, h, beta)
        if np.max(np.abs(d)) < 1e-10:
            break
        decrease = g @ d + np.abs(beta + d).sum() - np.abs(beta).sum()
        step = 1.0
        while step > 1e-10:
            trial = beta + step * d
            trial_value = _objective(trial, x, y, weight, c)
            if trial_value <= value + 1e-4 * step * decrease:
                break
            step /= 2
        beta, value = trial, trial_value
    return beta


def _cross_entropy(x: FloatArray, y: FloatArray, weight: FloatArray, beta: FloatArray) -> float:
    p = np.clip(special.expit(x @ beta), 1e-15, 1 - 1e-15)
    return float(-np.mean(weight * (y * np.log(p) + (1 - y) * np.log(1 - p))))


def _choose_c(x: FloatArray, y: FloatArray, weight: FloatArray) -> float:
    """Return the C of CS with the lowest mean held-out cross-entropy over the folds of the model's annotations.

    Reference rows (the gamed baselines, listed first) are dealt into folds with the model's, as alpaca_eval's
    GroupKFold does on the concatenated frame; the held-out cross-entropy is weighted as the fit, as alpaca_eval's
    scorer.
    """
    n = x.shape[0]
    fold = (n - 1 - np.arange(n)) % N_SPLITS
    scores = np.zeros(CS.size)
    for f in range(N_SPLITS):
        test, train = fold == f, fold != f
        for i, c in enumerate(CS):
            beta = _fit(x[train], y[train], weight[train], float(c))
            scores[i] += _cross_entropy(x[test], y[test], weight[test], beta)
    return float(CS[int(np.argmin(scores))])


def length_controlled_winrate(
    *,
    preference: npt.ArrayLike,
    baseline_length: npt.ArrayLike,
    model_length: npt.ArrayLike,
    difficulty: npt.ArrayLike | None = None,
    reference: LcReference | None = None,
) -> LcResult:
    """Return the model's raw and length-controlled win rates against the baseline.

    Arrays are one entry per annotation. ``difficulty`` (one per annotation: its instruction's difficulty) adds the
    difficulty term; ``reference`` (which needs ``difficulty``) adds alpaca_eval's regularisation to the gamed
    baselines. With fewer than N_SPLITS annotations the win rates are returned and the LC fields are nan.
    """
    p = _preferences(preference)
    base_len = np.asarray(baseline_length, dtype=np.float64)
    model_len = np.asarray(model_length, dtype=np.float64)
    if base_len.shape != p.shape or model_len.shape != p.shape:
        raise ValueError("preference, baseline_length and model_length must have one entry per annotation")
    if p.size > MAX_ANNOTATIONS:
        raise ValueError(f"at most {MAX_ANNOTATIONS:,} annotations per model")
    raw = raw_winrate(p)
    names = ["np.tanh(std_delta_len)"]
    delta = base_len - model_len
    sd = float(np.std(delta, ddof=1)) if delta.size > 1 else 0.0
    std_delta = delta / sd if sd > 0 else np.zeros_like(delta)
    columns = [np.tanh(std_delta)]
    test_columns = [np.zeros_like(delta)]
    if difficulty is not None:
        diff = np.asarray(difficulty, dtype=np.float64)
        if diff.shape != p.shape or not np.all(np.isfinite(diff)):
            raise ValueError("difficulty must be finite, one entry per annotation")
        names.append("instruction_difficulty")
        columns.append(diff)
        test_columns.append(diff)
    elif reference is not None:
        raise ValueError("a reference needs the instructions' difficulty")
    names.append("not_gamed_baseline.astype(float)")
    columns.append(np.ones_like(delta))
    test_columns.append(np.ones_like(delta))
    x = np.column_stack(columns)
    y = p - 1
    weight = np.ones_like(y)
    if reference is not None:
        ref_x = np.column_stack(
            [np.tanh(reference.std_delta_len), reference.difficulty, reference.not_gamed.astype(np.float64)]
        )
        ref_w = np.where(reference.not_gamed, 1.0, REGULARIZE_TO_BASELINE / 2)
        x = np.vstack([ref_x, x])
        y = np.concatenate([_preferences(reference.preference) - 1, y])
        weight = np.concatenate([ref_w, weight])
    if p.size < N_SPLITS:
        return _result(raw, float("nan"), float("nan"), {}, float("nan"))
    c = _choose_c(x, y, weight)
    beta = _fit(x, y, weight, c)
    predicted = special.expit(np.column_stack(test_columns) @ beta)
    weights = dict(zip(names, map(float, beta), strict=True))
    return _result(raw, float(predicted.mean() * 100), _sem(predicted) * 100, weights, c)


def _result(raw: dict[str, float], lc: float, lc_se: float, weights: dict[str, float], c: float) -> LcResult:
    return LcResult(
        win_rate=raw["win_rate"],
        standard_error=raw["standard_error"],
        length_controlled_winrate=lc,
        lc_standard_error=lc_se,
        n_wins=int(raw["n_wins"]),
        n_wins_base=int(raw["n_wins_base"]),
        n_draws=int(raw["n_draws"]),
        n_total=int(raw["n_total"]),
        weights=weights,
        c=c,
    )


def estimate_difficulty(instruction: npt.ArrayLike, preference: npt.ArrayLike) -> FloatArray:
    """Return each annotation's instruction difficulty estimated from all models' annotations against the baseline.

    The difficulty of an instruction is the log-odds of the baseline's preference mass on it over every model:
    log((B + 0.5) / (M + 0.5)), B the sum of 2 - p and M the sum of p - 1 over the instruction's annotations. It
    stands in for alpaca_eval's precomputed ``instruction_difficulty.csv`` (fitted on its 805 instructions across
    many models), which other prompts do not have; the GLM fits the difficulty's weight, so any affine rescaling
    of it gives the same result.
    """
    p = _preferences(preference)
    ids, inverse = np.unique(np.asarray(instruction), return_inverse=True)
    base = np.bincount(inverse, weights=2 - p, minlength=ids.size)
    model = np.bincount(inverse, weights=p - 1, minlength=ids.size)
    per_instruction: FloatArray = np.log((base + 0.5) / (model + 0.5))
    return per_instruction[inverse]
