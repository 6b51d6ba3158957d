"""Batched Newton solver for Bradley-Terry (ties as half wins) and Davidson likelihoods.

All arrays carry a leading batch axis ``B`` so that the point fit and every bootstrap round share one code
path: ``win[b, i, j]`` is the (possibly fractional) number of wins of ``i`` over ``j`` and ``tie[b, i, j]``
the symmetric number of ties (Davidson only). Parameters are natural log-strengths ``theta`` (plus ``log nu``
for Davidson). Where the comparison graph has several components the likelihood is flat along each component's
ones-vector; the solver adds that direction's outer product to the negative Hessian so that every step keeps
each component's mean fixed. A ``prior`` weight > 0 adds, for every model, one (or ``prior``) virtual tie
against a fixed opponent of strength 0, which keeps the estimate finite when the maximum-likelihood estimate
does not exist.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]
RATING_SCALE = 400.0 / math.log(10.0)
MAX_STEP = 4.0


@dataclass(frozen=True)
class Terms:
    """Log-likelihood, gradient and negative Hessian for a batch."""

    loglik: Array
    grad: Array
    neg_hess: Array


def log_sigmoid(x: Array) -> Array:
    """Return log(1 / (1 + exp(-x))) without overflow."""
    return -np.logaddexp(0.0, -x)


def sigmoid(x: Array) -> Array:
    """Return the logistic function."""
    out: Array = np.exp(log_sigmoid(x))
    return out


def _prior_terms(theta: Array, prior: Array) -> tuple[Array, Array, Array]:
    """Return loglik, gradient and curvature of one virtual tie per model against strength 0."""
    p = sigmoid(theta)
    weight = prior[:, None]
    loglik = (weight * 0.5 * (log_sigmoid(theta) + log_sigmoid(-theta))).sum(axis=1)
    return loglik, weight * (0.5 - p), weight * p * (1.0 - p)


def half_terms(theta: Array, win: Array, prior: Array) -> Terms:
    """Return terms of the Bradley-Terry likelihood where ties were folded into ``win`` as halves."""
    diff = theta[:, :, None] - theta[:, None, :]
    p = sigmoid(diff)
    total = win + np.swapaxes(win, 1, 2)
    loglik = (win * log_sigmoid(diff)).sum(axis=(1, 2))
    grad = (win - total * p).sum(axis=2)
    curv = total * p * (1.0 - p)
    neg_hess = -curv
    idx = np.arange(theta.shape[1])
    neg_hess[:, idx, idx] = curv.sum(axis=2)
    p_loglik, p_grad, p_curv = _prior_terms(theta, prior)
    neg_hess[:, idx, idx] += p_curv
    return Terms(loglik + p_loglik, grad + p_grad, neg_hess)


def _davidson_parts(theta: Array, log_nu: Array) -> tuple[Array, Array, Array, Array]:
    """Return d, log D, sinh(d/2)/D and cosh(d/2)/D for every ordered pair."""
    diff = np.clip(theta[:, :, None] - theta[:, None, :], -600.0, 600.0)
    log_d = np.logaddexp(np.logaddexp(diff / 2, -diff / 2), log_nu[:, None, None])
    sinh_d = np.sinh(diff / 2) * np.exp(-log_d)
    cosh_d = np.cosh(diff / 2) * np.exp(-log_d)
    return diff, log_d, sinh_d, cosh_d


def davidson_terms(theta: Array, log_nu: Array, win: Array, tie: Array, prior: Array) -> Terms:
    """Return terms of the Davidson (1970) tie model in the parameters (theta, log nu)."""
    m = theta.shape[1]
    diff, log_d, s, c = _davidson_parts(theta, log_nu)
    nu = np.exp(log_nu)[:, None, None]
    total = win + np.swapaxes(win, 1, 2) + tie
    loglik = (win * (diff / 2 - log_d)).sum(axis=(1, 2)) + 0.5 * (tie * (log_nu[:, None, None] - log_d)).sum(
        axis=(1, 2)
    )
    grad = np.empty((theta.shape[0], m + 1))
    grad[:, :m] = ((win - np.swapaxes(win, 1, 2)) / 2 - total * s).sum(axis=2)
    grad[:, m] = 0.5 * (tie - total * nu * np.exp(-log_d)).sum(axis=(1, 2))
    curv = total * (c / 2 - s * s)
    neg_hess = np.zeros((theta.shape[0], m + 1, m + 1))
    idx = np.arange(m)
    neg_hess[:, :m, :m] = -curv
    neg_hess[:, idx, idx] = curv.sum(axis=2)
    inv_d = np.exp(-log_d)
    cross = -(total * s * nu * inv_d).sum(axis=2)
    neg_hess[:, :m, m] = cross
    neg_hess[:, m, :m] = cross
    neg_hess[:, m, m] = 0.5 * (total * nu * inv_d * (1.0 - nu * inv_d)).sum(axis=(1, 2))
    p_loglik, p_grad, p_curv = _prior_terms(theta, prior)
    grad[:, :m] += p_grad
    neg_hess[:, idx, idx] += p_curv
    return Terms(loglik + p_loglik, grad, neg_hess)


def centering_matrix(labels: NDArray[np.int32], extra: int) -> Array:
    """Return the sum over components of 1_c 1_c^T / |c|, padded with ``extra`` zero rows/columns."""
    m = len(labels)
    same = (labels[:, None] == labels[None, :]).astype(np.float64)
    sizes = same.sum(axis=1)
    out = np.zeros((m + extra, m + extra))
    out[:m, :m] = same / sizes[None, :]
    return out


def center(theta: Array, labels: NDArray[np.int32]) -> Array:
    """Shift ``theta`` so that each component has mean zero (``labels`` number the components from 0)."""
    sizes = np.bincount(labels)
    averaging = np.zeros((len(labels), len(sizes)))
    averaging[np.arange(len(labels)), labels] = 1.0 / sizes[labels]
    out: Array = theta - (theta @ averaging)[:, labels]
    return out


@dataclass(frozen=True)
class FitResult:
    """Fitted parameters for a batch."""

    theta: Array
    log_nu: Array | None
    iterations: int
    converged: NDArray[np.bool_]


def newton(
    win: Array,
    tie: Array | None,
    labels: NDArray[np.int32],
    prior: Array,
    theta0: Array,
    log_nu0: Array | None = None,
    tol: float = 1e-6,
    max_iter: int = 200,
) -> FitResult:
    """Maximise the batched likelihood by damped Newton steps; ``tol`` is in rating points."""
    davidson = tie is not None
    m = theta0.shape[1]
    x = theta0.copy() if not davidson else np.concatenate([theta0, np.asarray(log_nu0)[:, None]], axis=1)
    fixup = centering_matrix(labels, 1 if davidson else 0)
    constrained = (prior == 0.0)[:, None, None]
    active = np.ones(len(x), dtype=bool)
    iterations = 0
    for iterations in range(1, max_iter + 1):  # noqa: B007
        idx = np.flatnonzero(active)
        terms = _terms(x[idx], m, win[idx], None if tie is None else tie[idx], prior[idx])
        system = terms.neg_hess + np.where(constrained[idx], fixup[None, :, :], 0.0)
        step: Array = np.asarray(np.linalg.solve(system, terms.grad[:, :, None])[:, :, 0], dtype=np.float64)
        biggest = np.abs(step).max(axis=1)
        step *= np.minimum(1.0, MAX_STEP / np.maximum(biggest, 1e-300))[:, None]
        x[idx] = _backtrack(x[idx], step, terms.loglik, m, win[idx], None if tie is None else tie[idx], prior[idx])
        done = np.abs(step[:, :m]).max(axis=1) * RATING_SCALE < tol
        active[idx[done]] = False
        if not active.any():
            break
    theta = x[:, :m]
    return FitResult(theta, x[:, m] if davidson else None, iterations, ~active)


def _terms(x: Array, m: int, win: Array, tie: Array | None, prior: Array) -> Terms:
    """Dispatch to the half-tie or Davidson likelihood terms."""
    if tie is None:
        return half_terms(x, win, prior)
    return davidson_terms(x[:, :m], x[:, m], win, tie, prior)


def _backtrack(
    x: Array,
    step: Array,
    loglik: Array,
    m: int,
    win: Array,
    tie: Array | None,
    prior: Array,
) -> Array:
    """Return x + t * step with t halved until the likelihood does not decrease."""
    scale = np.ones(len(x))
    for _ in range(60):
        candidate = x + scale[:, None] * step
        new = _loglik(candidate, m, win, tie, prior)
        worse = new < loglik - 1e-10 * np.maximum(1.0, np.abs(loglik))
        if not worse.any():
            return candidate
        scale[worse] /= 2.0
    return x + scale[:, None] * step


def _loglik(x: Array, m: int, win: Array, tie: Array | None, prior: Array) -> Array:
    """Return only the log-likelihood (cheaper than full terms)."""
    p_loglik = _prior_terms(x[:, :m], prior)[0]
    if tie is None:
        diff = x[:, :, None] - x[:, None, :]
        ll: Array = (win * log_sigmoid(diff)).sum(axis=(1, 2))
        return ll + p_loglik
    diff, log_d, _, _ = _davidson_parts(x[:, :m], x[:, m])
    log_nu = x[:, m][:, None, None]
    ll = (win * (diff / 2 - log_d)).sum(axis=(1, 2)) + 0.5 * (tie * (log_nu - log_d)).sum(axis=(1, 2))
    return ll + p_loglik


def pair_weights(totals: Array) -> Array:
    """Return each battle's weight by inverse pair frequency, normalised so that the weights sum to the battles.

    ``totals[i, j]`` (symmetric) counts the battles of the pair {i, j}. Every battle of a pair with n_ij battles
    weighs N / (P n_ij), N the number of battles and P the number of pairs with any: each pair then carries the
    same total weight N / P, and the weights of all N battles sum to N. Pairs without battles get weight 0.
    """
    upper = np.triu(totals, 1)
    n_pairs = int((upper > 0).sum())
    n_battles = float(upper.sum())
    out = np.zeros_like(totals, dtype=np.float64)
    seen = totals > 0
    if n_pairs:
        out[seen] = n_battles / (n_pairs * totals[seen])
    np.fill_diagonal(out, 0.0)
    return out


def sandwich_cov(
    theta: Array,
    log_nu: float | None,
    wins: Array,
    ties: Array,
    labels: NDArray[np.int32],
    prior: float,
    weights: Array | None = None,
    clusters: ClusterCells | None = None,
    correction: ClusterCorrection = "cr1",
) -> Array:
    """Return the sandwich covariance H^-1 J H^-1 of (theta[, log nu]) for one fitted model.

    ``wins`` are pure wins and ``ties`` all ties; J sums the outer products of per-battle scores. With per-pair
    battle ``weights`` (symmetric) the fit is the weighted likelihood: H sums w times each battle's curvature and J
    sums w^2 times its score's outer product. With ``clusters`` (the same battles split by rater or prompt) J sums
    the outer products of each cluster's summed score instead (cluster-robust, Liang & Zeger 1986), times the
    ``correction`` factor (``cluster_factor``); weights and clusters do not combine.
    """
    if clusters is not None and weights is not None:
        raise ValueError("clustered intervals do not combine with per-pair weights")
    m = len(theta)
    w = np.ones_like(wins) if weights is None else weights
    w_wins, w_ties = w * wins, w * ties
    sq_wins, sq_ties = w * w_wins, w * w_ties
    if log_nu is None:
        terms = half_terms(theta[None], (w_wins + w_ties / 2)[None], np.array([prior]))
        meat = _half_meat(theta, sq_wins, sq_ties)
    else:
        terms = davidson_terms(theta[None], np.array([log_nu]), w_wins[None], w_ties[None], np.array([prior]))
        meat = _davidson_meat(theta, log_nu, sq_wins, sq_ties)
    if clusters is not None:
        n_params = m - (int(labels.max()) + 1 if len(labels) else 0) + (0 if log_nu is None else 1)
        factor = cluster_factor(correction, clusters.n_clusters, clusters.n_battles, n_params)
        meat = factor * cluster_meat(theta, log_nu, clusters)
    bread = terms.neg_hess[0]
    inv = np.linalg.pinv(bread, hermitian=True) if prior == 0.0 else np.linalg.inv(bread)
    cov: Array = inv @ meat @ inv
    if prior:
        # Reported ratings are re-centred per component; propagate that projection.
        project = np.eye(len(cov)) - centering_matrix(labels, len(cov) - m)
        cov = project @ cov @ project.T
    return cov[: m + (0 if log_nu is None else 1), : m + (0 if log_nu is None else 1)]


def _laplacian(weights: Array) -> Array:
    """Return diag(row sums) - weights."""
    out = -weights.copy()
    np.fill_diagonal(out, weights.sum(axis=1))
    return out


def _half_meat(theta: Array, wins: Array, ties: Array) -> Array:
    """Return J for Bradley-Terry with ties scored as one half."""
    p = sigmoid(theta[:, None] - theta[None, :])
    weights = wins * (1 - p) ** 2 + wins.T * p**2 + ties * (0.5 - p) ** 2
    np.fill_diagonal(weights, 0.0)
    return _laplacian(weights)


def _davidson_meat(theta: Array, log_nu: float, wins: Array, ties: Array) -> Array:
    """Return J for the Davidson model in (theta, log nu)."""
    m = len(theta)
    diff, log_d, s, _ = _davidson_parts(theta[None], np.array([log_nu]))
    s, inv_d = s[0], np.exp(-log_d[0])
    b_win = -np.exp(log_nu) * inv_d
    a_i, a_j, a_t, b_t = 0.5 - s, -0.5 - s, -s, 1.0 + b_win
    weights = wins * a_i**2 + wins.T * a_j**2 + ties * a_t**2
    np.fill_diagonal(weights, 0.0)
    cross = wins * a_i * b_win + wins.T * a_j * b_win + ties * a_t * b_t
    np.fill_diagonal(cross, 0.0)
    meat = np.zeros((m + 1, m + 1))
    meat[:m, :m] = _laplacian(weights)
    meat[:m, m] = meat[m, :m] = cross.sum(axis=1)
    off = ~np.eye(m, dtype=bool)
    meat[m, m] = 0.5 * ((wins + wins.T) * b_win**2 + ties * b_t**2)[off].sum()
    del diff
    return meat


ClusterCorrection = Literal["cr0", "cr1"]


@dataclass(frozen=True, eq=False)
class ClusterCells:
    """Battle counts per cluster (a rater, a prompt) and model pair, for cluster-robust covariances.

    Cell ``k`` holds the battles of cluster ``cluster[k]`` between models ``first[k]`` and ``second[k]``:
    ``wins_first[k]`` won by the first, ``wins_second[k]`` by the second, ``ties[k]`` tied (both tie labels).
    ``by`` names what a cluster is (``"rater"``, ``"prompt"``); ``n_clusters`` counts the clusters (ids run from
    0 to ``n_clusters - 1``).
    """

    by: str
    n_clusters: int
    cluster: NDArray[np.int64]
    first: NDArray[np.int64]
    second: NDArray[np.int64]
    wins_first: Array
    wins_second: Array
    ties: Array

    def __post_init__(self) -> None:
        n = len(self.cluster)
        for name in ("first", "second", "wins_first", "wins_second", "ties"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"ClusterCells.{name} must have one entry per cell")
        if n and (self.cluster.min() < 0 or self.cluster.max() >= self.n_clusters):
            raise ValueError("ClusterCells.cluster ids must lie in [0, n_clusters)")
        if (self.first == self.second).any():
            raise ValueError("ClusterCells has battles of a model against itself")
        if (self.wins_first < 0).any() or (self.wins_second < 0).any() or (self.ties < 0).any():
            raise ValueError("ClusterCells counts must not be negative")

    @property
    def n_battles(self) -> float:
        """Return the number of battles over all cells."""
        return float(self.wins_first.sum() + self.wins_second.sum() + self.ties.sum())

    def matrices(self, m: int) -> tuple[Array, Array]:
        """Return the (m x m) pure-win matrix and the symmetric tie matrix the cells add up to."""
        wins = np.zeros((m, m))
        ties = np.zeros((m, m))
        np.add.at(wins, (self.first, self.second), self.wins_first)
        np.add.at(wins, (self.second, self.first), self.wins_second)
        np.add.at(ties, (self.first, self.second), self.ties)
        np.add.at(ties, (self.second, self.first), self.ties)
        return wins, ties


def cluster_cells(
    by: str, keys: Sequence[Hashable], first: Sequence[int], second: Sequence[int], outcomes: Sequence[int]
) -> ClusterCells:
    """Return the cells of per-battle records: battle ``n`` in cluster ``keys[n]`` between model indices
    ``first[n]`` and ``second[n]``, ``outcomes[n]`` 1 (first won), 2 (second won) or 0 (tie)."""
    if not len(keys) == len(first) == len(second) == len(outcomes):
        raise ValueError("cluster_cells needs one key, first, second and outcome per battle")
    codes: dict[Hashable, int] = {}
    ids = np.fromiter((codes.setdefault(key, len(codes)) for key in keys), dtype=np.int64, count=len(keys))
    a, b = np.asarray(first, dtype=np.int64), np.asarray(second, dtype=np.int64)
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    out = np.asarray(outcomes, dtype=np.int64)
    if len(out) and ((out < 0) | (out > 2)).any():
        raise ValueError("outcomes must be 0 (tie), 1 (first won) or 2 (second won)")
    won_lo = ((out == 1) & (a == lo)) | ((out == 2) & (b == lo))
    won_hi = (out != 0) & ~won_lo
    table = np.stack([ids, lo, hi])
    cells, inverse = np.unique(table, axis=1, return_inverse=True)
    inverse = inverse.reshape(-1)
    size = cells.shape[1]
    return ClusterCells(
        by=by,
        n_clusters=len(codes),
        cluster=cells[0],
        first=cells[1],
        second=cells[2],
        wins_first=_tally(inverse, won_lo, size),
        wins_second=_tally(inverse, won_hi, size),
        ties=_tally(inverse, out == 0, size),
    )


def _tally(cell: NDArray[np.int64], hit: NDArray[np.bool_], size: int) -> Array:
    """Return the number of hits per cell."""
    return np.bincount(cell, weights=hit.astype(np.float64), minlength=size).astype(np.float64)


def cluster_meat(theta: Array, log_nu: float | None, cells: ClusterCells) -> Array:
    """Return the clustered meat sum_g s_g s_g^T, s_g summing the per-battle scores of cluster ``g``.

    Half ties: a battle's score on ``theta_i`` is (y - p_ij), y its outcome for ``i`` (1, 1/2, 0), and the
    opposite on ``theta_j``. Davidson: the scores of ``davidson_terms`` per battle, plus the ``log nu`` entry.
    """
    m = len(theta)
    i, j = cells.first, cells.second
    if log_nu is None:
        p = sigmoid(theta[i] - theta[j])
        score_i = cells.wins_first * (1 - p) - cells.wins_second * p + cells.ties * (0.5 - p)
        score_nu = None
    else:
        _, log_d, s_all, _ = _davidson_parts(theta[None], np.array([log_nu]))
        s, inv_d = s_all[0][i, j], np.exp(-log_d[0][i, j])
        nu_d = math.exp(log_nu) * inv_d
        score_i = cells.wins_first * (0.5 - s) + cells.wins_second * (-0.5 - s) - cells.ties * s
        score_nu = cells.ties * (1.0 - nu_d) - (cells.wins_first + cells.wins_second) * nu_d
    extra = 0 if log_nu is None else 1
    sums = np.zeros((cells.n_clusters, m + extra))
    np.add.at(sums, (cells.cluster, i), score_i)
    np.add.at(sums, (cells.cluster, j), -score_i)
    if score_nu is not None:
        np.add.at(sums, (cells.cluster, np.full(len(i), m)), score_nu)
    meat: Array = sums.T @ sums
    return meat


def cluster_factor(correction: ClusterCorrection, n_clusters: int, n_battles: float, n_params: int) -> float:
    """Return the small-sample factor of the clustered covariance.

    ``cr0`` is 1; ``cr1`` is G / (G - 1) * (N - 1) / (N - K) with G clusters, N battles and K free parameters
    (Stata's and statsmodels' default for ``cov_type="cluster"``). Fewer than two clusters give nan.
    """
    if correction not in ("cr0", "cr1"):
        raise ValueError(f"cluster correction must be 'cr0' or 'cr1', got {correction!r}")
    if n_clusters < 2:
        return math.nan
    if correction == "cr0":
        return 1.0
    if n_battles <= n_params:
        return math.nan
    return n_clusters / (n_clusters - 1) * (n_battles - 1) / (n_battles - n_params)
