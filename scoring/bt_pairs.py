"""Half-tie Bradley-Terry fits of many rounds at the cost of the pairs that met (the bootstrap's Newton refits).

What ``bt_fit.newton`` does on dense (models x models) matrices, for a batch of rounds over the same list of pairs:
the gradient, the Hessian's entries and the log-likelihood of the backtracking line search come from per-pair arrays
(pairs x rounds); only the linear solve is dense. With e = exp(theta) a pair's probability is e_i / (e_i + e_j) and
its log-likelihood term log s(theta_i - theta_j) = theta_i - log(e_i + e_j) needs one logarithm.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from scoring import bt_fit
from scoring.bt_fit import RATING_SCALE

Array = NDArray[np.float64]
Counts = NDArray[np.floating]
Indices = NDArray[np.intp] | NDArray[np.int64]
PerModel = Callable[[Counts, Counts], Array]
Scratch = Callable[[int, int], Array]

# Past this spread of theta within a round, e = exp(theta - max) could underflow to 0 for a pair: use log-sigmoids.
SPREAD_LIMIT = 600.0


class PairLikelihood:
    """Half-tie Bradley-Terry log-likelihood of a batch of rounds, with a prior per round, over the pairs that met.

    ``draws`` is (3, pairs, rounds): wins of each pair's first model, of its second, and ties (half a win each);
    ``per_model(first, second)`` sums per-pair values (pairs x rounds) over each model's pairs, ``first`` where it
    is the first model and ``second`` where the second; ``scratch(rows, size)`` lends a reusable array. Methods take
    the parameters (models x rounds) of the rounds ``keep`` only.
    """

    def __init__(
        self,
        pair_i: Indices,
        pair_j: Indices,
        per_model: PerModel,
        labels: NDArray[np.int32],
        draws: Counts,
        prior: Array,
        scratch: Scratch,
    ) -> None:
        self.pair_i, self.pair_j, self.per_model, self.prior, self.scratch = pair_i, pair_j, per_model, prior, scratch
        self.m = m = len(labels)
        self.first = draws[0] + draws[2] * 0.5
        self.battles = draws[0] + draws[1] + draws[2]
        self.score = per_model(self.first, self.battles - self.first)
        self.total = self.battles.sum(axis=0)
        self.off_diagonal = np.concatenate([pair_i * m + pair_j, pair_j * m + pair_i])
        self.diagonal = np.arange(m) * (m + 1)
        # Where a round has no prior the likelihood is flat along each component's ones-vector (see bt_fit).
        self.fixup = bt_fit.centering_matrix(labels, 0).ravel()

    def loglik(self, values: Array, keep: NDArray[np.intp]) -> Array:
        """Return the log-likelihood (with the rounds' prior) at ``values``."""
        top = values.max(axis=0)
        if (top - values.min(axis=0)).max() < SPREAD_LIMIT:
            strength = np.exp(values - top)  # e scaled by the round's largest
            both = strength.take(self.pair_i, axis=0)
            both += strength.take(self.pair_j, axis=0)
            np.log(both, out=both)
            battles = self.battles[:, keep]
            total = (self.score[:, keep] * values).sum(axis=0) - (battles * both).sum(axis=0) - top * self.total[keep]
        else:
            diff = values[self.pair_i] - values[self.pair_j]
            second = self.battles[:, keep] - self.first[:, keep]
            total = (self.battles[:, keep] * bt_fit.log_sigmoid(diff) - second * diff).sum(axis=0)
        prior = self.prior[keep]
        if prior.any():
            total += prior * 0.5 * (2.0 * bt_fit.log_sigmoid(values) - values).sum(axis=0)
        return np.asarray(total)

    def newton_step(self, values: Array, keep: NDArray[np.intp]) -> Array:
        """Return the Newton step (models x rounds) at ``values``."""
        m = self.m
        top = values.max(axis=0)
        if (top - values.min(axis=0)).max() < SPREAD_LIMIT:
            strength = np.exp(values - top)
            first = strength.take(self.pair_i, axis=0)
            p = first / (first + strength.take(self.pair_j, axis=0))
        else:
            p = bt_fit.sigmoid(values[self.pair_i] - values[self.pair_j])
        battles = self.battles[:, keep]
        expected = battles * p
        grad = self.score[:, keep] - self.per_model(expected, battles - expected)
        weight = expected * (1.0 - p)
        diagonal = self.per_model(weight, weight)
        prior = self.prior[keep]
        if prior.any():
            sig = bt_fit.sigmoid(values)
            grad += prior * (0.5 - sig)
            diagonal += prior * sig * (1.0 - sig)
        hess = self.scratch(len(keep), m * m)
        np.multiply((prior == 0.0)[:, None], self.fixup, out=hess)  # the fix-up where there is no prior, else 0
        hess[:, self.off_diagonal] -= np.concatenate([weight, weight]).T
        hess[:, self.diagonal] += diagonal.T
        solved = np.linalg.solve(hess.reshape(-1, m, m), grad.T[:, :, None])
        return np.ascontiguousarray(solved[:, :, 0].T)


def pair_newton(likelihood: PairLikelihood, theta0: Array, tol: float, alternative: Array | None = None) -> Array:
    """Maximise each round's likelihood by damped Newton steps from ``theta0`` (rounds x models); ``tol`` in rating
    points, as ``bt_fit.newton``. A round starts from ``alternative`` instead where that is finite and at least as
    likely. Returns (rounds, models).
    """
    rounds = len(theta0)
    every = np.arange(rounds)
    theta = np.ascontiguousarray(theta0.T, dtype=np.float64)
    current = likelihood.loglik(theta, every)
    if alternative is not None:
        other = np.ascontiguousarray(alternative.T, dtype=np.float64)
        finite = np.isfinite(other).all(axis=0)
        other[:, ~finite] = theta[:, ~finite]
        better = likelihood.loglik(other, every)
        use = finite & (better >= current)
        theta[:, use], current[use] = other[:, use], better[use]
    active = np.ones(rounds, dtype=bool)
    for _ in range(200):
        keep = np.flatnonzero(active)
        values = theta[:, keep]
        step = likelihood.newton_step(values, keep)
        biggest = np.abs(step).max(axis=0)
        step *= np.minimum(1.0, bt_fit.MAX_STEP / np.maximum(biggest, 1e-300))
        theta[:, keep], current[keep] = _backtrack(likelihood, values, step, current[keep], keep)
        done = np.abs(step).max(axis=0) * RATING_SCALE < tol
        active[keep[done]] = False
        if not active.any():
            break
    return np.ascontiguousarray(theta.T)


def _backtrack(
    likelihood: PairLikelihood, values: Array, step: Array, before: Array, keep: NDArray[np.intp]
) -> tuple[Array, Array]:
    """Return values + t * step, t halved per round until the likelihood does not decrease, and the likelihood."""
    scale = np.ones(len(keep))
    for _ in range(60):
        after = likelihood.loglik(values + scale * step, keep)
        worse = after < before - 1e-10 * np.maximum(1.0, np.abs(before))
        if not worse.any():
            return values + scale * step, after
        scale[worse] /= 2.0
    return values + scale * step, likelihood.loglik(values + scale * step, keep)
