"""Bradley-Terry rankings from a few human votes and many judge votes: prediction-powered inference (PPI++).

The sampling unit is a comparison (a prompt and two models). ``labelled`` comparisons carry a human score ``y``
and the judge's score ``yhat`` (1 = the first model wins, 0 = the second, 0.5 a tie; means of several votes are
allowed); ``unlabelled`` comparisons carry only the judge's. With ``x = e_a - e_b`` and the logistic loss
``l(theta; x, y) = -y x.theta + log(1 + exp(x.theta))``, the estimate minimises (Angelopoulos, Duchi and Zrnic
2023, *PPI++*; for Bradley-Terry, Boyeau et al. 2024, *AutoEval Done Right*)::

    L(theta) = mean_labelled l(theta; y) + lam * (mean_unlabelled l(theta; yhat) - mean_labelled l(theta; yhat))

The judge's own loss enters twice with opposite signs, so its bias cancels in expectation and the interval stays
valid however biased the judge is; ``lam = 0`` is the human-only fit and ``lam`` is tuned (clipped to [0, 1]) to
minimise the trace of the estimate's covariance, so the interval shrinks the more the judge agrees with humans.
The covariance is the sandwich ``H^+ (Var(g - lam ghat) + n/N Var(lam ghat_U)) H^+ / n`` with per-comparison
gradients ``g`` and ``H`` the Hessian averaged over all comparisons, as in the authors' ``ppi_py`` (against which
``tests/scoring/test_ppi.py`` checks it). Ratings are ``1000 + 400 log10`` odds with mean 1000.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from scoring import graph
from scoring.bt_fit import RATING_SCALE, log_sigmoid, sigmoid

Array = NDArray[np.float64]
Labelled = tuple[str, str, float, float]
Unlabelled = tuple[str, str, float]


@dataclass(frozen=True, eq=False)
class PPIData:
    """Distinct comparison cells with their multiplicities (model indices into ``models``).

    Labelled cell k: ``la[k]`` against ``lb[k]``, human score ``y[k]``, judge score ``yhat[k]``, ``lw[k]``
    comparisons. Unlabelled cell k: ``ua[k]`` against ``ub[k]``, judge score ``uyhat[k]``, ``uw[k]`` comparisons.
    """

    models: tuple[str, ...]
    la: NDArray[np.intp]
    lb: NDArray[np.intp]
    y: Array
    yhat: Array
    lw: Array
    ua: NDArray[np.intp]
    ub: NDArray[np.intp]
    uyhat: Array
    uw: Array

    @property
    def n(self) -> float:
        """Return the number of labelled comparisons."""
        return float(self.lw.sum())

    @property
    def big_n(self) -> float:
        """Return the number of unlabelled comparisons."""
        return float(self.uw.sum())

    @classmethod
    def from_comparisons(cls, labelled: Iterable[Labelled], unlabelled: Iterable[Unlabelled]) -> PPIData:
        """Aggregate (model_a, model_b, y, yhat) and (model_a, model_b, yhat) comparisons into cells."""
        lab = [(a, b, float(y), float(yh)) for a, b, y, yh in labelled]
        unl = [(a, b, float(yh)) for a, b, yh in unlabelled]
        pairs = [(a, b, (y, yh)) for a, b, y, yh in lab] + [(a, b, (yh,)) for a, b, yh in unl]
        for a, b, scores in pairs:
            if a == b:
                raise ValueError(f"comparison of model {a!r} against itself")
            if not all(0.0 <= s <= 1.0 for s in scores):
                raise ValueError(f"scores must lie in [0, 1], got {list(scores)} for {a!r} vs {b!r}")
        models = tuple(sorted({name for a, b, _ in pairs for name in (a, b)}))
        index = {m: i for i, m in enumerate(models)}
        lcells = _cells([(index[a], index[b], y, yh) for a, b, y, yh in lab], 4)
        ucells = _cells([(index[a], index[b], yh) for a, b, yh in unl], 3)
        return cls._from_cells(models, lcells, ucells)

    @classmethod
    def from_arrays(
        cls,
        models: Sequence[str],
        labelled: tuple[NDArray[np.integer], NDArray[np.integer], Array, Array],
        unlabelled: tuple[NDArray[np.integer], NDArray[np.integer], Array],
    ) -> PPIData:
        """Aggregate comparisons given as arrays of model indices and scores: (a, b, y, yhat) and (a, b, yhat)."""
        lab = np.column_stack([np.asarray(col, dtype=np.float64) for col in labelled])
        unl = np.column_stack([np.asarray(col, dtype=np.float64) for col in unlabelled])
        if ((lab[:, 2:] < 0) | (lab[:, 2:] > 1)).any() or ((unl[:, 2] < 0) | (unl[:, 2] > 1)).any():
            raise ValueError("scores must lie in [0, 1]")
        if (lab[:, 0] == lab[:, 1]).any() or (unl[:, 0] == unl[:, 1]).any():
            raise ValueError("comparison of a model against itself")
        indices = np.concatenate([lab[:, :2].ravel(), unl[:, :2].ravel()])
        if len(indices) and (indices.min() < 0 or indices.max() >= len(models)):
            raise ValueError("model indices must lie in [0, len(models))")
        return cls._from_cells(tuple(models), _cells(lab, 4), _cells(unl, 3))

    @classmethod
    def _from_cells(cls, models: tuple[str, ...], lcells: list[Array], ucells: list[Array]) -> PPIData:
        """Build from the columns returned by ``_cells``."""
        return cls(
            models=models,
            la=lcells[0].astype(np.intp),
            lb=lcells[1].astype(np.intp),
            y=lcells[2],
            yhat=lcells[3],
            lw=lcells[4],
            ua=ucells[0].astype(np.intp),
            ub=ucells[1].astype(np.intp),
            uyhat=ucells[2],
            uw=ucells[3],
        )


def _cells(rows: Sequence[tuple[float, ...]] | Array, width: int) -> list[Array]:
    """Return the columns of the distinct rows plus their counts."""
    if not len(rows):
        return [np.zeros(0) for _ in range(width + 1)]
    distinct, counts = np.unique(np.asarray(rows, dtype=np.float64), axis=0, return_counts=True)
    return [distinct[:, k] for k in range(width)] + [counts.astype(np.float64)]


@dataclass(frozen=True)
class PPIRating:
    """One model's row: rating with its interval, the human-only standard error beside it, and vote counts.

    ``se`` and ``se_human`` are sandwich standard errors in rating points of the combined and the human-only
    (``lam = 0``) estimates; their ratio is how much the judge narrowed the interval.
    """

    model: str
    rating: float
    lower: float
    upper: float
    rank: int
    rank_ub: int
    se: float
    se_human: float
    rating_human: float
    labelled: int
    unlabelled: int


@dataclass(frozen=True, eq=False)
class PPILeaderboard:
    """A prediction-powered Bradley-Terry leaderboard, best first."""

    ratings: list[PPIRating]
    models: tuple[str, ...]
    lam: float
    n_labelled: int
    n_unlabelled: int
    level: float
    win_probability: Array
    cov: Array = field(repr=False)
    warnings: list[str] = field(default_factory=list)

    def rating(self, model: str) -> PPIRating:
        """Return the row of ``model``; raise KeyError if absent."""
        for row in self.ratings:
            if row.model == model:
                return row
        raise KeyError(model)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict shaped like the Bradley-Terry leaderboard's."""
        return {
            "ratings": [asdict(row) for row in self.ratings],
            "method": "bradley_terry_ppi",
            "combine": "ppi",
            "interval": "sandwich",
            "level": self.level,
            "lambda": self.lam,
            "n_labelled": self.n_labelled,
            "n_unlabelled": self.n_unlabelled,
            "n_models": len(self.models),
            "warnings": self.warnings,
            "win_probability": {"models": list(self.models), "matrix": self.win_probability.tolist()},
        }


@dataclass(frozen=True)
class PPIFit:
    """Centred natural log-strengths, their covariance and the lambda used."""

    theta: Array
    cov: Array
    lam: float


def ppi_bradley_terry(
    labelled: Iterable[Labelled],
    unlabelled: Iterable[Unlabelled],
    *,
    lam: float | None = None,
    level: float = 0.95,
) -> PPILeaderboard:
    """Rank models from (model_a, model_b, human, judge) and (model_a, model_b, judge) comparisons.

    Scores are 1 when model_a wins, 0 when model_b wins, 0.5 for a tie (or means of several votes).
    ``lam=None`` tunes lambda; raises ValueError when the human comparisons do not connect every model.
    """
    return ppi_leaderboard(PPIData.from_comparisons(labelled, unlabelled), lam=lam, level=level)


def ppi_leaderboard(data: PPIData, *, lam: float | None = None, level: float = 0.95) -> PPILeaderboard:
    """Fit the combined and the human-only estimates and assemble the leaderboard."""
    if not 0.0 < level < 1.0:
        raise ValueError("level must lie in (0, 1)")
    check_data(data)
    fit = ppi_fit(data, lam=lam)
    human = ppi_fit(data, lam=0.0)
    z = statistics.NormalDist().inv_cdf(0.5 + level / 2)
    ratings = 1000.0 + RATING_SCALE * fit.theta
    se = RATING_SCALE * np.sqrt(np.maximum(np.diag(fit.cov), 0.0))
    se_human = RATING_SCALE * np.sqrt(np.maximum(np.diag(human.cov), 0.0))
    lower, upper = ratings - z * se, ratings + z * se
    m = len(data.models)
    n_lab = np.bincount(data.la, data.lw, m) + np.bincount(data.lb, data.lw, m)
    n_unl = np.bincount(data.ua, data.uw, m) + np.bincount(data.ub, data.uw, m)
    order = np.argsort(-ratings, kind="stable")
    rows = [
        PPIRating(
            model=data.models[i],
            rating=float(ratings[i]),
            lower=float(lower[i]),
            upper=float(upper[i]),
            rank=1 + int((ratings > ratings[i]).sum()),
            rank_ub=1 + int((lower > upper[i]).sum()),
            se=float(se[i]),
            se_human=float(se_human[i]),
            rating_human=float(1000.0 + RATING_SCALE * human.theta[i]),
            labelled=int(n_lab[i]),
            unlabelled=int(n_unl[i]),
        )
        for i in order
    ]
    theta = fit.theta[order]
    warnings = []
    if fit.lam == 0.0:
        warnings.append("lambda is 0: the judge does not help (its verdicts do not track the humans'); human-only fit")
    return PPILeaderboard(
        ratings=rows,
        models=tuple(data.models[i] for i in order),
        lam=fit.lam,
        n_labelled=int(data.n),
        n_unlabelled=int(data.big_n),
        level=level,
        win_probability=sigmoid(theta[:, None] - theta[None, :]),
        cov=fit.cov[np.ix_(order, order)],
        warnings=warnings,
    )


def check_data(data: PPIData) -> None:
    """Raise ValueError unless the human comparisons connect every model and the judge rated some others."""
    m = len(data.models)
    if m < 2:
        raise ValueError("at least two models are needed")
    if data.n < 2:
        raise ValueError("at least two comparisons rated by both humans and the judge are needed")
    if data.big_n < 2:
        raise ValueError("at least two comparisons rated by the judge alone are needed")
    adjacency = np.zeros((m, m), dtype=bool)
    adjacency[data.la, data.lb] = True
    n_comp, labels = graph.component_labels(adjacency | adjacency.T)
    if n_comp > 1:
        seen = set(labels[data.la].tolist()) | set(labels[data.lb].tolist())
        main = int(np.bincount(labels).argmax())
        missing = [name for name, label in zip(data.models, labels.tolist(), strict=True) if label != main]
        reason = "without a human-and-judge comparison" if len(seen) < n_comp else "not linked to the rest"
        raise ValueError(
            f"the comparisons rated by both humans and the judge do not connect all models: {missing[:5]} "
            f"{reason}; every model needs paired votes linking it to the others"
        )


def ppi_fit(data: PPIData, *, lam: float | None = None) -> PPIFit:
    """Return the PPI++ estimate; ``lam=None`` tunes lambda at the lam=1 estimate, then refits (PPI++)."""
    if lam is not None and not 0.0 <= lam <= 1.0:
        raise ValueError("lam must lie in [0, 1]")
    if lam is None:
        # Any consistent first estimate serves the tuning (PPI++); the lambda = 1 one may not exist (a judge that
        # disagrees with the humans on pairs the unlabelled comparisons barely constrain), the humans' then does.
        try:
            first = _minimise(data, 1.0)
        except ValueError:
            first = _minimise(data, 0.0)
        lam = tuned_lambda(data, first)
        if lam == 0.0:
            return _fit_at(data, 0.0)
        try:
            tuned = _fit_at(data, lam)
        except ValueError:
            return _fit_at(data, 0.0)
        # The tuning (and ppi_py) takes the Hessian over all comparisons once lambda > 0, the humans-only fit over
        # the humans' own: where the humans rated pairs unlike the judge's (not a random sample of them), a small
        # tuned lambda can give wider intervals than lambda = 0. Keep whichever is narrower (trace of the
        # covariance), so the combined leaderboard is never less precise than the humans alone.
        humans = _fit_at(data, 0.0)
        return humans if np.trace(humans.cov) < np.trace(tuned.cov) else tuned
    return _fit_at(data, lam)


def _fit_at(data: PPIData, lam: float) -> PPIFit:
    theta = _minimise(data, lam)
    return PPIFit(theta, covariance(data, theta, lam), lam)


def _grad_coef(data: PPIData, theta: Array, lam: float) -> tuple[Array, Array]:
    """Return each labelled and unlabelled cell's gradient coefficient (per comparison) of L."""
    p_l = sigmoid(theta[data.la] - theta[data.lb])
    p_u = sigmoid(theta[data.ua] - theta[data.ub])
    return (p_l - data.y) - lam * (p_l - data.yhat), lam * (p_u - data.uyhat)


def _loss(data: PPIData, theta: Array, lam: float) -> float:
    """Return L(theta) for this lambda."""
    d_l = theta[data.la] - theta[data.lb]
    d_u = theta[data.ua] - theta[data.ub]
    soft_l, soft_u = -log_sigmoid(-d_l), -log_sigmoid(-d_u)
    lab = data.lw * ((-data.y * d_l + soft_l) - lam * (-data.yhat * d_l + soft_l))
    unl = data.uw * (-data.uyhat * d_u + soft_u)
    return float(lab.sum() / data.n + lam * unl.sum() / data.big_n)


def _vector(a: NDArray[np.intp], b: NDArray[np.intp], coef: Array, m: int) -> Array:
    """Return sum_k coef_k (e_a - e_b)."""
    out: Array = np.bincount(a, coef, m).astype(np.float64) - np.bincount(b, coef, m)
    return out


def _laplacian(a: NDArray[np.intp], b: NDArray[np.intp], weight: Array, m: int) -> Array:
    """Return sum_k weight_k (e_a - e_b)(e_a - e_b)^T."""
    off = np.bincount(a * m + b, weight, m * m).reshape(m, m)
    off = off + off.T
    out: Array = np.diag(off.sum(axis=1)) - off
    return out


def _hessian(data: PPIData, theta: Array, lab_weight: float, unl_weight: float) -> Array:
    """Return lab_weight * sum_L w p(1-p) x x^T + unl_weight * sum_U w p(1-p) x x^T."""
    m = len(data.models)
    p_l = sigmoid(theta[data.la] - theta[data.lb])
    p_u = sigmoid(theta[data.ua] - theta[data.ub])
    return lab_weight * _laplacian(data.la, data.lb, data.lw * p_l * (1 - p_l), m) + unl_weight * _laplacian(
        data.ua, data.ub, data.uw * p_u * (1 - p_u), m
    )


def _gradient(data: PPIData, theta: Array, lam: float) -> Array:
    """Return the gradient of L."""
    m = len(data.models)
    c_l, c_u = _grad_coef(data, theta, lam)
    return _vector(data.la, data.lb, data.lw * c_l, m) / data.n + _vector(data.ua, data.ub, data.uw * c_u, m) / (
        data.big_n
    )


def _minimise(data: PPIData, lam: float, tol: float = 1e-10, max_iter: int = 100) -> Array:
    """Minimise the (convex for lam in [0, 1]) loss by damped Newton steps within the sum-zero plane."""
    m = len(data.models)
    theta = np.zeros(m)
    fixup = np.full((m, m), 1.0 / m)
    loss = _loss(data, theta, lam)
    for _ in range(max_iter):
        grad = _gradient(data, theta, lam)
        hess = _hessian(data, theta, (1.0 - lam) / data.n, lam / data.big_n)
        try:
            step = -np.linalg.solve(hess + fixup, grad)
        except np.linalg.LinAlgError:  # the curvature vanished: ratings running off to infinity
            break
        step *= min(1.0, 4.0 / max(float(np.abs(step).max()), 1e-300))
        scale = 1.0
        while scale > 1e-12:
            candidate = theta + scale * step
            new = _loss(data, candidate, lam)
            if new <= loss + 1e-12 * max(1.0, abs(loss)):
                break
            scale /= 2.0
        theta, loss = theta + scale * step, _loss(data, theta + scale * step, lam)
        if float(np.abs(scale * step).max()) < tol:
            centred: Array = theta - theta.mean()
            return centred
        if float(np.abs(theta).max()) > 50.0:
            break
    raise ValueError(
        "the combined estimate does not exist or did not converge (a model never loses or never wins, "
        "or too few comparisons)"
    )


def _centred_cross(
    a: NDArray[np.intp], b: NDArray[np.intp], w: Array, s: Array, t: Array, m: int
) -> tuple[Array, Array, Array]:
    """Return sum_k w s t x x^T and the sums of s x and t x (per comparison gradients s x and t x)."""
    return _laplacian(a, b, w * s * t, m), _vector(a, b, w * s, m), _vector(a, b, w * t, m)


def _cov(a: NDArray[np.intp], b: NDArray[np.intp], w: Array, s: Array, m: int) -> Array:
    """Return the sample covariance (ddof 1) of the per-comparison vectors s x."""
    total = float(w.sum())
    outer, first, _ = _centred_cross(a, b, w, s, s, m)
    mean = first / total
    out: Array = (outer - total * np.outer(mean, mean)) / (total - 1.0)
    return out


def _inv_hessian(data: PPIData, theta: Array, use_unlabelled: bool) -> Array:
    """Return the pseudo-inverse of the Hessian averaged over the comparisons used (as ppi_py does)."""
    if use_unlabelled:
        weight = 1.0 / (data.n + data.big_n)
        hess = _hessian(data, theta, weight, weight)
    else:
        hess = _hessian(data, theta, 1.0 / data.n, 0.0)
    out: Array = np.asarray(np.linalg.pinv(hess, hermitian=True), dtype=np.float64)
    return out


def tuned_lambda(data: PPIData, theta: Array) -> float:
    """Return the lambda in [0, 1] minimising the trace of the covariance at ``theta`` (PPI++, eq. 8)."""
    m, n, big_n = len(data.models), data.n, data.big_n
    p_l = sigmoid(theta[data.la] - theta[data.lb])
    p_u = sigmoid(theta[data.ua] - theta[data.ub])
    g, ghat, ghat_u = p_l - data.y, p_l - data.yhat, p_u - data.uyhat
    outer, sum_g, sum_ghat = _centred_cross(data.la, data.lb, data.lw, g, ghat, m)
    cross = outer - np.outer(sum_g, sum_ghat) / n
    cov_grads = (cross + cross.T) / n
    # Var of the judge's gradients over labelled and unlabelled comparisons pooled.
    a = np.concatenate([data.la, data.ua])
    b = np.concatenate([data.lb, data.ub])
    var_hat = _cov(a, b, np.concatenate([data.lw, data.uw]), np.concatenate([ghat, ghat_u]), m)
    inv = _inv_hessian(data, theta, True)
    num = float(np.trace(inv @ cov_grads @ inv))
    denom = 2.0 * (1.0 + n / big_n) * float(np.trace(inv @ var_hat @ inv))
    if denom <= 0.0 or not math.isfinite(num / denom):
        return 0.0
    return min(max(num / denom, 0.0), 1.0)


def covariance(data: PPIData, theta: Array, lam: float) -> Array:
    """Return the sandwich covariance of the centred estimate at ``theta`` for this lambda."""
    m, n = len(data.models), data.n
    c_l, _ = _grad_coef(data, theta, lam)
    p_u = sigmoid(theta[data.ua] - theta[data.ub])
    var_lab = _cov(data.la, data.lb, data.lw, c_l, m)
    var_unl = _cov(data.ua, data.ub, data.uw, lam * (p_u - data.uyhat), m)
    inv = _inv_hessian(data, theta, lam != 0.0)
    out: Array = inv @ (n / data.big_n * var_unl + var_lab) @ inv / n
    return out


def judge_only_fit(data: PPIData) -> PPIFit:
    """Return the classical fit to the judge's scores on all comparisons (biased when the judge is)."""
    judge = PPIData(
        models=data.models,
        la=np.concatenate([data.la, data.ua]),
        lb=np.concatenate([data.lb, data.ub]),
        y=np.concatenate([data.yhat, data.uyhat]),
        yhat=np.concatenate([data.yhat, data.uyhat]),
        lw=np.concatenate([data.lw, data.uw]),
        ua=data.ua,
        ub=data.ub,
        uyhat=data.uyhat,
        uw=data.uw,
    )
    theta = _minimise(judge, 0.0)
    return PPIFit(theta, covariance(judge, theta, 0.0), 0.0)
