"""Count the distinct lines of a text file without a Python object per line.

Arena logs repeat a few tens of thousands of distinct lines a million times, so the loader parses each distinct
line once. The file is read in blocks; numpy finds the line ends, gathers every line of up to ``MAX_WORDS`` 8-byte
words at once, hashes the words and looks the hashes up in an open-addressing table. Every line is then compared
word by word with the first line that had its hash, so a hash collision cannot merge two different lines: such
lines, and lines longer than ``MAX_WORDS`` words, are counted one by one in Python instead.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

BLOCK_BYTES = 1 << 22
MAX_WORDS = 32
_MIX = np.uint64(0x9E3779B97F4A7C15)
_MIX2 = np.uint64(0xBF58476D1CE4E5B9)
_COEFFICIENTS = (np.arange(MAX_WORDS, dtype=np.uint64) * np.uint64(2) + np.uint64(1)) * _MIX
# _MASKS[length] keeps the first ``length`` bytes of a row of MAX_WORDS little-endian words.
_MASKS = (np.arange(8 * MAX_WORDS)[None, :] < np.arange(8 * MAX_WORDS + 1)[:, None]).astype(np.uint8) * np.uint8(255)
_MASKS = _MASKS.view("<u8")

IntArray = NDArray[np.int64]


@dataclass(frozen=True, eq=False)
class LineTally:
    """Distinct lines (without their newline), how often each occurs and the 1-based number of its first line."""

    lines: list[bytes]
    counts: IntArray
    first: IntArray


def tally_lines(path: str | Path) -> LineTally:
    """Return the distinct lines of a file with their counts; raise OSError if it cannot be read."""
    table = _Table()
    odd: Counter[bytes] = Counter()
    odd_first: dict[bytes, int] = {}
    with Path(path).open("rb") as handle:
        buf = bytearray(BLOCK_BYTES + 8 * MAX_WORDS)
        carry, line_number = 0, 1
        while True:
            if carry == len(buf) - 8 * MAX_WORDS:
                buf = buf + bytes(len(buf))  # one line fills the block: read a bigger one
            got = handle.readinto(memoryview(buf)[carry : len(buf) - 8 * MAX_WORDS])
            size = carry + got
            data = np.frombuffer(buf, dtype=np.uint8)
            ends = np.flatnonzero(data[:size] == 10)
            if not got and size:
                ends = np.append(ends, size)  # the last line has no newline
            if len(ends):
                starts = np.concatenate([[0], ends[:-1] + 1])
                numbers = line_number + np.arange(len(ends))
                leftover = table.add(buf, starts, ends, numbers)
                for i in leftover.tolist():
                    content = bytes(buf[starts[i] : ends[i]])
                    odd[content] += 1
                    odd_first.setdefault(content, int(numbers[i]))
                line_number += len(ends)
                tail = int(ends[-1]) + 1
            else:
                tail = 0
            if not got:
                break
            del data
            buf[: size - tail] = buf[tail:size]
            carry = size - tail
    lines, counts, first = table.result()
    for content, count in odd.items():
        lines.append(content)
        counts.append(count)
        first.append(odd_first[content])
    return LineTally(lines, np.array(counts, dtype=np.int64), np.array(first, dtype=np.int64))


class _Table:
    """Distinct short lines seen so far: an open-addressing hash table over representative lines."""

    def __init__(self) -> None:
        self.bits = 16
        self.keys = np.zeros(1 << self.bits, dtype=np.uint64)
        self.slot_ids = np.zeros(1 << self.bits, dtype=np.int64)
        self.hashes = np.zeros(0, dtype=np.uint64)
        self.words = np.zeros((0, 1), dtype=np.uint64)
        self.lengths = np.zeros(0, dtype=np.int64)
        self.counts = np.zeros(0, dtype=np.int64)
        self.first = np.zeros(0, dtype=np.int64)
        self.lines: list[bytes] = []

    def add(self, buf: bytearray, starts: IntArray, ends: IntArray, numbers: IntArray) -> IntArray:
        """Count the lines [starts, ends) of ``buf``; return the indices of those left for the caller to count."""
        lengths = ends - starts
        fits = lengths <= 8 * MAX_WORDS
        if not fits.all():
            short = np.flatnonzero(fits)
            matched = self._count(buf, starts[short], lengths[short], numbers[short])
            return np.concatenate([np.flatnonzero(~fits), short[matched]])
        return self._count(buf, starts, lengths, numbers)

    def _count(self, buf: bytearray, starts: IntArray, lengths: IntArray, numbers: IntArray) -> IntArray:
        """Count lines of at most MAX_WORDS words; return the indices of those that matched another line's hash."""
        if not len(starts):
            return np.zeros(0, dtype=np.int64)
        width = max(1, (int(lengths.max()) + 7) // 8)
        rows = np.ndarray((len(buf) - 8 * width + 1,), dtype=f"V{8 * width}", buffer=buf, strides=(1,))
        words = rows[starts].view("<u8").reshape(len(starts), width)
        # Bytes past a line's end belong to the next lines: clear them (only the words past the shortest line).
        full = int(lengths.min()) // 8
        words[:, full:] &= np.ascontiguousarray(_MASKS[:, full:width]).take(lengths, axis=0)
        hashes = _hash(words, lengths)
        ids = self._lookup(hashes)
        new = np.flatnonzero(ids < 0)
        if len(new):
            fresh, index = np.unique(hashes[new], return_index=True)
            firsts = new[index]
            self._insert(fresh, words[firsts], lengths[firsts], numbers[firsts])
            raw, stride = words[firsts].tobytes(), 8 * width
            self.lines.extend(
                raw[o : o + n] for o, n in zip(range(0, len(raw), stride), lengths[firsts].tolist(), strict=True)
            )
            ids[new] = self._lookup(hashes[new])
        same = (self.lengths.take(ids) == lengths) & (self.words.take(ids, axis=0)[:, :width] == words).all(axis=1)
        self.counts += np.bincount(ids[same], minlength=len(self.counts))
        return np.flatnonzero(~same)

    def result(self) -> tuple[list[bytes], list[int], list[int]]:
        """Return the distinct lines, their counts and first line numbers."""
        return list(self.lines), self.counts.tolist(), self.first.tolist()

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


def _hash(words: NDArray[np.uint64], lengths: IntArray) -> NDArray[np.uint64]:
    """Return a non-zero 64-bit hash of each row of words and its length."""
    hashes = lengths.astype(np.uint64) * _MIX2
    for k in range(words.shape[1]):
        mixed = words[:, k] * _COEFFICIENTS[k]
        mixed ^= mixed >> np.uint64(32)
        hashes += mixed
    hashes ^= hashes >> np.uint64(31)
    hashes *= _MIX2
    hashes ^= hashes >> np.uint64(29)
    hashes |= np.uint64(1)
    return hashes
