"""Read battle logs and rating files (JSON array or JSON Lines) with line-numbered errors."""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from scoring import compiled
from scoring.battles import OUTCOMES, Battle, BattleCounts, aggregate_codes, counts_from_tally, outcome_code
from scoring.cores import idle_cores
from scoring.line_tally import LineTally, line_ranges, tally_lines

IntArray = NDArray[np.int64]
BATTLE_FIELDS = ("model_a", "model_b", "winner")
RATING_FIELDS = ("unit", "rater", "value")


class InputError(ValueError):
    """A problem with an input file, naming the line or record at fault."""


def _read_bytes(path: str | Path) -> bytes:
    """Return the file's bytes or raise InputError with the reason."""
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None


def _is_json_array(data: bytes) -> bool:
    """Return whether the document is a JSON array rather than JSON Lines."""
    return data.lstrip(b" \t\r\n\xef\xbb\xbf")[:1] == b"["


class _RecordError(ValueError):
    """A problem with one record; the caller adds where it is."""


def _record_fields(record: Any, fields: Sequence[str]) -> tuple[Any, ...]:
    """Return the requested fields of a JSON object."""
    if not isinstance(record, dict):
        raise _RecordError(f"expected a JSON object, got {type(record).__name__}")
    for name in fields:
        if name not in record:
            raise _RecordError(f"missing field {name!r}")
    return tuple(record[name] for name in fields)


def _parse_line(line: bytes, fields: Sequence[str]) -> tuple[Any, ...]:
    """Parse one JSON Lines record."""
    try:
        record = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _RecordError(f"invalid JSON ({getattr(exc, 'msg', exc)})") from None
    return _record_fields(record, fields)


def _array_records(data: bytes) -> list[Any]:
    """Return the records of a JSON array document."""
    try:
        records = json.loads(data)
    except json.JSONDecodeError as exc:
        raise InputError(f"line {exc.lineno}: invalid JSON ({exc.msg})") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"invalid UTF-8 ({exc.reason})") from None
    if not isinstance(records, list):
        raise InputError("expected a JSON array or JSON Lines")
    return records


def _battle(values: tuple[Any, ...]) -> Battle:
    """Validate one battle's fields."""
    model_a, model_b, winner = values
    if not isinstance(model_a, str) or not isinstance(model_b, str):
        raise _RecordError("model names must be strings")
    if model_a == model_b:
        raise _RecordError(f"battle of model {model_a!r} against itself")
    outcome_code(winner)
    return model_a, model_b, winner


_SIMPLE_BATTLE = re.compile(
    rb'[ \t]*\{[ \t]*"model_a"[ \t]*:[ \t]*"([^"\\\x00-\x1f]*)"[ \t]*,[ \t]*"model_b"[ \t]*:[ \t]*'
    rb'"([^"\\\x00-\x1f]*)"[ \t]*,[ \t]*"winner"[ \t]*:[ \t]*"([^"\\\x00-\x1f]*)"[ \t]*\}[ \t\r]*'
)


_OUTCOME_BYTES = {label.encode(): code for code, label in enumerate(OUTCOMES)}
_ROW_HASH = (np.arange(1, 64, 2, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)) | np.uint64(1)


def _flat_layout(sample: bytes) -> bool:
    """Return whether a line split at its 12 quotes reads {"model_a": _, "model_b": _, "winner": _}."""
    pieces = sample.split(b'"')
    keys, punctuation = pieces[1::4], [piece.strip(b" \t\r") for piece in pieces[0::2]]
    return keys == [b"model_a", b"model_b", b"winner"] and punctuation == [b"{", b":", b",", b":", b",", b":", b"}"]


def _simple_tally(lines: LineTally) -> BattleCounts | None:
    """Aggregate distinct lines when all are flat records in the usual key order laid out alike, else None.

    The lines are parsed together as a byte matrix. Anything unusual (other key order or spacing, extra fields,
    escapes, unknown labels, self-battles) returns None so that the general path parses it and reports the line.
    """
    rows, lengths = lines.byte_rows()
    inside = np.arange(rows.shape[1])[None, :] < lengths[:, None]
    keep = np.flatnonzero(((rows != 32) & (rows != 9) & (rows != 13) & inside).any(axis=1))
    quotes = _flat_quotes(rows[keep], lengths[keep], inside[keep]) if len(keep) else None
    if quotes is None:
        return None
    rows, n = rows[keep], len(keep)
    names, codes = _distinct(np.concatenate([_values(rows, quotes[:, k] + 1, quotes[:, k + 1]) for k in (2, 6)]))
    labels, label_codes = _distinct(_values(rows, quotes[:, 10] + 1, quotes[:, 11]))
    outcome_of = [_OUTCOME_BYTES.get(label) for label in labels]
    if None in outcome_of or (codes[:n] == codes[n:]).any():
        return None
    try:
        decoded = [name.decode("utf-8") for name in names]
    except UnicodeDecodeError:
        return None
    order = sorted(range(len(decoded)), key=decoded.__getitem__)
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    outcome = np.array(outcome_of, dtype=np.int64)[label_codes]
    models = [decoded[i] for i in order]
    return aggregate_codes(models, rank[codes[:n]], rank[codes[n:]], outcome, weights=lines.counts[keep])


def _flat_quotes(rows: NDArray[np.uint8], lengths: NDArray[np.int64], inside: NDArray[np.bool_]) -> IntArray | None:
    """Return the positions of the 12 quotes of each row if every row is a flat record laid out alike, else None.

    The quotes delimit the three keys and values; the bytes around the values must be the same on every row and
    read {"model_a": _, "model_b": _, "winner": _}. No control characters or escapes may appear.
    """
    quotes = rows == ord('"')
    if ((rows < 32) & (rows != 9) & (rows != 13) & inside).any() or (rows == ord("\\")).any():
        return None
    if (quotes.sum(axis=1) != 12).any():
        return None
    at = np.nonzero(quotes)[1].reshape(len(rows), 12)
    layout = []
    for start, stop in ((np.zeros_like(lengths), at[:, 2] + 1), (at[:, 3], at[:, 6] + 1), (at[:, 7], at[:, 10] + 1)):
        layout.append(_same_bytes(rows, start, stop))
    layout.append(_same_bytes(rows, at[:, 11], lengths))
    if None in layout or not _flat_layout(b"x".join(part for part in layout if part is not None)):
        return None
    return at


def _same_bytes(rows: NDArray[np.uint8], start: IntArray, stop: IntArray) -> bytes | None:
    """Return rows[i, start[i]:stop[i]] if it is the same for every row, else None."""
    size = stop - start
    if (size != size[0]).any():
        return None
    part = _slices(rows, start, int(size[0]))
    return part[0].tobytes() if (part == part[0]).all() else None


def _slices(rows: NDArray[np.uint8], start: NDArray[np.int64], size: int) -> NDArray[np.uint8]:
    """Return rows[i, start[i]:start[i] + size] for each row (bytes past a row's end read as zero)."""
    flat = np.concatenate([rows.ravel(), np.zeros(max(size, 1), dtype=np.uint8)])
    pieces = np.ndarray((len(flat) - max(size, 1) + 1,), dtype=f"V{max(size, 1)}", buffer=flat, strides=(1,))
    picked = pieces[np.arange(len(rows)) * rows.shape[1] + start]
    out: NDArray[np.uint8] = picked.view(np.uint8).reshape(len(rows), max(size, 1))[:, :size]
    return out


def _values(rows: NDArray[np.uint8], start: NDArray[np.int64], stop: NDArray[np.int64]) -> NDArray[np.uint8]:
    """Return rows[i, start[i]:stop[i]] for each row, zero-padded to a multiple of 8 bytes."""
    size = 8 * max(1, (int((stop - start).max()) + 7) // 8)
    picked = _slices(rows, start, size)
    picked[np.arange(size)[None, :] >= (stop - start)[:, None]] = 0
    return picked


def _distinct(values: NDArray[np.uint8]) -> tuple[list[bytes], NDArray[np.int64]]:
    """Return the distinct zero-padded byte strings among the rows (in no useful order) and each row's index."""
    words = np.ascontiguousarray(values).view("<u8")
    # One number per row (exact for one word; a hash checked against each group's first row otherwise).
    keys = words[:, 0] if words.shape[1] == 1 else words @ _ROW_HASH[: words.shape[1]]
    _, first, codes = np.unique(keys, return_index=True, return_inverse=True)
    if words.shape[1] > 1 and not (words[first][codes] == words).all():
        _, first, codes = np.unique(words, axis=0, return_index=True, return_inverse=True)
    return [row.tobytes().rstrip(b"\0") for row in words[first]], codes.ravel().astype(np.int64)


def _battle_from_line(content: bytes) -> Battle:
    """Parse and validate one JSON Lines battle (flat records in the usual key order skip the JSON parser)."""
    simple = _SIMPLE_BATTLE.fullmatch(content)
    if simple is not None:
        try:
            a, b, winner = (field.decode("utf-8") for field in simple.groups())
        except UnicodeDecodeError:
            pass
        else:
            return _battle((a, b, winner))
    return _battle(_parse_line(content, BATTLE_FIELDS))


def _array_battles(data: bytes) -> list[Battle]:
    """Return the battles of a JSON array document."""
    out = []
    for number, record in enumerate(_array_records(data), start=1):
        try:
            out.append(_battle(_record_fields(record, BATTLE_FIELDS)))
        except ValueError as exc:
            raise InputError(f"record {number}: {exc}") from None
    return out


def _starts_like_json_array(path: str | Path) -> bool:
    """Return whether the file's first non-blank character opens a JSON array."""
    with Path(path).open("rb") as handle:
        while chunk := handle.read(1 << 16):
            text = chunk.lstrip(b" \t\r\n\xef\xbb\xbf")
            if text:
                return text[:1] == b"["
    return False


def read_battle_counts(path: str | Path) -> BattleCounts:
    """Read an Arena battle log and aggregate it; identical lines are parsed once."""
    try:
        if _starts_like_json_array(path):
            tally: Counter[Battle] = Counter(_array_battles(_read_bytes(path)))
        else:
            scanned = _scanned_counts(path) if compiled.kernels is not None else None
            if scanned is not None:
                return scanned
            lines = tally_lines(path)
            fast = _simple_tally(lines)
            if fast is not None:
                return fast
            tally = _tally_distinct_lines(lines)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not tally:
        raise InputError("no battles in the file")
    return counts_from_tally(tally)


def _scanned_counts(path: str | Path) -> BattleCounts | None:
    """Aggregate a JSON Lines log with the compiled scanner; None if a name is not UTF-8 (the caller says where).

    The scanner counts flat records in the usual key order per (model_a, model_b, winner) and every other line as a
    distinct line, which is parsed here, in file order, so that an error names the first bad line. Large files are
    split at line ends into one part per idle core, scanned by threads (the kernel runs without the GIL).
    """
    parts = _scan_parts(path)
    try:
        names = [[name.decode("utf-8") for name in part[0]] for part in parts]
    except UnicodeDecodeError:
        return None
    other = _tally_distinct_lines(_odd_lines(parts))
    models = sorted({*(name for part in names for name in part), *(name for a, b, _ in other for name in (a, b))})
    index = {name: i for i, name in enumerate(models)}
    first_model, second_model, outcomes, counts = [], [], [], []
    for part, part_names in zip(parts, names, strict=True):
        rank = np.array([index[name] for name in part_names], dtype=np.int64)
        pairs = rank.take(np.frombuffer(part[1], dtype=np.int32).reshape(-1, 2))
        first_model.append(np.repeat(pairs[:, 0], len(OUTCOMES)))
        second_model.append(np.repeat(pairs[:, 1], len(OUTCOMES)))
        outcomes.append(np.tile(np.arange(len(OUTCOMES)), len(pairs)))
        counts.append(np.frombuffer(part[2], dtype=np.int64))
    coded = np.array([(index[a], index[b], outcome_code(w), n) for (a, b, w), n in other.items()], dtype=np.int64)
    for column, values in zip((first_model, second_model, outcomes, counts), coded.reshape(-1, 4).T, strict=True):
        column.append(values)
    weights = np.concatenate(counts)
    if not weights.any():
        raise InputError("no battles in the file")
    return aggregate_codes(
        models, np.concatenate(first_model), np.concatenate(second_model), np.concatenate(outcomes), weights
    )


_Scanned = tuple[list[bytes], bytes, bytes, list[bytes], bytes, bytes, int]


def _scan_parts(path: str | Path) -> list[_Scanned]:
    """Scan the file with the compiled kernel, in parts read by threads when it is large and cores are idle."""
    kernels = compiled.kernels
    assert kernels is not None
    ranges = line_ranges(Path(path), idle_cores())
    if len(ranges) == 1:
        return [kernels.scan_battles(str(path), True)]
    results: list[_Scanned | None] = [None] * len(ranges)
    errors: list[BaseException] = []

    def scan(k: int) -> None:
        try:
            results[k] = kernels.scan_battles(str(path), True, *ranges[k])
        except BaseException as exc:  # re-raised in the calling thread
            errors.append(exc)

    threads = [threading.Thread(target=scan, args=(k,)) for k in range(1, len(ranges))]
    for thread in threads:
        thread.start()
    scan(0)
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return [result for result in results if result is not None]


def _odd_lines(parts: list[_Scanned]) -> LineTally:
    """Merge the parts' tallies of lines that are not flat records, numbering lines from the start of the file."""
    if len(parts) == 1:
        _, _, _, lines, counts, first, _ = parts[0]
        return LineTally(lines, np.frombuffer(counts, np.int64), np.frombuffer(first, np.int64), _NO_WORDS)
    merged: dict[bytes, list[int]] = {}
    offset = 0
    for _, _, _, lines, counts, first, n_lines in parts:
        for line, count, number in zip(
            lines, np.frombuffer(counts, np.int64).tolist(), np.frombuffer(first, np.int64).tolist(), strict=True
        ):
            seen = merged.setdefault(line, [0, offset + number])
            seen[0] += count
        offset += n_lines
    return LineTally(
        list(merged),
        np.array([count for count, _ in merged.values()], dtype=np.int64),
        np.array([number for _, number in merged.values()], dtype=np.int64),
        _NO_WORDS,
    )


_NO_WORDS = np.zeros((0, 1), dtype=np.uint64)


def _tally_distinct_lines(lines: LineTally) -> Counter[Battle]:
    """Parse each distinct line once, in file order; raise InputError naming the first bad line."""
    tally: Counter[Battle] = Counter()
    for i in np.argsort(lines.first, kind="stable").tolist():
        content = lines.lines[i]
        if content.strip():
            try:
                tally[_battle_from_line(content)] += int(lines.counts[i])
            except ValueError as exc:
                raise InputError(f"line {lines.first[i]}: {exc}") from None
    return tally


def read_battles(path: str | Path) -> list[Battle]:
    """Read an Arena battle log as (model_a, model_b, winner) triples in file order."""
    data = _read_bytes(path)
    if _is_json_array(data):
        out = _array_battles(data)
    else:
        cache: dict[bytes, Battle] = {}
        out = []
        for number, content in enumerate(data.split(b"\n"), start=1):
            battle = cache.get(content)
            if battle is None:
                if not content.strip():
                    continue
                try:
                    battle = cache[content] = _battle_from_line(content)
                except ValueError as exc:
                    raise InputError(f"line {number}: {exc}") from None
            out.append(battle)
    if not out:
        raise InputError("no battles in the file")
    return out


def read_ratings(path: str | Path) -> list[tuple[Any, Any, Any]]:
    """Read (unit, rater, value) ratings from JSON Lines (or a JSON array) in file order."""
    data = _read_bytes(path)
    rows = []
    if _is_json_array(data):
        for number, record in enumerate(_array_records(data), start=1):
            try:
                rows.append(_record_fields(record, RATING_FIELDS))
            except ValueError as exc:
                raise InputError(f"record {number}: {exc}") from None
    else:
        for number, content in enumerate(data.split(b"\n"), start=1):
            if content.strip():
                try:
                    rows.append(_parse_line(content, RATING_FIELDS))
                except ValueError as exc:
                    raise InputError(f"line {number}: {exc}") from None
    if not rows:
        raise InputError("no ratings in the file")
    return [(_hashable(u), _hashable(r), _hashable(v)) for u, r, v in rows]


def _hashable(value: Any) -> Any:
    """Turn JSON lists (e.g. composite unit keys) into tuples so they can key dictionaries."""
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _hashable(v)) for k, v in value.items()))
    return value
