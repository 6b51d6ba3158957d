"""Read battle logs and rating files (JSON array or JSON Lines) with line-numbered errors."""

from __future__ import annotations

import itertools
import json
import operator
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from scoring.battles import OUTCOMES, Battle, BattleCounts, aggregate_codes, counts_from_tally, outcome_code
from scoring.line_tally import LineTally, tally_lines

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
# A flat record split at its 12 quotes: the pieces around the keys and the three values.
_SKELETON = operator.itemgetter(0, 1, 2, 4, 5, 6, 8, 9, 10, 12)
_VALUES = operator.itemgetter(3, 7, 11)
_CONTROL = re.compile(rb"[\x00-\x1f]")


def _flat_skeleton(pieces: tuple[bytes, ...]) -> bool:
    """Return whether the pieces around the quoted strings make {"model_a": _, "model_b": _, "winner": _}."""
    keys, punctuation = pieces[1::3], [p.strip(b" \t\r") for i, p in enumerate(pieces) if i % 3 != 1]
    return keys == (b"model_a", b"model_b", b"winner") and punctuation == [b"{", b":", b",", b":", b",", b":", b"}"]


def _simple_tally(lines: list[bytes], counts: NDArray[np.int64]) -> BattleCounts | None:
    """Aggregate distinct lines when all are flat records in the usual key order with valid values, else None.

    Splitting each distinct line at its quotes replaces a JSON parse per line; anything unusual (other key
    order, extra fields, escapes, unknown labels, self-battles) returns None so that the general path parses it
    and reports the line.
    """
    keep = [i for i, content in enumerate(lines) if content.strip()]
    kept = [lines[i] for i in keep]
    if not kept or b"\\" in b"".join(kept):
        return None
    pieces = list(map(bytes.split, kept, itertools.repeat(b'"')))
    if set(map(len, pieces)) != {13} or not all(map(_flat_skeleton, set(map(_SKELETON, pieces)))):
        return None
    first, second, winner = zip(*map(_VALUES, pieces), strict=True)
    outcomes = list(map(_OUTCOME_BYTES.get, winner))
    if None in outcomes or any(map(operator.eq, first, second)):
        return None
    names = sorted(set(first) | set(second))
    if _CONTROL.search(b"".join(names)):
        return None
    try:
        decoded = [name.decode("utf-8") for name in names]
    except UnicodeDecodeError:
        return None
    order = sorted(range(len(names)), key=decoded.__getitem__)
    index = {names[i]: rank for rank, i in enumerate(order)}
    return aggregate_codes(
        [decoded[i] for i in order],
        np.fromiter(map(index.__getitem__, first), dtype=np.int64, count=len(first)),
        np.fromiter(map(index.__getitem__, second), dtype=np.int64, count=len(second)),
        np.array(outcomes, dtype=np.int64),
        weights=counts[keep],
    )


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
            lines = tally_lines(path)
            fast = _simple_tally(lines.lines, lines.counts)
            if fast is not None:
                return fast
            tally = _tally_distinct_lines(lines)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not tally:
        raise InputError("no battles in the file")
    return counts_from_tally(tally)


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
