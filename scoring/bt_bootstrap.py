"""Multinomial bootstrap of Bradley-Terry fits over aggregated battle counts.

Each round redistributes all battles over the (pair, outcome) cells in proportion to their counts, an exact
multinomial draw (``scoring.multinomial``), and refits. Rounds go in chunks of ``CHUNK_ROUNDS``, each drawn from its
own random stream spawned from ``rng``: the result depends on the seed alone, not on how many threads share the
chunks (numpy releases the GIL in the array work, so threads use the machine's cores).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from scoring import bt_fit, graph
from scoring.battles import BattleCounts
from scoring.bt_fit import RATING_SCALE
from scoring.multinomial import MultinomialSampler

TieMode = Literal["half", "davidson"]
DEFAULT_PRIOR = 1.0
CHUNK_ROUNDS = 64
DENSE_BYTES = 8 << 20
MAX_CHORD_STEPS = 100

Array = NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class PointFit:
    """Point estimate on the natural log-strength scale plus diagnostics."""

    theta: Array
    log_nu: float | None
    labels: NDArray[np.int32]
    prior: float
    iterations: int


def fit_matrices(counts: BattleCounts, mode: TieMode) -> tuple[Array, Array | None]:
    """Return the win matrix (with halves for ties in 'half' mode) and the tie matrix for Davidson."""
    wins = counts.wins.astype(np.float64)
    all_ties = counts.all_ties.astype(np.float64)
    if mode == "half":
        return wins + all_ties / 2, None
    return wins, all_ties


def bootstrap_thetas(
    counts: BattleCounts,
    fit: PointFit,
    mode: TieMode,
    rounds: int,
    rng: np.random.Generator,
    tol: float = 1e-6,
    workers: int | None = None,
) -> Array:
    """Refit ``rounds`` multinomial resamples of the aggregated counts, warm-started at the point fit.

    ``workers`` threads share the chunks of rounds (default: one per available core); the numbers do not depend on
    it.
    """
    pair_i, pair_j = np.nonzero(np.triu(counts.totals) > 0)
    cells = np.stack(
        [counts.wins[pair_i, pair_j], counts.wins[pair_j, pair_i], counts.all_ties[pair_i, pair_j]], axis=1
    )
    sampler = MultinomialSampler(cells.ravel())
    solver = _ChordSolver(counts, fit, mode, pair_i, pair_j, cells, tol)
    sizes = [min(CHUNK_ROUNDS, rounds - start) for start in range(0, rounds, CHUNK_ROUNDS)]
    streams = np.random.SeedSequence(rng.integers(0, 1 << 63, size=4)).spawn(len(sizes))

    def run(chunk: int) -> Array:
        draws = sampler.draw(sizes[chunk], np.random.default_rng(streams[chunk]))
        return solver.solve(draws.reshape(len(pair_i), 3, sizes[chunk]))

    threads = max(1, min(workers or len(os.sched_getaffinity(0)), len(sizes)))
    if threads == 1:
        return np.concatenate([run(chunk) for chunk in range(len(sizes))])
    with ThreadPoolExecutor(threads) as pool:
        return np.concatenate(list(pool.map(run, range(len(sizes)))))


class _OpponentSums:
    """Sum per-pair values over each model's opponents, for a chunk of rounds.

    Dense (models x models x rounds) arrays where most pairs met (broadcasting, no gathers), else the list of pairs
    in both directions sorted by model (``reduceat``).
    """

    def __init__(self, m: int, pair_i: NDArray[np.intp], pair_j: NDArray[np.intp]) -> None:
        self.m, self.pair_i, self.pair_j = m, pair_i, pair_j
        self.dense = 4 * len(pair_i) >= m * m and m * m * CHUNK_ROUNDS * 8 <= DENSE_BYTES
        ends = np.concatenate([pair_i, pair_j])
        order = np.argsort(ends, kind="stable")
        self.pairs = order % max(len(pair_i), 1)
        self.opponents = np.concatenate([pair_j, pair_i])[order]
        self.sign = np.where(order < len(pair_i), 1.0, -1.0)[:, None]
        self.models, self.starts = np.unique(ends[order], return_index=True)

    def load(self, values: Array, signed: bool = False) -> Array:
        """Return per-pair values (pairs x rounds) laid out for ``weighted`` (negated for the second model if
        ``signed``)."""
        if self.dense:
            out = np.zeros((self.m, self.m, values.shape[1]))
            out[self.pair_i, self.pair_j] = values
            out[self.pair_j, self.pair_i] = -values if signed else values
            return out
        directed = values.take(self.pairs, axis=0)
        if signed:
            directed *= self.sign
        return directed

    def total(self, loaded: Array) -> Array:
        """Return each model's sum of loaded values, (models x rounds)."""
        if self.dense:
            summed: Array = loaded.sum(axis=1)
            return summed
        out = np.zeros((self.m, loaded.shape[1]))
        out[self.models] = np.add.reduceat(loaded, self.starts, axis=0)
        return out

    def over_sums(self, loaded: Array, strength: Array) -> Array:
        """Return sum over opponents j of value_ij / (strength_i + strength_j), (models x rounds)."""
        if self.dense:
            work = strength[:, None, :] + strength[None, :, :]
        else:
            work = strength.take(self.models.repeat(np.diff(np.append(self.starts, len(self.pairs)))), axis=0)
            work += strength.take(self.opponents, axis=0)
        np.divide(loaded, work, out=work)
        return self.total(work)


class _ChordSolver:
    """Solve resampled likelihoods by chord-Newton steps with the point fit's inverse Hessian.

    A chunk arrives as (pairs, 3, rounds) counts: wins of the pair's first model, of its second, and ties.
    """

    def __init__(
        self,
        counts: BattleCounts,
        fit: PointFit,
        mode: TieMode,
        pair_i: NDArray[np.intp],
        pair_j: NDArray[np.intp],
        cells: NDArray[np.int64],
        tol: float,
    ) -> None:
        self.fit, self.mode, self.tol, self.cells = fit, mode, tol, cells
        self.pair_i, self.pair_j, self.m = pair_i, pair_j, len(counts.models)
        self.sums = _OpponentSums(self.m, pair_i, pair_j)
        win, tie = fit_matrices(counts, mode)
        prior = np.array([fit.prior])
        if tie is None:
            neg_hess = bt_fit.half_terms(fit.theta[None], win[None], prior).neg_hess[0]
            self.x0 = fit.theta
        else:
            assert fit.log_nu is not None
            log_nu = np.array([fit.log_nu], dtype=np.float64)
            neg_hess = bt_fit.davidson_terms(fit.theta[None], log_nu, win[None], tie[None], prior).neg_hess[0]
            self.x0 = np.append(fit.theta, log_nu)
        self.inv_hess = np.linalg.pinv(neg_hess, hermitian=True) if fit.prior == 0.0 else np.linalg.inv(neg_hess)

    def solve(self, draws: Array) -> Array:
        """Return centred thetas, (rounds, models), for one chunk of resampled counts."""
        rounds = draws.shape[2]
        suspicious = self._lost_edges(draws) if self.fit.prior == 0.0 else np.zeros(rounds, dtype=bool)
        if self.mode == "half":
            x, active = self._half_chord(draws)
        else:
            x, active = self._davidson_chord(draws)
        redo = np.flatnonzero(active | suspicious)
        if len(redo):
            x[redo] = self._newton(draws[:, :, redo], np.repeat(self.x0[None], len(redo), axis=0))
        return bt_fit.center(x[:, : self.m], self.fit.labels)

    def _half_chord(self, draws: Array) -> tuple[Array, NDArray[np.bool_]]:
        """Iterate chord steps for half-tie Bradley-Terry (the hot loop).

        With e = exp(theta), the expected score of model i is e_i * sum_j n_ij / (e_i + e_j). Each pair's score
        is its margin (A - B) / 2 plus half its battles for the first model, minus the margin for the second.
        """
        total = draws[:, 0] + draws[:, 1] + draws[:, 2]
        battles = self.sums.load(total)
        score = self.sums.total(self.sums.load((draws[:, 0] - draws[:, 1]) / 2, signed=True))
        score += self.sums.total(battles) / 2
        theta = np.repeat(self.x0[:, None], total.shape[1], axis=1)
        last = error = np.full(total.shape[1], np.inf)
        for _ in range(MAX_CHORD_STEPS):
            strength = np.exp(theta)
            grad = score - strength * self.sums.over_sums(battles, strength)
            if self.fit.prior:
                grad += self.fit.prior * (0.5 - bt_fit.sigmoid(theta))
            step = self.inv_hess @ grad
            theta += step
            last, error = _remaining_error(step, last)
            if error.max() < self.tol:
                break
        return np.ascontiguousarray(theta.T), ~(error < self.tol)

    def _davidson_chord(self, draws: Array) -> tuple[Array, NDArray[np.bool_]]:
        """Iterate chord steps for the Davidson model on dense matrices."""
        wins, ties = self._dense(draws)
        prior = np.full(len(wins), self.fit.prior)
        x = np.repeat(self.x0[None], len(wins), axis=0)
        last = error = np.full(len(wins), np.inf)
        for _ in range(MAX_CHORD_STEPS):
            grad = bt_fit.davidson_terms(x[:, : self.m], x[:, self.m], wins, ties, prior).grad
            step = grad @ self.inv_hess
            x += step
            last, error = _remaining_error(step[:, : self.m].T, last)
            if error.max() < self.tol:
                break
        return x, ~(error < self.tol)

    def _lost_edges(self, draws: Array) -> NDArray[np.bool_]:
        """Return the rounds where a 'won or tied against' edge of the data vanished from the resample."""
        lost = np.zeros(draws.shape[2], dtype=bool)
        for side in (0, 1):
            had = (self.cells[:, side] + self.cells[:, 2] > 0)[:, None]
            kept = draws[:, side] + draws[:, 2]
            lost |= np.min(kept, axis=0, where=had, initial=1.0) == 0
        return lost

    def _dense(self, draws: Array) -> tuple[Array, Array]:
        """Return dense (rounds, models, models) win and tie matrices of a chunk."""
        rounds, i, j = draws.shape[2], self.pair_i, self.pair_j
        wins = np.zeros((rounds, self.m, self.m))
        wins[:, i, j], wins[:, j, i] = draws[:, 0].T, draws[:, 1].T
        ties = np.zeros((rounds, self.m, self.m))
        ties[:, i, j] = ties[:, j, i] = draws[:, 2].T
        return wins, ties

    def _newton(self, draws: Array, x: Array) -> Array:
        """Fit the given rounds by full Newton, with the default prior where their MLE does not exist."""
        wins, ties = self._dense(draws)
        prior = np.full(len(x), self.fit.prior)
        if not self.fit.prior:
            prior[_rounds_without_mle(wins, ties, self.fit.labels)] = DEFAULT_PRIOR
        theta0 = x[:, : self.m]
        if self.mode == "half":
            return bt_fit.newton(wins + ties / 2, None, self.fit.labels, prior, theta0, None, self.tol).theta
        result = bt_fit.newton(wins, ties, self.fit.labels, prior, theta0, x[:, self.m], self.tol)
        assert result.log_nu is not None
        return np.concatenate([result.theta, result.log_nu[:, None]], axis=1)


def _remaining_error(step: Array, last: Array) -> tuple[Array, Array]:
    """Return each round's step size and its estimated distance left to the solution, in rating points.

    ``step`` is (parameters, rounds) and ``last`` the previous step sizes (inf at first). Chord steps shrink
    geometrically, by ``ratio`` each; once a step is under half the one before, the distance left is below
    size * ratio / (1 - ratio).
    """
    size = np.abs(step).max(axis=0) * RATING_SCALE
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = size / last
        error = np.where((ratio < 0.5) & np.isfinite(last), size * ratio / (1.0 - ratio), np.inf)
    return size, np.where(size == 0.0, 0.0, error)


def _rounds_without_mle(wins: Array, ties: Array, labels: NDArray[np.int32]) -> list[int]:
    """Return the rounds whose resample has no finite MLE or splits a component of the original data."""
    beats = (wins > 0) | (ties > 0)
    n_comp = int(labels.max()) + 1
    return [
        b for b in range(len(beats)) if graph.component_labels(beats[b])[0] != n_comp or not graph.mle_exists(beats[b])
    ]
