"""Style control: Chatbot Arena's contextual Bradley-Terry (ratings fitted jointly with answer-style features).

Each battle carries four style features, ``(a - b) / (a + b + 1)`` of both answers' assistant tokens, markdown
headers, list items and bold spans, each standardised to mean 0 and standard deviation 1 over the battles
(population deviation, as FastChat's ``preprocess_for_style``). The model is a logistic regression of the outcome
(1 a wins, 0 b wins, 1/2 either tie) on ``ln(10) * (theta_a - theta_b) + features . beta``; the fit minimises the
negative log-likelihood plus ``reg / 2 * (|theta|^2 + |beta|^2)`` (FastChat's ``fit_contextual_bt``; its default
``reg`` is 0.5), or with ``reg = 0`` the unregularised maximum likelihood with each connected component's ratings
centred. Ratings are ``1000 + 400 * theta``; ``beta`` is on FastChat's standardised scale.

The fit is a damped Newton method with the structured Hessian (a weighted Laplacian over the models, a models x
features block and a features x features block), on rows aggregated over identical battles, sorted by pair so that
every pass reduces per pair with one ``np.add.reduceat``. Bootstrap rounds redraw the battles (multinomially over the
aggregated rows, as resampling battles with replacement) with the features kept as standardised on the full data,
and refit from the point estimate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.special import expit

from scoring import compiled, graph
from scoring.bradley_terry import rank_spread
from scoring.cores import idle_cores
from scoring.style_draws import ClassSampler

FEATURES = ("length", "headers", "lists", "bold")
ALPHA = math.log(10.0)
SCALE = 400.0
BASE_RATING = 1000.0
DEFAULT_REG = 0.5
MAX_ITERATIONS = 60
MAX_THETA = 40.0
STEP_TOL = 1e-5
QUADRATIC_FROM = 1e-2
PREDICTED_TOL = 2.5e-6  # 0.001 rating points
ROUND_BYTES = 64 << 20
MAX_COUNT = 10**15 - 1  # a style count (or an object's sum) beyond this is an error: no answer is that long
CHUNK_ROUNDS = 32
OUTCOME_Y = (1.0, 0.0, 0.5, 0.5)

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]


class StyleFitError(ValueError):
    """The style-controlled fit has no answer for these battles (e.g. no finite unregularised estimate)."""


@dataclass(frozen=True, eq=False)
class StyleBattles:
    """Battles with both answers' raw style counts.

    ``model_a``/``model_b`` index ``models``; ``outcome`` holds codes of ``scoring.battles.OUTCOMES`` (0 a wins,
    1 b wins, 2 tie, 3 tie (bothbad)); ``counts_a``/``counts_b`` are (n, 4) counts in ``FEATURES`` order (assistant
    tokens, headers, list items, bold spans); ``weights`` says how many identical battles each row stands for.
    """

    models: tuple[str, ...]
    model_a: IntArray
    model_b: IntArray
    outcome: IntArray
    counts_a: IntArray
    counts_b: IntArray
    weights: IntArray

    @property
    def n_battles(self) -> int:
        """Return the number of battles."""
        return int(self.weights.sum())


@dataclass(frozen=True)
class StyleRating:
    """One model's row: the style-controlled rating, its 95% bootstrap interval and rank spread."""

    model: str
    rating: float
    lower: float
    upper: float
    rank: int
    rank_ub: int
    rank_lower: int
    rank_upper: int
    votes: int


@dataclass(frozen=True)
class StyleCoefficient:
    """One style feature's coefficient (standardised scale) with its 95% bootstrap interval."""

    feature: str
    coefficient: float
    lower: float
    upper: float


@dataclass(frozen=True, eq=False)
class StyleLeaderboard:
    """A style-controlled leaderboard, best first."""

    ratings: list[StyleRating]
    style: list[StyleCoefficient]
    reg: float
    bootstrap: int
    n_battles: int
    feature_mean: tuple[float, ...]
    feature_std: tuple[float, ...]
    iterations: int
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (the CLI's and the API's output)."""
        return {
            "ratings": [vars(row).copy() for row in self.ratings],
            "style": [vars(row).copy() for row in self.style],
            "method": "style_control",
            "reg": self.reg,
            "interval": "bootstrap" if self.bootstrap else "none",
            "bootstrap": self.bootstrap,
            "n_battles": self.n_battles,
            "n_models": len(self.ratings),
            "feature_mean": dict(zip(FEATURES, self.feature_mean, strict=True)),
            "feature_std": dict(zip(FEATURES, self.feature_std, strict=True)),
            "warnings": self.warnings,
        }


_STYLE_KEYS = tuple(
    f"sum_assistant_{side}_tokens" if stem == "tokens" else f"{stem}_{side}"
    for side in ("a", "b")
    for stem in ("tokens", "header_count", "list_count", "bold_count")
)


def style_counts(metadata: Any) -> tuple[int, ...]:
    """Return the eight counts (a's tokens, headers, lists, bold, then b's) of an Arena ``conv_metadata`` object.

    Raise ValueError naming the field when one is missing or not a non-negative integer (or an object of them).
    """
    if metadata is None:
        raise ValueError("missing field 'conv_metadata' (read by --style-control)")
    if not isinstance(metadata, dict):
        raise ValueError("field 'conv_metadata' must be an object (read by --style-control)")
    out = []
    for key in _STYLE_KEYS:
        value = metadata.get(key)
        parts: list[Any] = list(value.values()) if isinstance(value, dict) else [value]
        if value is None or not all(type(part) is int and part >= 0 for part in parts):
            raise ValueError(
                f"conv_metadata.{key} must be a non-negative integer or an object of them (read by --style-control)"
            )
        total = sum(parts)
        if total > MAX_COUNT:
            raise ValueError(f"conv_metadata.{key} must be at most {MAX_COUNT} (read by --style-control)")
        out.append(total)
    return tuple(out)


def style_battles(
    models: Sequence[str], rows: Sequence[tuple[int, int, int, tuple[int, ...]]], weights: Sequence[int]
) -> StyleBattles:
    """Build StyleBattles from (model_a index, model_b index, outcome code, eight counts) rows and their weights."""
    n = len(rows)
    a = np.fromiter((row[0] for row in rows), dtype=np.int64, count=n)
    b = np.fromiter((row[1] for row in rows), dtype=np.int64, count=n)
    outcome = np.fromiter((row[2] for row in rows), dtype=np.int64, count=n)
    counts = np.array([row[3] for row in rows], dtype=np.int64).reshape(n, 8)
    return StyleBattles(
        models=tuple(models),
        model_a=a,
        model_b=b,
        outcome=outcome,
        counts_a=counts[:, :4],
        counts_b=counts[:, 4:],
        weights=np.asarray(weights, dtype=np.int64),
    )


def raw_features(battles: StyleBattles) -> FloatArray:
    """Return the (n, 4) unstandardised features (a - b) / (a + b + 1)."""
    a = battles.counts_a.astype(np.float64)
    b = battles.counts_b.astype(np.float64)
    out: FloatArray = (a - b) / (a + b + 1.0)
    return out


def standardise(raw: FloatArray, weights: NDArray[np.integer]) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Return the features standardised over the battles (weighted rows), their means and standard deviations.

    A feature that is constant over the battles (standard deviation 0) is returned as zeros.
    """
    w = weights.astype(np.float64)
    total = w.sum()
    mean = (w @ raw) / total
    std = np.sqrt(np.maximum((w @ (raw - mean) ** 2) / total, 0.0))
    safe = np.where(std > 0, std, 1.0)
    out: FloatArray = np.where(std > 0, (raw - mean) / safe, 0.0)
    return out, mean, std


@dataclass(frozen=True, eq=False)
class Design:
    """Aggregated rows in canonical orientation (a < b), sorted by pair; what every Newton pass reads."""

    n_models: int
    n_features: int
    features: FloatArray
    features_t: FloatArray
    y: FloatArray
    weights: FloatArray
    pair_of_row: IntArray
    starts: IntArray
    pair_a: IntArray
    pair_b: IntArray


_ROW_MIX = (np.arange(1, 64, 2, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)) | np.uint64(1)


def build_design(battles: StyleBattles, features: FloatArray) -> Design:
    """Orient each row so that model_a < model_b (flipping features and outcome), merge identical rows, sort by pair."""
    y = np.asarray(OUTCOME_Y)[battles.outcome]
    flip = battles.model_a > battles.model_b
    lo = np.where(flip, battles.model_b, battles.model_a)
    hi = np.where(flip, battles.model_a, battles.model_b)
    feats = np.where(flip[:, None], -features, features)
    y = np.where(flip, 1.0 - y, y)
    m = len(battles.models)
    key = np.column_stack([lo * m + hi, (2 * y).astype(np.int64), feats.view(np.int64)])
    # Sorted by pair, then by a hash of the rest, so that identical rows fall side by side (rows of one hash that
    # differ may interleave and stay apart: a cell split in two draws the same battles). Two sorts of integers:
    # np.unique(axis=0) sorts structured rows, ten times slower at a million rows.
    bits = key[:, 1:].view(np.uint64)
    mixed = bits @ _ROW_MIX[: bits.shape[1]]
    order = np.lexsort((mixed, key[:, 0]))
    ordered = key[order]
    new = np.r_[True, (ordered[1:] != ordered[:-1]).any(axis=1)]
    merged = ordered[new]
    weights = np.bincount(np.cumsum(new) - 1, battles.weights[order], len(merged)).astype(np.float64)
    pair_code = merged[:, 0]
    pairs, pair_of_row = np.unique(pair_code, return_inverse=True)
    starts = np.flatnonzero(np.r_[True, pair_code[1:] != pair_code[:-1]])
    rows = np.ascontiguousarray(merged[:, 2:]).view(np.float64)
    return Design(
        n_models=m,
        n_features=features.shape[1],
        features=rows,
        features_t=np.ascontiguousarray(rows.T),
        y=merged[:, 1] / 2.0,
        weights=weights,
        pair_of_row=pair_of_row.ravel().astype(np.int64),
        starts=starts.astype(np.int64),
        pair_a=pairs // m,
        pair_b=pairs % m,
    )


def _logits(design: Design, params: FloatArray) -> FloatArray:
    """Return each row's logit ln(10) (theta_a - theta_b) + features . beta."""
    m = design.n_models
    theta, beta = params[:m], params[m:]
    eta = (ALPHA * (theta[design.pair_a] - theta[design.pair_b])).take(design.pair_of_row)
    for k in range(design.n_features):
        eta += beta[k] * design.features_t[k]
    return eta


def loss(design: Design, params: FloatArray, *, reg: float, weights: FloatArray | None = None) -> float:
    """Return the penalised negative log-likelihood (FastChat's objective) at ``params``."""
    w = design.weights if weights is None else weights
    eta = _logits(design, params)
    return float(np.sum(w * (np.logaddexp(0.0, eta) - design.y * eta))) + 0.5 * reg * float(np.sum(params * params))


def _terms(
    design: Design,
    eta: FloatArray | None,
    params: FloatArray,
    weights: FloatArray,
    reg: float,
    probs: FloatArray | None = None,
) -> tuple[FloatArray, FloatArray]:
    """Return the gradient and the Hessian of the penalised negative log-likelihood at the rows' logits.

    ``eta`` must be the logits at ``params`` (None: computed here if needed); ``probs``, when given, their expit.
    One pass over the rows: the compiled ``style_terms`` where it is built, else p, then w (y - p), w p (1 - p) and
    w p (1 - p) x summed per pair by one reduceat.
    """
    kernels = compiled.kernels
    if kernels is not None:
        size = len(params)
        grad, hess = np.empty(size), np.empty((size, size))
        kernels.style_terms(
            design.features,
            design.y,
            weights,
            design.starts,
            design.pair_a,
            design.pair_b,
            params,
            float(reg),
            probs,
            grad,
            hess,
        )
        return grad, hess
    if eta is None:
        eta = _logits(design, params)
    return _reduced(design, _unit_terms(design, eta, weights, probs), params, reg)


def _unit_terms(
    design: Design, eta: FloatArray, weights: FloatArray | None = None, probs: FloatArray | None = None
) -> FloatArray:
    """Return the rows' (y - p, p (1 - p), p (1 - p) x), each times the row's weight when weights are given."""
    k = design.n_features
    p = expit(eta) if probs is None else probs.copy()
    stacked = np.empty((2 + k, len(eta)))
    np.subtract(design.y, p, out=stacked[0])
    p *= 1.0 - p
    stacked[1] = p
    if weights is not None:
        stacked[0] *= weights
        stacked[1] *= weights
    np.multiply(stacked[1], design.features_t, out=stacked[2:])
    return stacked


def _reduced(design: Design, stacked: FloatArray, params: FloatArray, reg: float) -> tuple[FloatArray, FloatArray]:
    """Return the gradient and the Hessian from the rows' weighted terms (``_unit_terms``)."""
    m, k = design.n_models, design.n_features
    per_pair = np.add.reduceat(stacked, design.starts, axis=1)
    pa, pb = design.pair_a, design.pair_b
    grad = reg * params
    grad[:m] -= ALPHA * (np.bincount(pa, per_pair[0], m) - np.bincount(pb, per_pair[0], m))
    grad[m:] -= design.features_t @ stacked[0]
    hess = np.zeros((m + k, m + k))
    vp = ALPHA * ALPHA * per_pair[1]
    hess[pa, pb] = -vp  # each pair once, with pa < pb
    hess[pb, pa] = -vp
    hess[np.arange(m), np.arange(m)] = np.bincount(pa, vp, m) + np.bincount(pb, vp, m)
    for j in range(k):
        column = ALPHA * per_pair[2 + j]
        hess[:m, m + j] = np.bincount(pa, column, m) - np.bincount(pb, column, m)
    hess[m:, :m] = hess[:m, m:].T
    for i in range(k):  # row dot products: faster than a (k, n) x (n, k) product
        for j in range(i, k):
            hess[m + i, m + j] = hess[m + j, m + i] = stacked[2 + i] @ design.features_t[j]
    hess[np.arange(m + k), np.arange(m + k)] += reg
    return grad, hess


def fit(
    design: Design,
    *,
    reg: float,
    weights: FloatArray | None = None,
    start: FloatArray | None = None,
    start_terms: tuple[FloatArray, FloatArray] | None = None,
) -> tuple[FloatArray, int]:
    """Return the minimising (theta, beta) vector and the number of Newton iterations.

    ``start_terms``: the rows' logits and their expit at ``start``, when many fits share the start.

    Each step is damped until the objective's slope along it at the point taken is below half its starting
    magnitude (a curvature condition that needs no logarithm; the objective is convex). With ``reg = 0`` each
    connected component's ratings are centred at 0; a StyleFitError is raised when the estimate is not finite
    (within a component some models only win or only lose) or the fit does not converge.
    """
    w = design.weights if weights is None else weights
    m = design.n_models
    labels = _unregularised_labels(design, w) if reg == 0 else None
    params = np.zeros(m + design.n_features) if start is None else start.copy()
    eta: FloatArray | None
    if start_terms is None:
        # The compiled pass computes the logits itself; the numpy twin carries them from step to step.
        eta = _logits(design, params) if compiled.kernels is None else None
        grad, hess = _terms(design, eta, params, w, reg)
    else:
        start_eta, probs = start_terms
        eta = start_eta if compiled.kernels is None else None
        grad, hess = _terms(design, start_eta, params, w, reg, probs)
    last = math.inf
    for iteration in range(1, MAX_ITERATIONS + 1):
        if labels is not None:
            # The likelihood is flat along each component's ones-vector: fix those directions.
            hess[:m, :m] += (labels[:, None] == labels[None, :]) / np.bincount(labels)[labels][:, None]
        step = _newton_step(hess, grad)
        size_of_step = float(np.abs(step).max(initial=0.0))
        # Quadratic convergence: once full steps shrink as s_next ~ C s^2, what is left after this step is about
        # s^3 / s_prev^2; below PREDICTED_TOL the step is taken without evaluating the point it leads to.
        if last < QUADRATIC_FROM * 10 and size_of_step < QUADRATIC_FROM and size_of_step**3 / last**2 < PREDICTED_TOL:
            params = params + step
            break
        params, eta, grad, hess, size = _line_step(design, params, eta, step, grad, w, reg)
        taken = size * size_of_step
        if taken < STEP_TOL and (size == 1.0 or size_of_step < STEP_TOL):
            break
        last = taken if size == 1.0 else math.inf
        if np.abs(params[:m]).max(initial=0.0) > MAX_THETA or iteration == MAX_ITERATIONS:
            raise StyleFitError(_NO_ESTIMATE)
    if labels is not None:
        for component in range(int(labels.max()) + 1):
            members = labels == component
            params[:m][members] -= params[:m][members].mean()
    return params, iteration


def _newton_step(hess: FloatArray, grad: FloatArray) -> FloatArray:
    """Return -hess^-1 grad (least squares where the Hessian is singular).

    The compiled Cholesky solve first where it is built: a multi-threaded BLAS spends more time on synchronising
    threads than on a system of a few hundred unknowns, and these solves run in threads of their own.
    """
    kernels = compiled.kernels
    if kernels is not None:
        out = np.empty_like(grad)
        if kernels.spd_solve(hess, grad, out):
            return -out
    try:
        solved = np.linalg.solve(hess, grad)
    except np.linalg.LinAlgError:
        solved = np.linalg.lstsq(hess, grad, rcond=None)[0]
    return -np.asarray(solved, dtype=np.float64)


def _line_step(
    design: Design,
    params: FloatArray,
    eta: FloatArray | None,
    step: FloatArray,
    grad: FloatArray,
    weights: FloatArray,
    reg: float,
) -> tuple[FloatArray, FloatArray | None, FloatArray, FloatArray, float]:
    """Move along ``step`` to the first point tried where the slope is below half the starting slope's magnitude.

    The full step when it lands there; otherwise points are tried by the secant rule on the slope inside the bracket
    of a negative and a positive slope. Return the new parameters, logits, gradient, Hessian and the fraction of the
    step taken.
    """
    delta = None if eta is None else _logits(design, step)  # the logits are linear in the parameters
    low, slope_low, high, size = 0.0, float(grad @ step), 1.0, 1.0
    for _ in range(MAX_ITERATIONS):
        trial = params + size * step
        trial_eta = None if eta is None or delta is None else eta + size * delta
        trial_grad, trial_hess = _terms(design, trial_eta, trial, weights, reg)
        slope = float(trial_grad @ step)
        # Not positive, or positive but under half the starting slope's size (for a quadratic, a lower point):
        # near the optimum the full Newton step lands there, give or take rounding.
        if slope <= -0.5 * slope_low or slope_low >= 0:
            break
        high = size
        size = low + (high - low) * min(0.9, max(0.1, -slope_low / (slope - slope_low)))
    return trial, trial_eta, trial_grad, trial_hess, size


_NO_ESTIMATE = (
    "the unregularised maximum likelihood does not exist for these battles (some model only wins or only loses "
    "within its part of the comparison graph); use a regularisation > 0 (FastChat's 0.5) or --min-votes"
)


def _unregularised_labels(design: Design, weights: FloatArray) -> IntArray:
    """Return each model's connected component; raise StyleFitError where the plain MLE does not exist.

    A model without battles under these weights has no estimate either.
    """
    m = design.n_models
    wins_a = np.add.reduceat(weights * design.y, design.starts)
    wins_b = np.add.reduceat(weights * (1.0 - design.y), design.starts)
    beats = np.zeros((m, m), dtype=bool)
    beats[design.pair_a[wins_a > 0], design.pair_b[wins_a > 0]] = True
    beats[design.pair_b[wins_b > 0], design.pair_a[wins_b > 0]] = True
    if not (beats.any(axis=0) | beats.any(axis=1)).all() or not graph.mle_exists(beats):
        raise StyleFitError(_NO_ESTIMATE)
    return graph.component_labels(beats)[1].astype(np.int64)


def style_leaderboard(
    battles: StyleBattles,
    *,
    reg: float = DEFAULT_REG,
    bootstrap: int = 0,
    rng: np.random.Generator | None = None,
) -> StyleLeaderboard:
    """Fit ratings and style coefficients jointly and return the leaderboard, with bootstrap intervals."""
    if reg < 0 or not math.isfinite(reg):
        raise ValueError("the regularisation must be a finite number >= 0")
    if battles.n_battles == 0:
        raise StyleFitError("no battles")
    raw = raw_features(battles)
    features, mean, std = standardise(raw, battles.weights)
    warnings = [
        f"style feature {name!r} is the same in every battle: its coefficient is 0"
        for name, deviation in zip(FEATURES, std, strict=True)
        if deviation == 0
    ]
    design = build_design(battles, features)
    params, iterations = fit(design, reg=reg)
    boot, failed = bootstrap_params(design, params, reg=reg, rounds=bootstrap, rng=rng or np.random.default_rng())
    if failed:
        warnings.append(
            f"{failed} of {bootstrap} bootstrap rounds had no finite unregularised estimate (a model only won, only "
            "lost or had no battles in the redraw) and were left out: the intervals come from the other rounds"
        )
    if bootstrap and not len(boot):
        raise StyleFitError("no bootstrap round had a finite unregularised estimate; use a regularisation > 0")
    return _assemble(battles, design, params, boot, reg, mean, std, iterations, warnings, bootstrap)


def bootstrap_params(
    design: Design,
    params: FloatArray,
    *,
    reg: float,
    rounds: int,
    rng: np.random.Generator,
    workers: int | None = None,
) -> tuple[FloatArray, int]:
    """Return (kept rounds, models + features) refits on multinomial redraws of the battles and the failed count.

    Rounds start at ``params`` and go in chunks (at most CHUNK_ROUNDS, and ROUND_BYTES of draws), each drawn from
    its own stream spawned from ``rng`` and shared out among ``workers`` threads (default: one per idle core): the
    numbers depend on the seed alone. With ``reg > 0`` every round has an estimate; unregularised, a redraw in which
    some model only wins or only loses (or has no battles) has none, and is left out and counted.
    """
    if not rounds:
        return np.empty((0, len(params))), 0
    sampler = ClassSampler(np.rint(design.weights).astype(np.int64))
    chunk = max(1, min(CHUNK_ROUNDS, ROUND_BYTES // (8 * max(len(design.weights), 1))))
    sizes = [min(chunk, rounds - start) for start in range(0, rounds, chunk)]
    streams = np.random.SeedSequence(rng.integers(0, 1 << 63, size=4)).spawn(len(sizes))

    eta = _logits(design, params)
    start_terms = (eta, expit(eta))  # every round starts here: the logits and probabilities computed once

    def run(index: int) -> list[FloatArray]:
        draws = sampler.draw(sizes[index], np.random.default_rng(streams[index]))  # a round per row
        kept = []
        for weights in draws:
            try:
                kept.append(fit(design, reg=reg, weights=weights, start=params, start_terms=start_terms)[0])
            except StyleFitError:
                if reg > 0:
                    raise
        return kept

    threads = max(1, min(workers or idle_cores(), len(sizes)))
    if threads == 1:
        chunks = [run(index) for index in range(len(sizes))]
    else:
        from concurrent.futures import ThreadPoolExecutor  # only here: it imports logging, which start-up can skip

        with ThreadPoolExecutor(threads) as pool:
            chunks = list(pool.map(run, range(len(sizes))))
    kept = [row for rows in chunks for row in rows]
    out = np.array(kept).reshape(len(kept), len(params))
    return out, rounds - len(kept)


def _assemble(
    battles: StyleBattles,
    design: Design,
    params: FloatArray,
    boot: FloatArray,
    reg: float,
    mean: FloatArray,
    std: FloatArray,
    iterations: int,
    warnings: list[str],
    bootstrap: int,
) -> StyleLeaderboard:
    """Build the sorted leaderboard from the point fit and the bootstrap rounds."""
    m = design.n_models
    ratings = BASE_RATING + SCALE * params[:m]
    if len(boot):
        boot_ratings = BASE_RATING + SCALE * boot[:, :m]
        lower, upper = np.percentile(boot_ratings, [2.5, 97.5], axis=0)
        beta_lower, beta_upper = np.percentile(boot[:, m:], [2.5, 97.5], axis=0)
    else:
        boot_ratings = None
        lower, upper = ratings.copy(), ratings.copy()
        beta_lower, beta_upper = params[m:].copy(), params[m:].copy()
    rank_lower, rank_upper = rank_spread(boot_ratings, lower, upper)
    votes = np.bincount(battles.model_a, battles.weights, m) + np.bincount(battles.model_b, battles.weights, m)
    rows = [
        StyleRating(
            model=battles.models[i],
            rating=float(ratings[i]),
            lower=float(lower[i]),
            upper=float(upper[i]),
            rank=1 + int((ratings > ratings[i]).sum()),
            rank_ub=1 + int((lower > upper[i]).sum()),
            rank_lower=int(rank_lower[i]),
            rank_upper=int(rank_upper[i]),
            votes=int(votes[i]),
        )
        for i in np.argsort(-ratings, kind="stable").tolist()
    ]
    style = [
        StyleCoefficient(
            feature=name, coefficient=float(params[m + j]), lower=float(beta_lower[j]), upper=float(beta_upper[j])
        )
        for j, name in enumerate(FEATURES)
    ]
    return StyleLeaderboard(
        ratings=rows,
        style=style,
        reg=reg,
        bootstrap=bootstrap,
        n_battles=battles.n_battles,
        feature_mean=tuple(float(x) for x in mean),
        feature_std=tuple(float(x) for x in std),
        iterations=iterations,
        warnings=warnings,
    )
