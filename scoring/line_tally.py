"""Count the distinct lines of a text file without a Python object per line.

Arena logs repeat a few tens of thousands of distinct lines a million times, so the loader parses each distinct
line once. The file is read in blocks; numpy finds the line ends, gathers every line of up to ``MAX_WORDS`` 8-byte
words at once, hashes the words and looks the hashes up in an open-addressing table. Every line is then compared
word by word with the first line that had its hash, so a hash collision cannot merge two different lines: such
lines, and lines longer than ``MAX_WORDS`` words, are counted one by one in Python instead.

Large files are split at line ends into one part per idle core, read by threads that share the table (numpy releases
the GIL for the array work); a line's first occurrence is kept as (part, line within the part) until the parts'
line counts are known.
"""

from __future__ import annotations

import functools
import itertools
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from scoring.cores import idle_cores

BLOCK_BYTES = 1 << 22
PART_BYTES = 1 << 24
MAX_WORDS = 32
_PAD = 8 * MAX_WORDS + 8
_PART_SHIFT = 40
_MIX = np.uint64(0x9E3779B97F4A7C15)
_MIX2 = np.uint64(0xBF58476D1CE4E5B9)
_COEFFICIENTS = (np.arange(MAX_WORDS, dtype=np.uint64) * np.uint64(2) + np.uint64(1)) * _MIX

IntArray = NDArray[np.int64]


@dataclass(frozen=True, eq=False)
class LineTally:
    """Distinct lines (without their newline), how often each occurs and the 1-based number of its first line.

    ``words`` holds the first lines' bytes as rows of 8-byte words (zero past each line's end), the rest (long
    lines) are only in ``lines``.
    """

    lines: list[bytes]
    counts: IntArray
    first: IntArray
    words: NDArray[np.uint64]

    def byte_rows(self) -> tuple[NDArray[np.uint8], IntArray]:
        """Return every line as a row of bytes, zero-padded to the longest, and the lines' lengths."""
        lengths = np.fromiter(map(len, self.lines), dtype=np.int64, count=len(self.lines))
        width = 8 * max(self.words.shape[1], (int(lengths.max(initial=0)) + 7) // 8)
        rows = np.zeros((len(self.lines), width), dtype=np.uint8)
        rows[: len(self.words), : 8 * self.words.shape[1]] = self.words.view(np.uint8)
        for i in range(len(self.words), len(self.lines)):
            rows[i, : lengths[i]] = np.frombuffer(self.lines[i], dtype=np.uint8)
        return rows, lengths


def tally_lines(path: str | Path, workers: int | None = None) -> LineTally:
    """Return the distinct lines of a file with their counts; raise OSError if it cannot be read.

    ``workers`` threads read parts of the file (default: one per idle core, parts of at least PART_BYTES).
    """
    ranges = line_ranges(Path(path), workers or idle_cores())
    table = _Table()
    if len(ranges) == 1:
        lines_per_part = [_read_part(Path(path), 0, *ranges[0], table)]
    else:
        from concurrent.futures import ThreadPoolExecutor  # only here: it imports logging, which start-up can skip

        with ThreadPoolExecutor(len(ranges)) as pool:
            jobs = [
                pool.submit(_read_part, Path(path), part, start, stop, table)
                for part, (start, stop) in enumerate(ranges)
            ]
            lines_per_part = [job.result() for job in jobs]
    return table.result(np.cumsum([0, *lines_per_part[:-1]]))


def line_ranges(path: Path, workers: int) -> list[tuple[int, int]]:
    """Return byte ranges that split the file after a newline, about equal and at least PART_BYTES each."""
    size = path.stat().st_size
    count = max(1, min(workers, size // PART_BYTES))
    cuts = [0]
    with path.open("rb") as handle:
        for k in range(1, count):
            handle.seek(max(size * k // count, cuts[-1]))
            while chunk := handle.read(1 << 16):
                newline = chunk.find(b"\n")
                if newline >= 0:
                    cuts.append(handle.tell() - len(chunk) + newline + 1)
                    break
    cuts.append(size)
    return [(start, stop) for start, stop in itertools.pairwise(cuts) if stop > start] or [(0, 0)]


def _read_part(path: Path, part: int, start: int, stop: int, table: _Table) -> int:
    """Count the lines of bytes [start, stop) of the file into the table; return how many lines there were."""
    buf = bytearray(BLOCK_BYTES + _PAD)
    carry, lines = 0, 0
    with path.open("rb") as handle:
        handle.seek(start)
        left = stop - start
        while True:
            if carry == len(buf) - _PAD:
                buf = buf + bytes(len(buf))  # one line fills the block: read a bigger one
            got = handle.readinto(memoryview(buf)[carry : carry + min(len(buf) - _PAD - carry, left)])
            left -= got
            size = carry + got
            data = np.frombuffer(buf, dtype=np.uint8)
            ends = np.flatnonzero(data[:size] == 10)
            if not got and size:
                ends = np.append(ends, size)  # the last line has no newline
            if len(ends):
                table.add(buf, ends, (part << _PART_SHIFT) + lines + 1)
                lines += len(ends)
                tail = int(ends[-1]) + 1
            else:
                tail = 0
            if not got:
                return lines
            del data
            buf[: size - tail] = buf[tail:size]
            carry = size - tail


class _Table:
    """Distinct short lines seen so far: an open-addressing hash table over representative lines."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.bits = 16
        self.keys = np.zeros(1 << self.bits, dtype=np.uint64)
        self.slot_ids = np.zeros(1 << self.bits, dtype=np.int64)
        self.hashes = np.zeros(0, dtype=np.uint64)
        self.words = np.zeros((0, 1), dtype=np.uint64)
        self.lengths = np.zeros(0, dtype=np.int64)
        self.counts = np.zeros(0, dtype=np.int64)
        # First occurrences as (part << _PART_SHIFT) + line number within the part.
        self.first = np.zeros(0, dtype=np.int64)
        self.lines: list[bytes] = []
        self.odd: Counter[bytes] = Counter()
        self.odd_first: dict[bytes, int] = {}

    def add(self, buf: bytearray, ends: IntArray, first_code: int) -> None:
        """Count the lines of ``buf`` that end at ``ends``; the first one's code is ``first_code``."""
        starts = np.concatenate([[0], ends[:-1] + 1])
        lengths = ends - starts
        codes = first_code + np.arange(len(ends))
        fits = lengths <= 8 * MAX_WORDS
        if fits.all():
            odd = self._count(buf, starts, lengths, codes)
        else:
            short = np.flatnonzero(fits)
            odd = np.concatenate(
                [short[self._count(buf, starts[short], lengths[short], codes[short])], np.flatnonzero(~fits)]
            )
        if len(odd):
            with self.lock:
                for i in np.sort(odd).tolist():
                    content = bytes(buf[starts[i] : ends[i]])
                    self.odd[content] += 1
                    self.odd_first[content] = min(self.odd_first.get(content, first_code + i), first_code + i)

    def _count(self, buf: bytearray, starts: IntArray, lengths: IntArray, codes: IntArray) -> IntArray:
        """Count lines of at most MAX_WORDS words; return the indices of those that matched another line's hash."""
        if not len(starts):
            return np.zeros(0, dtype=np.int64)
        width = max(1, (int(lengths.max()) + 7) // 8)
        rows = np.ndarray((len(buf) - 8 * width + 1,), dtype=f"V{8 * width}", buffer=buf, strides=(1,))
        words = rows[starts].view("<u8").reshape(len(starts), width)
        # Bytes past a line's end belong to the next lines: clear them (only the words past the shortest line).
        full = int(lengths.min()) // 8
        words[:, full:] &= _masks(full, width).take(lengths, axis=0)
        hashes = _hash(words, lengths)
        with self.lock:
            ids = self._lookup(hashes)
            new = np.flatnonzero(ids < 0)
            if len(new):
                fresh, index = np.unique(hashes[new], return_index=True)
                firsts = new[index]
                self._insert(fresh, words[firsts], lengths[firsts], codes[firsts])
                raw, stride = words[firsts].tobytes(), 8 * width
                offsets = range(0, len(raw), stride)
                self.lines.extend(raw[o : o + n] for o, n in zip(offsets, lengths[firsts].tolist(), strict=True))
                ids[new] = self._lookup(hashes[new])
            known_words, known_lengths = self.words, self.lengths
        # Rows already in the table never change, so the comparison needs no lock.
        known = known_words.take(ids, axis=0)
        if known.shape[1] < width:  # only after a hash collision with a shorter line
            known = np.pad(known, ((0, 0), (0, width - known.shape[1])))
        equal = known[:, :width] == words
        same = known_lengths.take(ids) == lengths
        if not (equal.all() and same.all()):
            same &= equal.all(axis=1)
        counts = np.bincount(ids[same], minlength=len(known_lengths))
        with self.lock:
            self.counts[: len(counts)] += counts
            earlier = same & (self.first.take(ids) > codes)
            if earlier.any():
                # Another thread met these lines first, in a later part of the file.
                moved, index = np.unique(ids[earlier], return_index=True)
                self.first[moved] = np.minimum(self.first[moved], codes[earlier][index])
        return np.flatnonzero(~same)

    def result(self, part_offsets: IntArray) -> LineTally:
        """Return the distinct lines, given how many lines come before each part."""
        first = np.concatenate([self.first, np.fromiter(self.odd_first.values(), dtype=np.int64)])
        first = (first & ((1 << _PART_SHIFT) - 1)) + np.asarray(part_offsets, dtype=np.int64)[first >> _PART_SHIFT]
        counts = np.concatenate([self.counts, np.fromiter(self.odd.values(), dtype=np.int64)])
        return LineTally(self.lines + list(self.odd), counts, first, self.words)

    def _slots(self, hashes: NDArray[np.uint64]) -> IntArray:
        """Return each hash's home slot."""
        return (hashes >> np.uint64(64 - self.bits)).astype(np.int64)

    def _lookup(self, hashes: NDArray[np.uint64]) -> IntArray:
        """Return the id of each hash, -1 where it is not in the table."""
        slots = self._slots(hashes)
        found = self.keys.take(slots)
        if (found == hashes).all():
            return self.slot_ids.take(slots)
        ids = np.full(len(hashes), -1, dtype=np.int64)
        pending = np.arange(len(hashes))
        mask = (1 << self.bits) - 1
        while len(pending):
            hit = found == hashes[pending]
            ids[pending[hit]] = self.slot_ids.take(slots[hit])
            go_on = ~hit & (found != 0)
            pending, slots = pending[go_on], (slots[go_on] + 1) & mask
            found = self.keys.take(slots)
        return ids

    def _insert(
        self, hashes: NDArray[np.uint64], words: NDArray[np.uint64], lengths: IntArray, first: IntArray
    ) -> None:
        """Add distinct hashes that are not in the table, with their representative lines."""
        start = len(self.hashes)
        self.hashes = np.concatenate([self.hashes, hashes])
        if words.shape[1] > self.words.shape[1]:
            self.words = np.pad(self.words, ((0, 0), (0, words.shape[1] - self.words.shape[1])))
        padded = np.zeros((len(hashes), self.words.shape[1]), dtype=np.uint64)
        padded[:, : words.shape[1]] = words
        self.words = np.concatenate([self.words, padded])
        self.lengths = np.concatenate([self.lengths, lengths])
        self.counts = np.concatenate([self.counts, np.zeros(len(hashes), dtype=np.int64)])
        self.first = np.concatenate([self.first, first])
        if 4 * len(self.hashes) > 1 << self.bits:
            while 4 * len(self.hashes) > 1 << self.bits:
                self.bits += 1
            self.keys = np.zeros(1 << self.bits, dtype=np.uint64)
            self.slot_ids = np.zeros(1 << self.bits, dtype=np.int64)
            self._place(self.hashes, np.arange(len(self.hashes)))
        else:
            self._place(hashes, np.arange(start, len(self.hashes)))

    def _place(self, hashes: NDArray[np.uint64], ids: IntArray) -> None:
        """Put distinct hashes into free slots by linear probing."""
        slots = self._slots(hashes)
        mask = (1 << self.bits) - 1
        pending = np.arange(len(hashes))
        while len(pending):
            free = self.keys.take(slots) == 0
            self.keys[slots[free]] = hashes[pending[free]]
            # Where several hashes wanted the same free slot, one of them got it.
            won = np.zeros(len(pending), dtype=bool)
            won[free] = self.keys.take(slots[free]) == hashes[pending[free]]
            self.slot_ids[slots[won]] = ids[pending[won]]
            pending, slots = pending[~won], (slots[~won] + 1) & mask


@functools.cache
def _masks(first: int, stop: int) -> NDArray[np.uint64]:
    """Return row L = the words first .. stop - 1 of a line of length L with the bytes past its end cleared."""
    keep = np.arange(8 * first, 8 * stop)[None, :] < np.arange(8 * MAX_WORDS + 1)[:, None]
    return (keep.astype(np.uint8) * np.uint8(255)).view("<u8")


def _hash(words: NDArray[np.uint64], lengths: IntArray) -> NDArray[np.uint64]:
    """Return a non-zero 64-bit hash of each row of words and its length (a sum of odd multiples, then mixed)."""
    hashes: NDArray[np.uint64] = words @ _COEFFICIENTS[: words.shape[1]]
    hashes += lengths.astype(np.uint64) * _MIX2
    hashes ^= hashes >> np.uint64(31)
    hashes *= _MIX2
    hashes ^= hashes >> np.uint64(29)
    hashes |= np.uint64(1)
    return hashes
