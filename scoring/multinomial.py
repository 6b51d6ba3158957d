"""Exact multinomial draws over many cells for many rounds at once.

``Mult(n, counts / n)`` is drawn by Poissonization. Independent Poisson counts with means ``lam * counts / n``
(``lam`` two standard deviations below ``n``) are, given their total ``s``, exactly ``Mult(s, counts / n)``; adding
``n - s`` independent categorical draws then gives exactly ``Mult(n, counts / n)``. Rounds whose total overshoots
``n`` (about 2%) are drawn again: that event depends on the total alone, so the rounds kept stay exact.

The Poisson counts come from per-cell inverse-CDF tables: a random integer picks one of ``SLICES`` equal slices of
[0, 1); where the slice lies inside one step of the cell's CDF (about 90% of draws) the table holds the count,
otherwise the slice's record (the counts at its two ends and where the CDF steps inside it) settles the count with
one fresh uniform, and a binary search of the CDF settles the few slices that hold several steps. That is inversion
of the CDF, computed in double precision (relative error of the tabulated probabilities below about 1e-13); each
cell's table leaves out less than 1e-17 of its probability. Where the tables would not fit in ``TABLE_BYTES``,
numpy's Poisson sampler is used instead. The categorical draws are integers below ``n`` located in the cumulative
counts, so they are exact.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numpy.typing import NDArray

from scoring.cores import idle_cores

OVERSHOOT_SD = 2.0
SLICES = 512
TAIL_SD = 9.0
TAIL_PAD = 12.0
TABLE_BYTES = 128 << 20
GUIDE_BITS = 18
GUIDE_FLAG = 1 << 30
UNSURE = 1 << 15
_BUILD_BATCH = 1024

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.floating]


class MultinomialSampler:
    """Draw rounds of ``Mult(n, counts / n)``, where ``n`` is the sum of ``counts``."""

    def __init__(self, counts: NDArray[np.integer]) -> None:
        self.counts = np.asarray(counts, dtype=np.int64)
        if self.counts.ndim != 1 or (self.counts < 0).any():
            raise ValueError("counts must be a 1-d array of non-negative integers")
        self.n = int(self.counts.sum())
        self.cells = np.flatnonzero(self.counts)
        self.lam = max(0.0, self.n - OVERSHOOT_SD * math.sqrt(self.n))
        self.means = self.lam * self.counts[self.cells] / max(self.n, 1)
        # Counts up to 2**24 are exact in float32, which halves the memory the rounds stream through.
        self.dtype: np.dtype[np.floating] = np.dtype(np.float32) if self.n < 1 << 24 else np.dtype(np.float64)
        self.tables = _PoissonTables.build(self.means, self.dtype) if self.lam > 0 else None
        self.categorical = _Categorical(self.counts[self.cells]) if self.n else None

    def draw(self, rounds: int, rng: np.random.Generator) -> FloatArray:
        """Return a (cells, rounds) array whose columns are independent multinomial draws.

        The counts are floats (``dtype``: float32 when they stay below 2**24, else float64), exact integers.
        """
        if self.categorical is None or rounds == 0:
            return np.zeros((len(self.counts), rounds), dtype=self.dtype)
        kept = self._poisson(rounds, rng)
        totals = kept.sum(axis=0)
        over = np.flatnonzero(totals > self.n)
        while len(over):
            kept[:, over] = self._poisson(len(over), rng)
            totals[over] = kept[:, over].sum(axis=0)
            over = over[totals[over] > self.n]
        self.categorical.add(kept, (self.n - totals).astype(np.int64), rng)
        if len(self.cells) == len(self.counts):
            return kept
        out = np.zeros((len(self.counts), rounds), dtype=self.dtype)
        out[self.cells] = kept
        return out

    def _poisson(self, rounds: int, rng: np.random.Generator) -> FloatArray:
        """Return independent Poisson counts, (cells with a positive count, rounds)."""
        if self.tables is None:
            return np.zeros((len(self.cells), rounds), dtype=self.dtype)
        return self.tables.sample(rounds, rng)


class _Categorical:
    """Independent draws of a cell with probability proportional to its (positive) count."""

    def __init__(self, counts: IntArray) -> None:
        self.cumulative = np.cumsum(counts)
        self.n = int(self.cumulative[-1])
        self.bits = GUIDE_BITS if self.n < 1 << (62 - GUIDE_BITS) else 0
        # Integers r with floor(r * 2**bits / n) == g lie in [first[g], first[g + 1]); so do their cells, whose
        # range the guide holds, flagged with GUIDE_FLAG where it is more than one cell.
        if len(counts) >= GUIDE_FLAG:
            raise ValueError("too many cells")
        g = np.arange((1 << self.bits) + 1, dtype=np.int64)
        cells = np.searchsorted(self.cumulative, -((-g * self.n) >> self.bits), side="right")
        self.guide = np.where(cells[1:] != cells[:-1], cells[:-1] | GUIDE_FLAG, cells[:-1]).astype(np.int32)

    def add(self, out: FloatArray, draws: IntArray, rng: np.random.Generator) -> None:
        """Add ``draws[r]`` categorical draws to column ``r`` of ``out`` (cells x rounds)."""
        total = int(draws.sum())
        if not total:
            return
        r = rng.integers(0, self.n, size=total)
        cell = self.guide.take((r << self.bits) // self.n)
        unsure = np.flatnonzero(cell >= GUIDE_FLAG)
        cell[unsure] = np.searchsorted(self.cumulative, r[unsure], side="right")
        flat = cell * np.int64(out.shape[1]) + np.repeat(np.arange(len(draws)), draws)
        np.add.at(out.ravel(), flat, out.dtype.type(1))


class _PoissonTables:
    """Inverse-CDF tables of independent Poisson distributions, one row per mean.

    ``quantiles[k, g]`` is #{x : F_k(x) <= g / SLICES}, the count for every point of slice g, unless the slice
    straddles a step of the CDF: then it holds UNSURE plus the index of the slice's record among the cell's
    (records start at ``record_start[k]``), which gives the count ``low`` at the slice's start, the count ``high``
    at its end and ``threshold`` = F(low) * SLICES - g: the count is ``low`` below the threshold, more above.
    """

    def __init__(self, means: NDArray[np.float64], dtype: np.dtype[np.floating]) -> None:
        self.means = means
        self.dtype = dtype
        self.low = np.zeros(len(means), dtype=np.int64)
        self.offsets = np.zeros(len(means), dtype=np.int64)
        self.cdf = np.zeros(0)
        self.quantiles: NDArray[np.uint16] | None = None
        self.record_start = np.zeros(len(means), dtype=np.int64)
        self.record_low = np.zeros(0, dtype=np.int32)
        self.record_high = np.zeros(0, dtype=np.int32)
        self.record_threshold = np.zeros(0)

    @classmethod
    def build(cls, means: NDArray[np.float64], dtype: np.dtype[np.floating]) -> _PoissonTables:
        """Tabulate Poisson(mean) for each mean over a support holding all but 1e-17 of it (if it fits)."""
        tables = cls(means, dtype)
        spread = TAIL_SD * np.sqrt(means) + TAIL_PAD
        low = np.maximum(0.0, np.floor(means - spread)).astype(np.int64)
        width = np.ceil(means + spread).astype(np.int64) - low + 1
        order = np.argsort(width, kind="stable")
        batches = [order[start : start + _BUILD_BATCH] for start in range(0, len(order), _BUILD_BATCH)]
        # Every row of a batch gets the batch's widest support: a little more tail, one rectangle per batch.
        width[order] = np.concatenate([np.full(len(rows), width[rows[-1]]) for rows in batches])
        # CDF values, the quantile table, and at most one record (two int32, a float64) per value.
        size = int(width.sum()) * (8 + 16) + len(means) * (SLICES + 1) * 2
        if size > TABLE_BYTES or int(width.max()) >= UNSURE:
            return tables
        tables.low = low
        # Rows are stored batch after batch, so that each batch's rectangle is one slice of the flat CDF.
        tables.offsets[order] = np.concatenate([[0], np.cumsum(width[order])[:-1]])
        tables.cdf = np.empty(int(width.sum()))
        tables.quantiles = np.empty((len(means), SLICES + 1), dtype=np.uint16)
        inverse = 1.0 / np.maximum(np.arange(int((low + width).max()) + 1), 1)

        def tabulate(rows: IntArray) -> tuple[IntArray, IntArray, IntArray, IntArray, NDArray[np.float64]]:
            cdf = _cdf_rows(means[rows], low[rows], int(width[rows[0]]), inverse)
            assert tables.quantiles is not None
            quantiles, per_row, record_low, record_high, threshold = _quantile_rows(cdf)
            tables.quantiles[rows] = quantiles
            start = int(tables.offsets[rows[0]])
            tables.cdf[start : start + cdf.size] = cdf.ravel()
            return rows, per_row, record_low, record_high, threshold

        # Batches fill disjoint parts of the tables; numpy releases the GIL, so threads share the work.
        with ThreadPoolExecutor(max(1, min(idle_cores(), len(batches)))) as pool:
            records = list(pool.map(tabulate, batches))
        counts = np.zeros(len(means), dtype=np.int64)
        for rows, per_row, *_ in records:
            counts[rows] = per_row
        tables.record_start = np.concatenate([[0], np.cumsum(counts)[:-1]])
        total = int(counts.sum())
        tables.record_low, tables.record_high = np.empty(total, np.int32), np.empty(total, np.int32)
        tables.record_threshold = np.empty(total)
        for rows, per_row, record_low, record_high, threshold in records:
            at = np.repeat(tables.record_start[rows] - np.concatenate([[0], np.cumsum(per_row)[:-1]]), per_row)
            at += np.arange(len(at))
            tables.record_low[at], tables.record_high[at], tables.record_threshold[at] = (
                record_low,
                record_high,
                threshold,
            )
        return tables

    def sample(self, rounds: int, rng: np.random.Generator) -> FloatArray:
        """Return Poisson counts, (means, rounds)."""
        if self.quantiles is None:
            return rng.poisson(self.means[:, None], size=(len(self.means), rounds)).astype(self.dtype)
        k = len(self.means)
        slot = rng.integers(0, SLICES, size=(k, rounds), dtype=np.uint16)
        found = self.quantiles.ravel().take(slot + (np.arange(k, dtype=np.int64) * (SLICES + 1))[:, None])
        unsure = np.flatnonzero(found >= UNSURE)
        if len(unsure):
            flat = found.ravel()
            cell = unsure // rounds
            record = self.record_start.take(cell) + (flat[unsure] & (UNSURE - 1))
            low = self.record_low.take(record)
            # The count is ``low`` where the point lies below the CDF's step within the slice, else more.
            above = rng.random(len(unsure)) >= self.record_threshold.take(record)
            low += above
            wide = np.flatnonzero(above & (self.record_high.take(record) > low))
            if len(wide):
                low[wide] = self._search(
                    cell[wide], slot.ravel()[unsure[wide]], low[wide], self.record_high.take(record[wide]), rng
                )
            flat[unsure] = low
        return np.add(found, self.low[:, None], dtype=self.dtype)

    def _search(
        self,
        cell: IntArray,
        slot: NDArray[np.uint16],
        low: NDArray[np.int32],
        high: NDArray[np.int32],
        rng: np.random.Generator,
    ) -> NDArray[np.int32]:
        """Return min{x in [low, high] : F(x) > (slot + v) / SLICES} for v uniform on [F(low - 1) * SLICES - slot, 1).

        Precondition: F(low - 1) > slot / SLICES, F(high) > (slot + 1) / SLICES; offsets from the low end.
        """
        base = self.offsets.take(cell)
        lower = self.cdf.take(base + low - 1) * SLICES - slot
        # v given that it passed the threshold: uniform on [lower, 1), drawn afresh.
        v = lower + (1.0 - lower) * rng.random(len(cell))
        pending = np.flatnonzero(low < high)
        while len(pending):
            mid = (low[pending] + high[pending]) >> 1
            # F * SLICES - slot is exact (SLICES is a power of two), so v keeps all its bits.
            above = self.cdf.take(base[pending] + mid) * SLICES - slot[pending] > v[pending]
            high[pending[above]] = mid[above]
            low[pending[~above]] = mid[~above] + 1
            pending = pending[low[pending] < high[pending]]
        return low


def _cdf_rows(
    means: NDArray[np.float64], low: IntArray, width: int, inverse: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Return the Poisson CDFs over low .. low + width - 1, one row per mean, renormalised to end at exactly 1.

    ``inverse[x]`` is 1 / x: p(x) = p(x - 1) * mean / x, multiplied along each row from p(low).
    """
    pmf = np.empty((len(means), width))
    lgamma = np.array([math.lgamma(v + 1.0) for v in low.tolist()])
    pmf[:, 0] = np.exp(low * np.log(means) - means - lgamma)
    np.multiply(means[:, None], inverse.take(low[:, None] + np.arange(1, width)), out=pmf[:, 1:])
    np.cumprod(pmf, axis=1, out=pmf)
    cdf = np.cumsum(pmf, axis=1, out=pmf)
    cdf /= cdf[:, -1:]
    cdf[:, -1] = 1.0
    return cdf


def _quantile_rows(
    cdf: NDArray[np.float64],
) -> tuple[NDArray[np.uint16], IntArray, IntArray, IntArray, NDArray[np.float64]]:
    """Return the quantile rows (see _PoissonTables) of a batch of CDFs, with their records of straddled slices.

    Returns the (rows, SLICES + 1) table, the number of records per row and the records' low and high counts and
    thresholds, row after row. x is counted from slice ceil(F(x) * SLICES) on (exact: SLICES is a power of two),
    so each row of Q is the value k repeated from the k-th such slice to the next one.
    """
    rows, width = cdf.shape
    first = np.ceil(cdf * SLICES).astype(np.int64)
    edges = np.zeros((rows, width + 2), dtype=np.int64)
    edges[:, 1:-1] = first
    edges[:, -1] = SLICES + 1
    values = np.tile(np.arange(width + 1, dtype=np.uint16), rows)
    quantiles = np.repeat(values, np.diff(edges, axis=1).ravel()).reshape(rows, SLICES + 1)
    # Slice g straddles a step exactly when some x is first counted in slice g + 1; the first such x is the count
    # at the slice's start, the next x first counted later is the count at its end.
    starts = np.ones((rows, width), dtype=bool)
    starts[:, 1:] = first[:, 1:] != first[:, :-1]
    row, low = np.nonzero(starts)
    per_row = np.bincount(row, minlength=rows)
    high = np.append(low[1:], width)
    last_of_row = np.cumsum(per_row) - 1
    high[last_of_row[per_row > 0]] = width
    slot = first[row, low] - 1
    threshold = cdf[row, low] * SLICES - slot
    local = np.arange(len(row)) - np.repeat(np.concatenate([[0], np.cumsum(per_row)[:-1]]), per_row)
    quantiles[row, slot] = UNSURE | local.astype(np.uint16)
    return quantiles, per_row, low.astype(np.int64), high.astype(np.int64), threshold
