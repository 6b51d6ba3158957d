"""Duplicate and near-duplicate prompts: normalised equality, then MinHash + LSH over character shingles.

- **Normalisation**: Unicode NFKC, ``casefold``, every punctuation character (Unicode category ``P*``) removed and
  runs of whitespace collapsed to one space (trimmed). Two prompts are *duplicates* when their normalised texts
  are equal ("Hello, World!" and "hello world").
- **Near-duplicates**: the Jaccard similarity of the sets of character ``SHINGLE``-grams (5) of the normalised
  texts is at least ``THRESHOLD`` (0.8); a text shorter than a shingle is one shingle. Candidates come from
  MinHash signatures of ``NUM_PERM`` (64) values of 16 bits (b-bit MinHash, by one-permutation hashing with
  densification: see ``_signatures``), cut into ``BANDS`` (16) bands of 4 rows: two texts are candidates when
  one band is equal, with probability ``1 - (1 - J^4)^16`` (0.9998 at J = 0.8, 0.64 at J = 0.5). Every
  candidate pair is then checked by its exact Jaccard similarity, so a reported pair is always above the
  threshold; a pair the bands miss is lost (recall below 1, measured in ``bench/bench_hygiene.py``). Thresholds
  below ``MIN_THRESHOLD`` (0.5) are refused: the bands would miss too many pairs.
- **Groups** are the connected components of duplicate and near-duplicate pairs (so a chain of near-duplicates
  is one group); a group is ``exact`` when all its members normalise to the same text, else ``near``.

Memory: 136 bytes per text (its 128-byte signature and 8-byte key) plus one chunk's normalised texts and shingle
hashes (``CHUNK`` texts); the texts themselves stay with the caller.
"""

from __future__ import annotations

import functools
import hashlib
import sys
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

SHINGLE = 5
THRESHOLD = 0.8
MIN_THRESHOLD = 0.5
NUM_PERM = 64
BANDS = 16
CHUNK = 5_000
_ROWS = NUM_PERM // BANDS


@functools.cache
def _punctuation() -> dict[int, None]:
    """Return str.translate's table deleting every Unicode punctuation character (built once, ~0.3 s)."""
    return {k: None for k in range(sys.maxunicode + 1) if unicodedata.category(chr(k)).startswith("P")}


def normalise(text: str) -> str:
    """Return ``text`` as compared for duplicates: NFKC, casefolded, without punctuation, whitespace collapsed."""
    folded = unicodedata.normalize("NFKC", text).casefold().translate(_punctuation())
    return " ".join(folded.split())


def shingles(text: str) -> set[str]:
    """Return the character shingles of an already normalised text (the whole text when shorter)."""
    if len(text) <= SHINGLE:
        return {text}
    return {text[k : k + SHINGLE] for k in range(len(text) - SHINGLE + 1)}


def jaccard(first: str, second: str) -> float:
    """Return the Jaccard similarity of two normalised texts' shingle sets."""
    a, b = shingles(first), shingles(second)
    return len(a & b) / len(a | b)


@dataclass(frozen=True)
class DuplicateGroup:
    """Indices (into the texts given) of one group, smallest first, and whether it is ``exact`` or ``near``."""

    kind: str
    members: tuple[int, ...]


def _key(text: str) -> int:
    """Return a 64-bit key of a normalised text."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")


def _mix(x: NDArray[np.uint64]) -> NDArray[np.uint64]:
    """Return splitmix64's finaliser of ``x`` (wrapping uint64 arithmetic)."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    out: NDArray[np.uint64] = x ^ (x >> np.uint64(31))
    return out


def _shingle_hashes(texts: Sequence[str], seed: int) -> tuple[NDArray[np.uint64], NDArray[np.int64]]:
    """Return every shingle's 64-bit hash for a chunk of normalised texts and how many each text has."""
    padded = [text.ljust(SHINGLE, "\x00") for text in texts]
    codes = np.frombuffer("".join(padded).encode("utf-32-le", "surrogatepass"), dtype=np.uint32).astype(np.uint64)
    lengths = np.array([len(text) for text in padded], dtype=np.int64)
    starts = np.cumsum(lengths) - lengths
    counts = lengths - SHINGLE + 1
    # Position of every shingle: each text's start plus 0 .. count - 1.
    first = np.repeat(starts, counts) + (np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts))
    span = len(codes) - SHINGLE + 1
    value = np.full(span, np.uint64(seed), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for offset in range(SHINGLE):  # every window of the joined texts, then the ones inside a text
            value *= np.uint64(0x100000001B3)
            value += codes[offset : offset + span]
        hashed = _mix(value[first])
    return hashed, counts


def _signatures(texts: Sequence[str], seed: int) -> NDArray[np.uint16]:
    """Return (texts x NUM_PERM) b-bit MinHash signatures of normalised texts.

    One-permutation hashing (Li, Owen and Zhang 2012): a shingle's hash picks one of the NUM_PERM bins by its top
    6 bits and offers its next 16 bits to that bin's minimum; an empty bin takes the next non-empty bin's value
    (cyclically) shifted by the distance, the rotation densification of Shrivastava and Li (2014), so that every
    bin behaves as one MinHash of its own.
    """
    out = np.empty((len(texts), NUM_PERM), dtype=np.uint16)
    empty_value = 1 << 16
    for start in range(0, len(texts), CHUNK):
        hashed, counts = _shingle_hashes(texts[start : start + CHUNK], seed)
        n = len(counts)
        doc = np.repeat(np.arange(n, dtype=np.int64), counts)
        cell = doc * NUM_PERM + (hashed >> np.uint64(58)).astype(np.int64)
        value = ((hashed >> np.uint64(42)) & np.uint64(0xFFFF)).astype(np.int64)
        bins = np.full(n * NUM_PERM, empty_value, dtype=np.int64)
        np.minimum.at(bins, cell, value)
        out[start : start + n] = _densify(bins.reshape(n, NUM_PERM), empty_value)
    return out


def _densify(bins: NDArray[np.int64], empty_value: int) -> NDArray[np.uint16]:
    """Fill each empty bin from the next non-empty one to its right (cyclically), shifted by the distance."""
    out = bins.astype(np.uint16)
    sparse = np.flatnonzero((bins == empty_value).any(axis=1))
    if len(sparse):
        twice = np.concatenate([bins[sparse], bins[sparse]], axis=1)
        width = twice.shape[1]
        position = np.where(twice != empty_value, np.arange(width), width)
        nearest = np.minimum.accumulate(position[:, ::-1], axis=1)[:, ::-1][:, :NUM_PERM]
        distance = nearest - np.arange(NUM_PERM)
        filled = np.take_along_axis(twice, nearest, axis=1) + distance * 0x9E37
        out[sparse] = (filled & 0xFFFF).astype(np.uint16)
    return out


def _candidate_pairs(signatures: NDArray[np.uint16]) -> NDArray[np.int64]:
    """Return (pairs x 2) indices sharing a band, each linked to the first member of its bucket."""
    keys = np.ascontiguousarray(signatures).view(np.uint64)  # BANDS keys of 4 x 16 bits per text
    pairs = []
    for band in range(BANDS):
        column = keys[:, band]
        order = np.argsort(column, kind="stable")
        sorted_keys = column[order]
        new_run = np.concatenate([[True], sorted_keys[1:] != sorted_keys[:-1]])
        head = order[np.maximum.accumulate(np.where(new_run, np.arange(len(order)), 0))]
        linked = ~new_run
        if linked.any():
            pairs.append(np.stack([head[linked], order[linked]], axis=1))
    if not pairs:
        return np.empty((0, 2), dtype=np.int64)
    return np.unique(np.sort(np.concatenate(pairs), axis=1), axis=0).astype(np.int64)


def find_duplicates(
    texts: Sequence[str], *, threshold: float = THRESHOLD, near: bool = True, seed: int = 0
) -> list[DuplicateGroup]:
    """Return the groups of duplicate and near-duplicate texts (groups of one are left out), largest first.

    ``near=False`` finds only exact duplicates after normalisation. ``seed`` picks the MinHash functions. The
    normalised texts are not kept: each chunk is normalised, keyed and hashed, and a candidate pair's two texts are
    normalised again to check it.
    """
    if not MIN_THRESHOLD <= threshold <= 1.0:
        raise ValueError(f"threshold must be in [{MIN_THRESHOLD}, 1] (the LSH bands' range), got {threshold!r}")
    n = len(texts)
    keys = np.empty(n, dtype=np.uint64)
    blank = np.zeros(n, dtype=bool)
    signatures = np.empty((n, NUM_PERM), dtype=np.uint16) if near else None
    for start in range(0, n, CHUNK):
        chunk = [normalise(text) for text in texts[start : start + CHUNK]]
        keys[start : start + len(chunk)] = [_key(text) for text in chunk]
        blank[start : start + len(chunk)] = [not text for text in chunk]
        if signatures is not None:
            signatures[start : start + len(chunk)] = _signatures(chunk, seed)
    distinct, first_index, inverse = np.unique(keys, return_index=True, return_inverse=True)
    # Every text is linked to the first text of its normalised form, but for texts with nothing left to compare
    # (empty, or only punctuation and blanks: imported battles without their conversation) that no one would call
    # copies of each other...
    sources, targets = [np.arange(n)], [np.where(blank, np.arange(n), first_index[inverse])]
    if signatures is not None and len(distinct) > 1:
        # ...and different forms to each other when their shingles are similar enough (each form pair checked once).
        pairs = _candidate_pairs(signatures)
        forms = np.unique(np.sort(inverse[pairs], axis=1), axis=0)
        for left, right in forms[forms[:, 0] != forms[:, 1]]:
            first, second = int(first_index[left]), int(first_index[right])
            if blank[first] or blank[second]:
                continue
            if jaccard(normalise(texts[first]), normalise(texts[second])) >= threshold:
                sources.append(np.array([first]))
                targets.append(np.array([second]))
    return _groups(n, np.concatenate(sources), np.concatenate(targets), inverse)


def _groups(
    n: int, sources: NDArray[np.int64], targets: NDArray[np.int64], forms: NDArray[np.int64]
) -> list[DuplicateGroup]:
    """Return the connected components with more than one member."""
    from scipy.sparse import coo_matrix  # imported here: web processes import this module at start
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(sources)), (sources, targets)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    order = np.argsort(labels, kind="stable")
    bounds = np.flatnonzero(np.diff(labels[order])) + 1
    out = []
    for members in np.split(order, bounds):
        if len(members) > 1:
            kind = "exact" if len(set(forms[members].tolist())) == 1 else "near"
            out.append(DuplicateGroup(kind, tuple(sorted(int(k) for k in members))))
    out.sort(key=lambda group: (-len(group.members), group.members[0]))
    return out
