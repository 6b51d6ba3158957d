"""Exact multinomial redraws of style control's rows, one round per row of a (rounds, cells) array.

The rows of a style-control design (``scoring.style.Design``) are mostly distinct battles: a million cells, nearly
all with a count of 1. ``scoring.multinomial.MultinomialSampler`` tabulates one Poisson CDF per cell, which does not
fit at that size (it falls back to numpy's Poisson sampler, about 50 ms a round of a million cells). The
Poissonization here is the same (Poisson counts with means ``lam * count / n``, rounds whose total overshoots ``n``
drawn again, then ``n - total`` categorical draws, so the result is exactly ``Mult(n, counts / n)``), but cells
with the same count share one table: a class per distinct count. Draws come out round by round (C order), which is
what each round's refit reads; the compiled ``poisson_classes`` and ``categorical_add`` and their numpy twins here
take the same uniforms in the same order, so both give the same draws.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from scoring import compiled
from scoring.multinomial import SLICES, _PoissonTables, checked_counts

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]
_TWO_53 = 1 << 53


class ClassSampler:
    """Draw rounds of ``Mult(n, counts / n)`` over cells whose counts take few distinct values."""

    def __init__(self, counts: NDArray[np.integer]) -> None:
        self.counts, self.n, self.lam = checked_counts(counts)
        values, classes = np.unique(self.counts, return_inverse=True)
        self.classes = classes.ravel().astype(np.int64)
        self.means = self.lam * values / max(self.n, 1)
        self.cumulative = np.cumsum(self.counts)
        self.tables = _PoissonTables.build(self.means) if self.lam > 0 else None
        if self.tables is not None and self.tables.cdf is not None:
            guide = np.empty_like(self.tables.guide)
            guide[self.tables.order] = self.tables.guide  # by class, not by stored position
            self.guide = guide

    def draw(self, rounds: int, rng: np.random.Generator) -> FloatArray:
        """Return a (rounds, cells) array of floats (exact integers) whose rows are independent draws."""
        out = np.zeros((rounds, len(self.counts)))
        if not self.n or not rounds:
            return out
        totals = np.zeros(rounds)
        self._poisson(out, totals, np.arange(rounds), rng)
        over = np.flatnonzero(totals > self.n)
        while len(over):
            self._poisson(out, totals, over, rng)
            over = over[totals[over] > self.n]
        for r in range(rounds):
            self._categorical(out[r], self.n - int(totals[r]), rng)
        return out

    def _poisson(self, out: FloatArray, totals: FloatArray, rows: IntArray, rng: np.random.Generator) -> None:
        """Set the given rows of ``out`` to independent Poisson counts and ``totals`` to their sums."""
        tables = self.tables
        if tables is None:
            return
        if tables.cdf is None:
            for r in rows.tolist():
                out[r] = rng.poisson(self.means[self.classes])
                totals[r] = out[r].sum()
        elif compiled.kernels is not None:
            compiled.kernels.poisson_classes(
                rng.bit_generator.capsule,
                tables.cdf,
                tables.offsets,
                tables.low,
                self.guide,
                self.classes,
                out,
                rows,
                totals,
            )
        else:
            for r in rows.tolist():
                out[r] = self._invert(rng.random(len(self.counts)))
                totals[r] = out[r].sum()

    def _invert(self, u: FloatArray) -> FloatArray:
        """Return low + min{x : F(low + x) > u} per cell, from its class's table: the kernel's numpy twin."""
        tables = self.tables
        assert tables is not None
        assert tables.cdf is not None
        start = tables.offsets.take(self.classes)
        at = start + self.guide[self.classes, (u * SLICES).astype(np.int64)]
        pending = np.flatnonzero(tables.cdf.take(at) <= u)
        while len(pending):
            at[pending] += 1
            pending = pending[tables.cdf.take(at[pending]) <= u[pending]]
        return (at - start + tables.low.take(self.classes)).astype(np.float64)

    def _categorical(self, row: FloatArray, draws: int, rng: np.random.Generator) -> None:
        """Add ``draws`` categorical draws (cell c with probability counts[c] / n) to ``row``."""
        if draws <= 0:
            return
        if compiled.kernels is not None:
            column = row.reshape(-1, 1)  # a view: the kernel adds into (cells, rounds) with one round
            compiled.kernels.categorical_add(rng.bit_generator.capsule, self.cumulative, np.array([draws]), column)
            return
        limit = (_TWO_53 // self.n) * self.n
        kept, need = [], draws
        while need:
            k = (rng.random(need) * float(_TWO_53)).astype(np.int64)
            kept.append(k[k < limit])
            need -= len(kept[-1])
        values = np.concatenate(kept) % self.n
        np.add.at(row, np.searchsorted(self.cumulative, values, side="right"), 1.0)
