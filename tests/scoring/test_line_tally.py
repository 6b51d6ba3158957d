"""Counting the distinct lines of a file with numpy."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from scoring import line_tally
from scoring.line_tally import tally_lines


def expected_tally(data: bytes) -> dict[bytes, tuple[int, int]]:
    """Return each distinct line's count and first line number, the plain way."""
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    counts = Counter(lines)
    first: dict[bytes, int] = {}
    for number, line in enumerate(lines, start=1):
        first.setdefault(line, number)
    return {line: (counts[line], first[line]) for line in counts}


def tally_as_dict(path: Path, workers: int | None = None) -> dict[bytes, tuple[int, int]]:
    """Return tally_lines' result as {line: (count, first line)}."""
    tally = tally_lines(path, workers)
    assert len(set(tally.lines)) == len(tally.lines)
    return {line: (int(c), int(f)) for line, c, f in zip(tally.lines, tally.counts, tally.first, strict=True)}


def random_text(seed: int, n_lines: int) -> bytes:
    """Return lines drawn from a small vocabulary: short, long (past the word limit), blank, CRLF."""
    rng = np.random.default_rng(seed)
    vocabulary = [b"", b"  ", b"x", b"abcdefgh", b"abcdefg", b"abcdefghi", b"tie\r", "caf\u00e9".encode()]
    vocabulary += [b'{"model_a": "m%d", "model_b": "m%d", "winner": "tie"}' % (i, i + 1) for i in range(20)]
    vocabulary += [b"z" * 300, b"z" * 299 + b"y", b"q" * 256, b"q" * 257]
    picks = rng.integers(0, len(vocabulary), n_lines)
    return b"\n".join(vocabulary[i] for i in picks)


@pytest.mark.parametrize("block", [64, 1000, 1 << 22])
@pytest.mark.parametrize("trailing_newline", [True, False])
def test_counts_and_first_lines_match_a_plain_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block: int, trailing_newline: bool
) -> None:
    monkeypatch.setattr(line_tally, "BLOCK_BYTES", block)
    data = random_text(block, 3000) + (b"\n" if trailing_newline else b"")
    path = tmp_path / "lines.txt"
    path.write_bytes(data)
    assert tally_as_dict(path) == expected_tally(data)


def test_hash_collisions_are_caught_by_the_word_comparison(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(line_tally, "_hash", lambda words, lengths: np.full(len(lengths), 5, dtype=np.uint64))
    data = random_text(1, 2000) + b"\n"
    path = tmp_path / "lines.txt"
    path.write_bytes(data)
    assert tally_as_dict(path) == expected_tally(data)


def test_the_table_grows_past_its_first_size(tmp_path: Path) -> None:
    data = b"".join(b"line %d\n" % (i % 40_000) for i in range(50_000))
    path = tmp_path / "lines.txt"
    path.write_bytes(data)
    assert tally_as_dict(path) == expected_tally(data)


def test_empty_file_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.txt"
    path.write_bytes(b"")
    assert tally_lines(path).lines == []
    with pytest.raises(FileNotFoundError):
        tally_lines(tmp_path / "missing.txt")


@pytest.mark.parametrize("workers", [2, 3])
def test_parts_read_by_threads_give_the_same_tally(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    monkeypatch.setattr(line_tally, "PART_BYTES", 2000)
    monkeypatch.setattr(line_tally, "BLOCK_BYTES", 512)
    data = random_text(5, 6000)
    path = tmp_path / "lines.txt"
    path.write_bytes(data)
    assert tally_as_dict(path, workers) == expected_tally(data)


def test_a_collision_with_a_shorter_line_is_still_told_apart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(line_tally, "_hash", lambda words, lengths: np.full(len(lengths), 5, dtype=np.uint64))
    monkeypatch.setattr(line_tally, "BLOCK_BYTES", 64)
    data = b"a short line\n" * 5 + b"a much longer line than the first one\n" * 3
    path = tmp_path / "lines.txt"
    path.write_bytes(data)
    assert tally_as_dict(path) == expected_tally(data)
