"""Exact multinomial draws over many cells for many rounds at once.

``Mult(n, counts / n)`` is drawn by Poissonization. Independent Poisson counts with means ``lam * counts / n``
(``lam`` two standard deviations below ``n``) are, given their total ``s``, exactly ``Mult(s, counts / n)``; adding
``n - s`` independent categorical draws then gives exactly ``Mult(n, counts / n)``. Rounds whose total overshoots
``n`` (about 2%) are drawn again: that event depends on the total alone, so the rounds kept stay exact.

Each Poisson count inverts its cell's CDF at one uniform ``u`` (53 random bits): the count is the least ``x`` with
``F(x) > u``, found by a short upward search from a guide table (the least ``x`` with ``F(x) > g / SLICES`` for the
slice ``g`` that holds ``u``). The CDFs are computed in double precision (relative error of the tabulated
probabilities below about 1e-13) over supports that leave out less than 1e-17 of each cell's probability. Where the
tables would not fit in ``TABLE_BYTES``, numpy's Poisson sampler is used instead. Each categorical draw is an
integer ``k % n`` uniform below ``n``, from ``k = u * 2**53`` with the values of ``k`` at or above the largest
multiple of ``n`` rejected, located in the cumulative counts: exact.

The compiled kernels (``scoring.compiled``) and their numpy twins here take the same uniforms in the same order
(numpy's ``Generator.random``), so both give the same draws.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from scoring import compiled

OVERSHOOT_SD = 2.0
SLICES = 128
TAIL_SD = 9.0
TAIL_PAD = 12.0
TABLE_BYTES = 128 << 20
_BUILD_BATCH = 1024
_TWO_53 = 1 << 53

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]


def checked_counts(counts: NDArray[np.integer]) -> tuple[IntArray, int, float]:
    """Return the cell counts as int64, their sum n and the Poisson total drawn first (n less OVERSHOOT_SD sds).

    Raises ValueError unless ``counts`` is 1-d, non-negative and sums to less than 2**53 (exact as floats).
    """
    checked = np.asarray(counts, dtype=np.int64)
    if checked.ndim != 1 or (checked < 0).any():
        raise ValueError("counts must be a 1-d array of non-negative integers")
    n = int(checked.sum())
    if n >= _TWO_53:
        raise ValueError("counts must sum to less than 2**53")
    return checked, n, max(0.0, n - OVERSHOOT_SD * math.sqrt(n))


class MultinomialSampler:
    """Draw rounds of ``Mult(n, counts / n)``, where ``n`` is the sum of ``counts``."""

    def __init__(self, counts: NDArray[np.integer]) -> None:
        self.counts, self.n, self.lam = checked_counts(counts)
        # Cells without battles take part as Poisson(0) (always 0), so that draws fill the caller's array directly.
        self.means = self.lam * self.counts / max(self.n, 1)
        self.tables = _PoissonTables.build(self.means) if self.lam > 0 else None
        self.cumulative = np.cumsum(self.counts)
        self._guide: tuple[int, IntArray] | None = None

    def draw(self, rounds: int, rng: np.random.Generator, out: FloatArray | None = None) -> FloatArray:
        """Return a (cells, rounds) array of floats (exact integers) whose columns are independent draws.

        ``out``, a C-contiguous array of that shape, is filled and returned instead of a new array.
        """
        if out is None or out.shape != (len(self.counts), rounds) or not out.flags.c_contiguous:
            out = np.empty((len(self.counts), rounds))
        if not self.n or rounds == 0:
            out.fill(0.0)
            return out
        if self.tables is None:
            out.fill(0.0)
        totals = np.zeros(rounds)
        self._poisson(out, totals, np.arange(rounds), rng)
        over = np.flatnonzero(totals > self.n)
        while len(over):
            self._poisson(out, totals, over, rng)
            over = over[totals[over] > self.n]
        self._categorical(out, (self.n - totals).astype(np.int64), rng)
        return out

    def _poisson(self, out: FloatArray, totals: FloatArray, columns: IntArray, rng: np.random.Generator) -> None:
        """Set the given columns of ``out`` (cells, rounds) to independent Poisson counts, ``totals`` to their sums."""
        if self.tables is None:
            return
        if self.tables.cdf is None:
            out[:, columns] = rng.poisson(self.means[:, None], size=(len(self.means), len(columns)))
            totals[columns] = out[:, columns].sum(axis=0)
        elif compiled.kernels is not None:
            tables = self.tables
            compiled.kernels.poisson_fill(
                rng.bit_generator.capsule,
                tables.cdf,
                tables.offsets,
                tables.low,
                tables.guide,
                tables.order,
                out,
                columns,
                totals,
            )
        else:
            counts = self.tables.invert(rng.random((len(self.means), len(columns))))
            if len(columns) == out.shape[1]:  # all of them, in order
                out[self.tables.order] = counts
            else:
                out[np.ix_(self.tables.order, columns)] = counts
            totals[columns] = counts.sum(axis=0)

    def _categorical(self, out: FloatArray, draws: IntArray, rng: np.random.Generator) -> None:
        """Add ``draws[r]`` categorical draws to column ``r`` of ``out``, one column after another."""
        if compiled.kernels is not None:
            compiled.kernels.categorical_add(rng.bit_generator.capsule, self.cumulative, draws, out)
            return
        limit = (_TWO_53 // self.n) * self.n
        kept, need = [], int(draws.sum())
        while need:
            k = (rng.random(need) * float(_TWO_53)).astype(np.int64)
            kept.append(k[k < limit])
            need -= len(kept[-1])
        if kept:
            values = np.concatenate(kept) % self.n
            # As the kernel: start at the first cell past the value's bucket's least value, step while below.
            shift, guide = self._categorical_guide()
            cell = guide.take(values >> shift)
            pending = np.flatnonzero(self.cumulative.take(cell) <= values)
            while len(pending):
                cell[pending] += 1
                pending = pending[self.cumulative.take(cell[pending]) <= values[pending]]
            np.add.at(out, (cell, np.repeat(np.arange(len(draws)), draws)), 1.0)

    def _categorical_guide(self) -> tuple[int, IntArray]:
        """Return the shift and the guide of the categorical draws: the first cell past each bucket's least value."""
        if self._guide is None:
            shift = 0
            while (self.n - 1) >> shift >= 2 * len(self.counts):
                shift += 1
            least = np.arange(((self.n - 1) >> shift) + 1, dtype=np.int64) << shift
            self._guide = shift, np.searchsorted(self.cumulative, least, side="right")
        return self._guide


class _PoissonTables:
    """CDF tables of independent Poisson distributions, one row per mean.

    Row ``k`` holds F_k(low[k] + x) for x < width[k] at ``cdf[offsets[k] + x]``, ending at exactly 1 at ``last[k]``;
    ``cdf`` is None where the tables did not fit. ``order`` lists the rows as they are stored, and draws go through
    the cells in that order, which reads the tables from front to back (in the order of the cells' numbers they
    would come from all over memory). ``guide[q, g]`` is the least x with F_k(low[k] + x) > g / SLICES for the
    q-th row stored, k = order[q].
    """

    def __init__(self, means: FloatArray) -> None:
        self.means = means
        self.low = np.zeros(len(means), dtype=np.int64)
        self.offsets = np.zeros(len(means), dtype=np.int64)
        self.last = np.zeros(len(means), dtype=np.int64)
        self.cdf: FloatArray | None = None
        self.guide = np.zeros((len(means), SLICES), dtype=np.uint16)
        self.order = np.arange(len(means), dtype=np.int64)

    @classmethod
    def build(cls, means: FloatArray) -> _PoissonTables:
        """Tabulate Poisson(mean) for each mean over a support holding all but 1e-17 of it (if it fits)."""
        tables = cls(means)
        spread = TAIL_SD * np.sqrt(means) + TAIL_PAD
        low = np.maximum(0.0, np.floor(means - spread)).astype(np.int64)
        width = np.ceil(means + spread).astype(np.int64) - low + 1
        order = np.argsort(width, kind="stable")
        batches = [order[start : start + _BUILD_BATCH] for start in range(0, len(order), _BUILD_BATCH)]
        # Every row of a batch gets the batch's widest support: a little more tail, one rectangle per batch.
        width[order] = np.concatenate([np.full(len(rows), width[rows[-1]]) for rows in batches])
        if int(width.sum()) * 8 + tables.guide.nbytes > TABLE_BYTES or int(width.max()) > 1 << 16:
            return tables
        tables.low, tables.order = low, order.astype(np.int64)
        # Rows are stored batch after batch, so that each batch's rectangle is one slice of the flat CDF.
        tables.offsets[order] = np.concatenate([[0], np.cumsum(width[order])[:-1]])
        tables.last = tables.offsets + width - 1
        lgamma = np.array([math.lgamma(v + 1.0) for v in low.tolist()])
        # p(low); a mean of 0 (a cell without battles) has p(0) = 1 and every later p(x) = 0.
        first = np.where(means > 0, np.exp(low * np.log(np.where(means > 0, means, 1.0)) - means - lgamma), 1.0)
        tables.cdf = np.empty(int(width.sum()))
        if compiled.kernels is not None:
            compiled.kernels.poisson_tables(
                first, means, low, width, tables.offsets, tables.order, tables.cdf, tables.guide
            )
            return tables
        inverse = 1.0 / np.maximum(np.arange(int((low + width).max()) + 1), 1)
        position = 0
        for rows in batches:
            rectangle = _cdf_rows(first[rows], means[rows], low[rows], int(width[rows[0]]), inverse)
            start = int(tables.offsets[rows[0]])
            tables.cdf[start : start + rectangle.size] = rectangle.ravel()
            tables.guide[position : position + len(rows)] = _guide_rows(rectangle)
            position += len(rows)
        return tables

    def invert(self, u: FloatArray) -> FloatArray:
        """Return low + min{x : F(low + x) > u} for uniforms u, rows in stored order: the kernel's numpy twin."""
        assert self.cdf is not None
        slot = (u * SLICES).astype(np.int64)
        offsets, low = self.offsets[self.order], self.low[self.order]
        at = offsets[:, None] + np.take_along_axis(self.guide, slot, axis=1)
        flat_at, flat_u = at.ravel(), u.ravel()
        # Most draws need at most two steps from the guide; a binary search up to the row's end settles the rest.
        for _ in range(2):
            flat_at += self.cdf.take(flat_at) <= flat_u
        pending = np.flatnonzero(self.cdf.take(flat_at) <= flat_u)
        if len(pending):
            lo, hi = flat_at[pending] + 1, self.last[self.order].take(pending // u.shape[1])
            while (lo < hi).any():
                mid = (lo + hi) >> 1
                above = self.cdf.take(mid) > flat_u[pending]
                hi, lo = np.where(above, mid, hi), np.where(above, lo, mid + 1)
            flat_at[pending] = lo
        return (at - offsets[:, None] + low[:, None]).astype(np.float64)


def _cdf_rows(first: FloatArray, means: FloatArray, low: IntArray, width: int, inverse: FloatArray) -> FloatArray:
    """Return the Poisson CDFs over low .. low + width - 1, one row per mean, renormalised to end at exactly 1.

    ``first`` is p(low) and ``inverse[x]`` is 1 / x: p(x) = p(x - 1) * (mean / x), multiplied along each row. The
    kernel computes the same products and sums in the same order, so its tables are the same to the last bit.
    """
    pmf = np.empty((len(means), width))
    pmf[:, 0] = first
    np.multiply(means[:, None], inverse.take(low[:, None] + np.arange(1, width)), out=pmf[:, 1:])
    np.cumprod(pmf, axis=1, out=pmf)
    cdf = np.cumsum(pmf, axis=1, out=pmf)
    cdf /= cdf[:, -1:]
    cdf[:, -1] = 1.0
    return cdf


def _guide_rows(cdf: FloatArray) -> NDArray[np.uint16]:
    """Return, per CDF row, the least x with F(x) > g / SLICES for g = 0 .. SLICES - 1.

    F(x) <= g / SLICES exactly when ceil(F(x) * SLICES) <= g (exact: SLICES is a power of two), so the least such x
    is the number of x whose ceiling is at most g.
    """
    rows = len(cdf)
    ceiling = np.ceil(cdf * SLICES).astype(np.int64) + (np.arange(rows) * (SLICES + 1))[:, None]
    per_value = np.bincount(ceiling.ravel(), minlength=rows * (SLICES + 1)).reshape(rows, SLICES + 1)
    return np.cumsum(per_value[:, :SLICES], axis=1).astype(np.uint16)
