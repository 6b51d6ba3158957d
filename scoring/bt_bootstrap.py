"""Multinomial bootstrap of Bradley-Terry fits over aggregated battle counts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from scoring import bt_fit, graph
from scoring.battles import BattleCounts
from scoring.bt_fit import RATING_SCALE

TieMode = Literal["half", "davidson"]
DEFAULT_PRIOR = 1.0


@dataclass(frozen=True, eq=False)
class PointFit:
    """Point estimate on the natural log-strength scale plus diagnostics."""

    theta: NDArray[np.float64]
    log_nu: float | None
    labels: NDArray[np.int32]
    prior: float
    iterations: int


def fit_matrices(counts: BattleCounts, mode: TieMode) -> tuple[NDArray[np.float64], NDArray[np.float64] | None]:
    """Return the win matrix (with halves for ties in 'half' mode) and the tie matrix for Davidson."""
    wins = counts.wins.astype(np.float64)
    all_ties = counts.all_ties.astype(np.float64)
    if mode == "half":
        return wins + all_ties / 2, None
    return wins, all_ties


def bootstrap_thetas(
    counts: BattleCounts, fit: PointFit, mode: TieMode, rounds: int, rng: np.random.Generator, tol: float = 1e-6
) -> NDArray[np.float64]:
    """Refit ``rounds`` multinomial resamples of the aggregated counts, warm-started at the point fit.

    Each resample redistributes all battles over the (pair, outcome) cells in proportion to their counts.
    Rounds are solved with chord-Newton steps that reuse the point fit's inverse Hessian (one matrix product
    per step).
    """
    m = len(counts.models)
    pair_i, pair_j = np.nonzero(np.triu(counts.totals) > 0)
    cells = np.stack(
        [counts.wins[pair_i, pair_j], counts.wins[pair_j, pair_i], counts.all_ties[pair_i, pair_j]], axis=1
    ).ravel()
    keep = np.flatnonzero(cells)
    n_total = int(cells.sum())
    pvals = cells[keep] / n_total
    solver = _ChordSolver(counts, fit, mode, pair_i, pair_j, cells.reshape(-1, 3), tol)
    chunk = max(1, min(rounds, 2_000_000 // max(len(cells), 1)))
    out = np.empty((rounds, m))
    for start in range(0, rounds, chunk):
        size = min(chunk, rounds - start)
        draws = np.zeros((size, len(cells)))
        draws[:, keep] = rng.multinomial(n_total, pvals, size=size)
        out[start : start + size] = solver.solve(draws.reshape(size, -1, 3))
    return out


class _ChordSolver:
    """Solve resampled likelihoods by chord-Newton steps with the point fit's inverse Hessian."""

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
        self._scatter: tuple[int, NDArray[np.intp], NDArray[np.intp]] | None = None
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

    def solve(self, draws: NDArray[np.float64]) -> NDArray[np.float64]:
        """Return centred thetas for one chunk of resampled (pair, outcome) counts."""
        size = draws.shape[0]
        suspicious = self._lost_edges(draws) if self.fit.prior == 0.0 else np.zeros(size, dtype=bool)
        if self.mode == "half":
            x, active = self._half_chord(draws)
        else:
            x, active = self._davidson_chord(draws)
        redo = np.flatnonzero(active | suspicious)
        if len(redo):
            x[redo] = self._newton(draws[redo], np.repeat(self.x0[None], len(redo), axis=0))
        return bt_fit.center(x[:, : self.m], self.fit.labels)

    def _half_chord(self, draws: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
        """Iterate chord steps for half-tie Bradley-Terry in a pairs x rounds layout (the hot loop)."""
        size, m = draws.shape[0], self.m
        won = np.ascontiguousarray((draws[:, :, 0] + draws[:, :, 2] / 2).T)
        total = np.ascontiguousarray(draws.sum(axis=2).T)
        won_sum = np.bincount(self.scatter_i(size), won.ravel(), m * size)
        won_sum -= np.bincount(self.scatter_j(size), won.ravel(), m * size)
        theta = np.repeat(self.x0[:, None], size, axis=1)
        work = np.empty_like(won)
        step = np.full((m, size), np.inf)
        # Every round starts at the point fit, so the first iteration's probabilities are shared.
        start = 1.0 / (1.0 + np.exp(self.x0[self.pair_j] - self.x0[self.pair_i]))
        np.multiply(total, start[:, None], out=work)
        for iteration in range(100):
            if iteration:
                np.subtract(theta.take(self.pair_j, axis=0), theta.take(self.pair_i, axis=0), out=work)
                np.exp(work, out=work)
                work += 1.0
                np.divide(total, work, out=work)
            expected = np.bincount(self.scatter_i(size), work.ravel(), m * size)
            expected -= np.bincount(self.scatter_j(size), work.ravel(), m * size)
            grad: NDArray[np.float64] = np.asarray(won_sum - expected, dtype=np.float64).reshape(m, size)
            if self.fit.prior:
                grad += self.fit.prior * (0.5 - 1.0 / (1.0 + np.exp(-theta)))
            step = self.inv_hess @ grad
            theta += step
            if np.abs(step).max() * RATING_SCALE < self.tol:
                break
        active = np.abs(step).max(axis=0) * RATING_SCALE >= self.tol
        return np.ascontiguousarray(theta.T), active

    def scatter_i(self, size: int) -> NDArray[np.intp]:
        """Return flat (model, round) indices of each pair's first model in the pairs x rounds layout."""
        if self._scatter is None or self._scatter[0] != size:
            rounds = np.arange(size)
            self._scatter = (
                size,
                (self.pair_i[:, None] * size + rounds).ravel(),
                (self.pair_j[:, None] * size + rounds).ravel(),
            )
        return self._scatter[1]

    def scatter_j(self, size: int) -> NDArray[np.intp]:
        """Return flat (model, round) indices of each pair's second model."""
        self.scatter_i(size)
        assert self._scatter is not None
        return self._scatter[2]

    def _davidson_chord(self, draws: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
        """Iterate chord steps for the Davidson model on dense matrices."""
        wins, ties = self._dense(draws)
        prior = np.full(len(draws), self.fit.prior)
        x = np.repeat(self.x0[None], len(draws), axis=0)
        step = np.full_like(x, np.inf)
        for _ in range(100):
            grad = bt_fit.davidson_terms(x[:, : self.m], x[:, self.m], wins, ties, prior).grad
            step = grad @ self.inv_hess
            x += step
            if np.abs(step[:, : self.m]).max() * RATING_SCALE < self.tol:
                break
        return x, np.abs(step[:, : self.m]).max(axis=1) * RATING_SCALE >= self.tol

    def _lost_edges(self, draws: NDArray[np.float64]) -> NDArray[np.bool_]:
        """Return the rounds where a 'won or tied against' edge of the data vanished from the resample."""
        forward = draws[:, :, 0] + draws[:, :, 2]
        backward = draws[:, :, 1] + draws[:, :, 2]
        had_forward = self.cells[:, 0] + self.cells[:, 2] > 0
        had_backward = self.cells[:, 1] + self.cells[:, 2] > 0
        lost: NDArray[np.bool_] = ((forward == 0) & had_forward).any(axis=1) | ((backward == 0) & had_backward).any(
            axis=1
        )
        return lost

    def _dense(self, draws: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Return dense win and tie matrices of a chunk."""
        size, i, j = draws.shape[0], self.pair_i, self.pair_j
        wins = np.zeros((size, self.m, self.m))
        wins[:, i, j], wins[:, j, i] = draws[:, :, 0], draws[:, :, 1]
        ties = np.zeros((size, self.m, self.m))
        ties[:, i, j] = ties[:, j, i] = draws[:, :, 2]
        return wins, ties

    def _newton(self, draws: NDArray[np.float64], x: NDArray[np.float64]) -> NDArray[np.float64]:
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


def _rounds_without_mle(wins: NDArray[np.float64], ties: NDArray[np.float64], labels: NDArray[np.int32]) -> list[int]:
    """Return the rounds whose resample has no finite MLE or splits a component of the original data."""
    beats = (wins > 0) | (ties > 0)
    n_comp = len(np.unique(labels))
    return [
        b for b in range(len(beats)) if graph.component_labels(beats[b])[0] != n_comp or not graph.mle_exists(beats[b])
    ]
