"""Multinomial bootstrap of Bradley-Terry fits over aggregated battle counts.

Each round redistributes all battles over the (pair, outcome) cells in proportion to their counts, an exact
multinomial draw (``scoring.multinomial``), and refits. Rounds go in chunks of ``CHUNK_ROUNDS``, each drawn from its
own random stream spawned from ``rng``: the result depends on the seed alone, not on how many threads share the
chunks (numpy releases the GIL in the array work, so threads use the machine's cores).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from scoring import bt_fit, bt_pairs, compiled, graph
from scoring.battles import BattleCounts
from scoring.bt_fit import RATING_SCALE
from scoring.cores import idle_cores, single_threaded_blas
from scoring.multinomial import MultinomialSampler

TieMode = Literal["half", "davidson"]
DEFAULT_PRIOR = 1.0
CHUNK_ROUNDS = 64
DENSE_BYTES = 8 << 20
MAX_CHORD_STEPS = 25

Array = NDArray[np.float64]
Counts = NDArray[np.floating]


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


@single_threaded_blas
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

    ``workers`` threads share the chunks of rounds (default: one per idle core); the numbers do not depend on
    it.
    """
    pair_i, pair_j = np.nonzero(np.triu(counts.totals) > 0)
    cells = np.stack([counts.wins[pair_i, pair_j], counts.wins[pair_j, pair_i], counts.all_ties[pair_i, pair_j]])
    sampler = MultinomialSampler(cells.ravel())
    solver = _ChordSolver(counts, fit, mode, pair_i, pair_j, cells, tol)
    sizes = [min(CHUNK_ROUNDS, rounds - start) for start in range(0, rounds, CHUNK_ROUNDS)]
    streams = np.random.SeedSequence(rng.integers(0, 1 << 63, size=4)).spawn(len(sizes))

    buffers = threading.local()

    def run(chunk: int) -> Array:
        # Each thread reuses one array for its chunks' draws rather than having fresh pages mapped for each.
        out = sampler.draw(sizes[chunk], np.random.default_rng(streams[chunk]), getattr(buffers, "draws", None))
        buffers.draws = out
        return solver.solve(out.reshape(3, len(pair_i), sizes[chunk]))

    threads = max(1, min(workers or idle_cores(), len(sizes)))
    if threads == 1:
        return np.concatenate([run(chunk) for chunk in range(len(sizes))])
    from concurrent.futures import ThreadPoolExecutor  # only here: it imports logging, which start-up can skip

    with ThreadPoolExecutor(threads) as pool:
        return np.concatenate(list(pool.map(run, range(len(sizes)))))


class _OpponentSums:
    """Sum per-pair values over each model's opponents, for a chunk of rounds.

    Dense (models x models x rounds) arrays where most pairs met (broadcasting, no gathers), else the list of pairs
    in both directions sorted by model (``reduceat``). Pairs come sorted by their first model.
    """

    def __init__(self, m: int, pair_i: NDArray[np.intp], pair_j: NDArray[np.intp]) -> None:
        self.m, self.pair_i, self.pair_j = m, pair_i, pair_j
        self.dense = 4 * len(pair_i) >= m * m and m * m * CHUNK_ROUNDS * 8 <= DENSE_BYTES
        self.by_first = _Segments(pair_i, m)
        self.by_second = _Segments(pair_j, m)
        ends = np.concatenate([pair_i, pair_j])
        self.by_either = _Segments(ends, m)
        self.opponents = np.concatenate([pair_j, pair_i])[self.by_either.order]
        self.buffers = threading.local()

    def per_model(self, first: Counts, second: Counts) -> Array:
        """Return, per model, the sum of ``first`` over its pairs as first model and ``second`` as second."""
        return self.by_first.sums(first) + self.by_second.sums(second)

    def load(self, values: Counts) -> Counts:
        """Return per-pair values (pairs x rounds) laid out for ``over_sums``."""
        if not self.dense:
            return values.take(self.by_either.order % len(self.pair_i), axis=0)
        out = self._buffer("load", values.shape[1])
        out[self.pair_i, self.pair_j] = values
        out[self.pair_j, self.pair_i] = values
        return out

    def over_sums(self, loaded: Counts, strength: Array) -> Array:
        """Return sum over opponents j of value_ij / (strength_i + strength_j), (models x rounds)."""
        if not self.dense:
            work = strength.take(self.by_either.owners, axis=0)
            work += strength.take(self.opponents, axis=0)
            np.divide(loaded, work, out=work)
            return self.by_either.sums(work, presorted=True)
        work = np.add(strength[:, None, :], strength[None, :, :], out=self._buffer("work", strength.shape[1]))
        np.divide(loaded, work, out=work)
        summed: Array = work.sum(axis=1)
        return summed

    def _buffer(self, name: str, rounds: int) -> Array:
        """Return this thread's (models x models x rounds) scratch array ``name``, zero where no pair met."""
        arrays: dict[tuple[str, int], Array] = self.buffers.__dict__.setdefault("arrays", {})
        if (name, rounds) not in arrays:
            arrays[name, rounds] = np.zeros((self.m, self.m, rounds))
        return arrays[name, rounds]


class _Segments:
    """Sum rows that belong to the same model with ``reduceat``."""

    def __init__(self, owner: NDArray[np.intp], m: int) -> None:
        self.m = m
        self.order = np.argsort(owner, kind="stable")
        self.owners = owner[self.order]
        self.sorted = bool((self.order == np.arange(len(owner))).all())
        self.models, self.starts = np.unique(self.owners, return_index=True)

    def mins(self, values: Counts) -> Array:
        """Return each model's minimum of the rows of ``values`` (inf for a model without rows)."""
        rows = values if self.sorted else values.take(self.order, axis=0)
        out = np.full((self.m, values.shape[1]), np.inf)
        if len(rows):
            out[self.models] = np.minimum.reduceat(rows, self.starts, axis=0)
        return out

    def sums(self, values: Counts, presorted: bool = False) -> Array:
        """Return each model's sum of the rows of ``values`` (in the owners' order if ``presorted``)."""
        rows = values if presorted or self.sorted else values.take(self.order, axis=0)
        out = np.zeros((self.m, values.shape[1]))
        if len(rows):
            out[self.models] = np.add.reduceat(rows, self.starts, axis=0)
        return out


class _ChordSolver:
    """Solve resampled likelihoods by chord-Newton steps with the point fit's inverse Hessian.

    A chunk arrives as (3, pairs, rounds) counts: wins of the pair's first model, of its second, and ties.
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
        self.fit, self.mode, self.tol = fit, mode, tol
        self.pair_i, self.pair_j, self.m = pair_i.astype(np.int64), pair_j.astype(np.int64), len(counts.models)
        self.sums = _OpponentSums(self.m, pair_i, pair_j)
        self.had_forward = (cells[0] + cells[2] > 0)[:, None]
        self.had_backward = (cells[1] + cells[2] > 0)[:, None]
        self.had = np.ascontiguousarray(np.stack([self.had_forward[:, 0], self.had_backward[:, 0]]), dtype=np.uint8)
        self.buffers = threading.local()
        win, tie = fit_matrices(counts, mode)
        prior = np.array([fit.prior])
        if tie is None:
            neg_hess = bt_fit.half_terms(fit.theta[None], win[None], prior).neg_hess[0]
            self.x0 = np.ascontiguousarray(fit.theta, dtype=np.float64)
        else:
            assert fit.log_nu is not None
            log_nu = np.array([fit.log_nu], dtype=np.float64)
            neg_hess = bt_fit.davidson_terms(fit.theta[None], log_nu, win[None], tie[None], prior).neg_hess[0]
            self.x0 = np.append(fit.theta, log_nu)
        inv_hess = np.linalg.pinv(neg_hess, hermitian=True) if fit.prior == 0.0 else np.linalg.inv(neg_hess)
        self.inv_hess = np.ascontiguousarray(inv_hess)

    def solve(self, draws: Counts) -> Array:
        """Return centred thetas, (rounds, models), for one chunk of resampled counts, (3, pairs, rounds)."""
        if self.mode == "half":
            x, active, lost = self._half_chord(draws) if compiled.kernels is None else self._compiled_half_chord(draws)
        else:
            x, active = self._davidson_chord(draws)
            lost = self._lost_edges(draws[0] + draws[2], draws[1] + draws[2])
        refit = active.copy()
        check = np.flatnonzero(lost & ~active)
        if len(check):
            refit[check] = ~self._lost_edge_fit_stands(draws, check)
        redo = np.flatnonzero(refit)
        if len(redo):
            some = draws if len(redo) == len(refit) else draws[:, :, redo]
            x[redo] = self._newton(some, np.repeat(self.x0[None], len(redo), axis=0), x[redo])
        return bt_fit.center(x[:, : self.m], self.fit.labels)

    def _lost_edge_fit_stands(self, draws: Counts, rounds: NDArray[np.intp]) -> NDArray[np.bool_]:
        """Return whether the converged chord fits of rounds that lost an edge stand: a vanishing gradient means
        a finite MLE, unique unless the round has no unique one (see ``_without_mle``)."""
        return np.asarray(~self._without_mle(draws, rounds))

    def _without_mle(self, draws: Counts, rounds: NDArray[np.intp]) -> NDArray[np.bool_]:
        """Return, for the given rounds, whether the resample has no unique finite MLE (as _rounds_without_mle).

        That is where, in some component of the data, the 'won or tied against' digraph of the round is not
        strongly connected (Zermelo's condition; a component that split is not either). Checked for all the rounds
        at once: what the first model of each component reaches, and what reaches it, spread along the edges until
        nothing changes (as many passes as the components' diameter). Where chord steps converged for a round that
        lost an edge, this is what decides whether their fit stands. Rounds whose every lost edge is bridged by a
        path of two edges are strongly connected where the data are (``_bridged``) and skip the search.
        """
        forward = (draws[0] + draws[2] > 0).take(rounds, axis=1)  # first model won or tied against the second
        backward = (draws[1] + draws[2] > 0).take(rounds, axis=1)
        out = np.zeros(len(rounds), dtype=bool)
        search = np.flatnonzero(~self._bridged(forward, backward))
        if len(search):
            out[search] = self._not_strongly_connected(forward[:, search], backward[:, search])
        return out

    def _bridged(self, forward: NDArray[np.bool_], backward: NDArray[np.bool_]) -> NDArray[np.bool_]:
        """Return the rounds where each 'won or tied against' edge i -> j of the data that vanished has some k
        with i -> k -> j left: every path of the data then has one in the round. (pairs, rounds) in."""
        m, rounds = self.m, forward.shape[1]
        packed = []
        for tail, head in ((self.pair_i, self.pair_j), (self.pair_j, self.pair_i)):
            # Row (round, i) holds one bit per model (padded to 64-bit words): i -> k for the successors, k -> i
            # for the predecessors.
            edges = np.zeros((rounds, m, -(-m // 64) * 64), dtype=bool)
            edges[:, tail, head] = forward.T
            edges[:, head, tail] = backward.T
            packed.append(np.packbits(edges, axis=2).view(np.uint64))
        successors, predecessors = packed
        out = np.ones(rounds, dtype=bool)
        for kept, had, (tail, head) in (
            (forward, self.had_forward, (self.pair_i, self.pair_j)),
            (backward, self.had_backward, (self.pair_j, self.pair_i)),
        ):
            pair, round_ = np.nonzero(had & ~kept)
            if len(pair):
                bridged = (successors[round_, tail[pair]] & predecessors[round_, head[pair]]).any(axis=1)
                out[round_[~bridged]] = False
        return out

    def _not_strongly_connected(self, forward: NDArray[np.bool_], backward: NDArray[np.bool_]) -> NDArray[np.bool_]:
        """Return the rounds where the 'won or tied against' digraph splits a component of the data."""
        rounds = np.arange(forward.shape[1])
        forward, backward = forward.astype(np.float64), backward.astype(np.float64)
        labels = self.fit.labels
        roots = np.zeros(self.m)
        roots[np.unique(labels, return_index=True)[1]] = 1.0
        by_first, by_second = self.sums.by_first, self.sums.by_second
        strong = np.ones(len(rounds), dtype=bool)
        for into_second, into_first in ((forward, backward), (backward, forward)):
            reach = np.repeat(roots[:, None], len(rounds), axis=1)
            while True:
                # Node j (second of a pair) is reached from i along i -> j, node i along j -> i.
                at_second = -by_second.mins(-(reach.take(self.pair_i, axis=0) * into_second))
                at_first = -by_first.mins(-(reach.take(self.pair_j, axis=0) * into_first))
                updated = np.maximum(reach, np.maximum(at_second, at_first))
                if np.array_equal(updated, reach):
                    break
                reach = updated
            strong &= (reach > 0).all(axis=0)
        return np.asarray(~strong)

    def _half_chord(self, draws: Counts) -> tuple[Array, NDArray[np.bool_], NDArray[np.bool_]]:
        """Iterate chord steps for half-tie Bradley-Terry (the hot loop); also return the rounds that lost an edge.

        With e = exp(theta), the expected score of model i is e_i * sum_j n_ij / (e_i + e_j).
        """
        half_ties = draws[2] * 0.5
        first = draws[0] + half_ties
        second = draws[1] + half_ties
        battles = self.sums.load(first + second)
        score = self.sums.per_model(first, second)
        # A pair's score for a side is zero exactly when that side neither won nor tied.
        lost = self._lost_edges(first, second)
        theta = np.repeat(self.x0[:, None], draws.shape[2], axis=1)
        last = error = np.full(draws.shape[2], np.inf)
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
        return np.ascontiguousarray(theta.T), ~(error < self.tol), lost

    def _compiled_half_chord(self, draws: Counts) -> tuple[Array, NDArray[np.bool_], NDArray[np.bool_]]:
        """Do what ``_half_chord`` and ``_lost_edges`` do, in the compiled kernel."""
        assert compiled.kernels is not None
        rounds = draws.shape[2]
        theta, error, lost = np.empty((self.m, rounds)), np.empty(rounds), np.empty(rounds, dtype=np.uint8)
        compiled.kernels.half_chord(
            np.ascontiguousarray(draws, dtype=np.float64),
            self.pair_i,
            self.pair_j,
            self.had,
            self.x0,
            self.inv_hess,
            self.fit.prior,
            self.tol,
            MAX_CHORD_STEPS,
            RATING_SCALE,
            self._scratch((len(self.pair_i) + 5 * self.m + 2) * rounds),
            theta,
            error,
            lost,
        )
        return np.ascontiguousarray(theta.T), ~(error < self.tol), lost.astype(bool)

    def _scratch(self, size: int) -> Array:
        """Return this thread's scratch array of ``size`` doubles (kept between chunks: no fresh pages each time)."""
        scratch: Array | None = getattr(self.buffers, "scratch", None)
        if scratch is None or len(scratch) < size:
            scratch = self.buffers.scratch = np.empty(size)
        return scratch

    def scratch_rows(self, rows: int, size: int) -> Array:
        """Return this thread's scratch array of ``rows`` x ``size`` doubles (kept between calls: no fresh pages)."""
        rows_array: Array | None = getattr(self.buffers, "rows", None)
        if rows_array is None or rows_array.shape[0] < rows or rows_array.shape[1] != size:
            rows_array = self.buffers.rows = np.empty((max(rows, CHUNK_ROUNDS), size))
        return rows_array[:rows]

    def _davidson_chord(self, draws: Counts) -> tuple[Array, NDArray[np.bool_]]:
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

    def _lost_edges(self, forward: Counts, backward: Counts) -> NDArray[np.bool_]:
        """Return the rounds where a 'won or tied against' edge of the data vanished from the resample.

        ``forward`` and ``backward`` are (pairs, rounds) values that are zero exactly where the pair's first or
        second model neither won nor tied. Only a fit without the prior can lose its maximum-likelihood estimate.
        """
        lost = np.zeros(forward.shape[1], dtype=bool)
        if self.fit.prior:
            return lost
        for kept, had in ((forward, self.had_forward), (backward, self.had_backward)):
            lost |= np.min(kept, axis=0, where=had, initial=1.0) == 0
        return lost

    def _dense(self, draws: Counts) -> tuple[Array, Array]:
        """Return dense (rounds, models, models) win and tie matrices of a chunk."""
        rounds, i, j = draws.shape[2], self.pair_i, self.pair_j
        wins = np.zeros((rounds, self.m, self.m))
        wins[:, i, j], wins[:, j, i] = draws[0].T, draws[1].T
        ties = np.zeros((rounds, self.m, self.m))
        ties[:, i, j] = ties[:, j, i] = draws[2].T
        return wins, ties

    def _newton(self, draws: Counts, x: Array, chord: Array | None = None) -> Array:
        """Fit the given rounds by full Newton, with the default prior where their MLE does not exist.

        Each round starts from ``x`` or, in half-tie mode, from its unfinished chord iterate in ``chord`` where
        that is finite and at least as likely: slowly converging chord steps usually end close to the solution.
        """
        prior = np.full(len(x), self.fit.prior)
        if not self.fit.prior:
            prior[self._without_mle(draws, np.arange(len(x)))] = DEFAULT_PRIOR
        theta0 = x[:, : self.m]
        if self.mode == "half":
            return self._pair_newton(draws, prior, theta0, None if chord is None else chord[:, : self.m])
        wins, ties = self._dense(draws)
        result = bt_fit.newton(wins, ties, self.fit.labels, prior, theta0, x[:, self.m], self.tol)
        assert result.log_nu is not None
        return np.concatenate([result.theta, result.log_nu[:, None]], axis=1)

    def _pair_newton(self, draws: Counts, prior: Array, theta0: Array, alternative: Array | None = None) -> Array:
        """Fit half-tie rounds (``prior`` per round) by ``bt_pairs.pair_newton``; returns (rounds, models)."""
        likelihood = bt_pairs.PairLikelihood(
            self.pair_i, self.pair_j, self.sums.per_model, self.fit.labels, draws, prior, self.scratch_rows
        )
        return bt_pairs.pair_newton(likelihood, theta0, self.tol, alternative)


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
