"""Read battle logs and rating files (JSON array or JSON Lines) with line-numbered errors."""

from __future__ import annotations

import array
import codecs
import json
import math
import re
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from scoring import compiled
from scoring.battles import OUTCOMES, Battle, BattleCounts, aggregate_codes, counts_from_tally, outcome_code
from scoring.cores import idle_cores
from scoring.line_tally import LineTally, line_ranges, tally_lines

if TYPE_CHECKING:
    from scoring.style import StyleBattles

IntArray = NDArray[np.int64]
BATTLE_FIELDS = ("model_a", "model_b", "winner")
RATING_FIELDS = ("unit", "rater", "value")


class InputError(ValueError):
    """A problem with an input file, naming the line or record at fault."""


@dataclass(frozen=True)
class BattleFilter:
    """Which battles of a Chatbot Arena log to keep (the filters of FastChat's analysis).

    ``anony_only``: only battles with ``"anony": true``; ``language``: only that ``language``; ``dedup``: drop
    battles whose ``dedup_tag.sampled`` is false (kept where there is no ``dedup_tag``); ``since``/``until``: only
    ``since <= tstamp < until`` (Unix seconds); ``category``: only battles with ``true`` at this path into
    ``category_tag`` (``criteria_v0.1.math``: keys may hold dots; a missing path counts as false);
    ``exclude_ties``: drop both tie labels; ``min_votes``: then drop the models with fewer votes (one pass) and
    their battles. A record without a field that a filter reads, or with a value of the wrong type there, is an
    error naming its line.
    """

    anony_only: bool = False
    language: str | None = None
    dedup: bool = False
    since: float | None = None
    until: float | None = None
    category: str | None = None
    exclude_ties: bool = False
    min_votes: int = 0

    @property
    def reads_records(self) -> bool:
        """Return whether a filter reads fields other than the battle's own."""
        return bool(
            self.anony_only
            or self.language is not None
            or self.dedup
            or self.since is not None
            or self.until is not None
            or self.category
        )

    @property
    def active(self) -> bool:
        """Return whether any filter is set."""
        return self.reads_records or self.exclude_ties or self.min_votes > 0

    def as_dict(self) -> dict[str, Any]:
        """Return the filters that are set."""
        defaults = BattleFilter()
        return {name: value for name, value in vars(self).items() if value != getattr(defaults, name)}

    def apply(self, counts: BattleCounts) -> BattleCounts:
        """Apply ``exclude_ties`` and ``min_votes`` to aggregated counts; drop models left without battles."""
        if not self.exclude_ties and self.min_votes <= 0:
            return counts
        zero = np.zeros_like(counts.ties)
        ties = zero if self.exclude_ties else counts.ties
        bothbad = zero if self.exclude_ties else counts.ties_bothbad
        totals = counts.wins + counts.wins.T + ties + bothbad
        keep = np.flatnonzero(totals.sum(axis=1) >= max(self.min_votes, 1))
        grid = np.ix_(keep, keep)
        return BattleCounts(
            models=tuple(counts.models[i] for i in keep.tolist()),
            wins=counts.wins[grid],
            ties=ties[grid],
            ties_bothbad=bothbad[grid],
        )

    def apply_to_battles(self, battles: list[Battle]) -> list[Battle]:
        """Apply ``exclude_ties`` and ``min_votes`` to battles in file order."""
        if self.exclude_ties:
            battles = [battle for battle in battles if not battle[2].startswith("tie")]
        if self.min_votes > 0:
            votes = Counter(name for a, b, _ in battles for name in (a, b))
            battles = [b for b in battles if votes[b[0]] >= self.min_votes and votes[b[1]] >= self.min_votes]
        return battles


NO_FILTER = BattleFilter()


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


_MISSING = object()


def _filtered_battle(record: Any, filters: BattleFilter) -> Battle | None:
    """Return the record's battle, or None where the filters drop it (the checks of the compiled count_record)."""
    battle = _battle(_record_fields(record, BATTLE_FIELDS))
    if not filters.reads_records:
        return battle
    if filters.anony_only:
        anony = _typed(record, "anony", bool, "true or false", "--anony-only")
        if not anony:
            return None
    if filters.language is not None and _typed(record, "language", str, "a string", "--language") != filters.language:
        return None
    if filters.dedup:
        tag = record.get("dedup_tag", _MISSING)
        if tag is not _MISSING:
            if not isinstance(tag, dict):
                raise _RecordError("field 'dedup_tag' must be an object (read by --dedup)")
            sampled = tag.get("sampled", True)
            if not isinstance(sampled, bool):
                raise _RecordError("field 'dedup_tag.sampled' must be true or false (read by --dedup)")
            if not sampled:
                return None
    if filters.since is not None or filters.until is not None:
        tstamp = record.get("tstamp", _MISSING)
        if tstamp is _MISSING:
            raise _RecordError("missing field 'tstamp' (read by --since/--until)")
        if isinstance(tstamp, bool) or not isinstance(tstamp, int | float) or not math.isfinite(tstamp):
            raise _RecordError("field 'tstamp' must be a number (read by --since/--until)")
        since = -math.inf if filters.since is None else filters.since
        until = math.inf if filters.until is None else filters.until
        if not since <= tstamp < until:
            return None
    if filters.category:
        tag = record.get("category_tag", _MISSING)
        if tag is _MISSING:
            return None
        if not isinstance(tag, dict):
            raise _RecordError("field 'category_tag' must be an object (read by --category)")
        value = _category_value(tag, filters.category)
        if value is not _MISSING and not isinstance(value, bool):
            raise _RecordError(f"category_tag.{filters.category} must be true or false (read by --category)")
        if value is not True:
            return None
    return battle


def _typed(record: dict[str, Any], name: str, kind: type, what: str, option: str) -> Any:
    """Return a field a filter reads, checking that it is there and of the right type."""
    value = record.get(name, _MISSING)
    if value is _MISSING:
        raise _RecordError(f"missing field {name!r} (read by {option})")
    if not isinstance(value, kind):
        raise _RecordError(f"field {name!r} must be {what} (read by {option})")
    return value


def _category_value(tag: dict[str, Any], path: str) -> Any:
    """Return the value at a dotted path into category_tag (keys may hold dots: the first match in order counts)."""
    for key, value in tag.items():
        if key == path:
            return value
        if path.startswith(key + ".") and isinstance(value, dict):
            found = _category_value(value, path[len(key) + 1 :])
            if found is not _MISSING:
                return found
    return _MISSING


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


def _battle_from_line(content: bytes, filters: BattleFilter = NO_FILTER) -> Battle | None:
    """Parse and judge one JSON Lines battle (flat records in the usual key order skip the JSON parser)."""
    simple = None if filters.reads_records else _SIMPLE_BATTLE.fullmatch(content)
    if simple is not None:
        try:
            a, b, winner = (field.decode("utf-8") for field in simple.groups())
        except UnicodeDecodeError:
            pass
        else:
            return _battle((a, b, winner))
    return _filtered_battle(_load_record(content), filters)


def _load_record(content: bytes) -> Any:
    """Parse one JSON value; raise _RecordError saying why it is not JSON."""
    try:
        return json.loads(content)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _RecordError(f"invalid JSON ({getattr(exc, 'msg', exc)})") from None
    except RecursionError:
        raise _RecordError("invalid JSON (nested too deeply)") from None


MAX_RECORD_CHARS = 1 << 28


def _array_elements(path: str | Path) -> Iterator[tuple[int, Any]]:
    """Yield (first line, element) for each element of a JSON array file, reading it in blocks (no whole file).

    An element may be up to MAX_RECORD_CHARS characters long; errors raise InputError naming the line.
    """
    decoder = json.JSONDecoder()
    utf8 = codecs.getincrementaldecoder("utf-8-sig")()
    blank = re.compile(r"[ \t\r\n]*")
    with Path(path).open("rb") as handle:
        text, at, line, eof, state = "", 0, 1, False, "start"

        def more() -> None:
            nonlocal text, at, eof
            chunk = handle.read(max(1 << 20, len(text) - at))
            eof = not chunk
            try:
                text = text[at:] + utf8.decode(chunk, final=eof)
            except UnicodeDecodeError as exc:
                raise InputError(f"line {line}: invalid UTF-8 ({exc.reason})") from None
            at = 0

        while True:
            skipped = blank.match(text, at)
            assert skipped is not None
            line += text.count("\n", at, skipped.end())
            at = skipped.end()
            if at == len(text):
                if eof:
                    if state in ("start", "done"):
                        return
                    raise InputError(f"line {line}: invalid JSON (the array is not closed)")
                more()
                continue
            char = text[at]
            if state == "start":
                if char != "[":
                    raise InputError(f"line {line}: expected a JSON array or JSON Lines")
                at, state = at + 1, "first"
            elif state in ("first", "next") and not (state == "first" and char == "]"):
                try:
                    record, end = decoder.raw_decode(text, at)
                except json.JSONDecodeError as exc:
                    if not eof and len(text) - at < MAX_RECORD_CHARS:
                        more()
                        continue
                    raise InputError(
                        f"line {line + text.count(chr(10), at, exc.pos)}: invalid JSON ({exc.msg})"
                    ) from None
                except RecursionError:
                    raise InputError(f"line {line}: invalid JSON (nested too deeply)") from None
                if end == len(text) and not eof:  # a number may go on in the next block
                    more()
                    continue
                yield line, record
                line += text.count("\n", at, end)
                at, state = end, "after"
            elif state == "after" and char in ",]":
                at, state = at + 1, "next" if char == "," else "done"
            elif state == "first":
                at, state = at + 1, "done"
            else:
                what = "extra data after the array" if state == "done" else "expected ',' or ']'"
                raise InputError(f"line {line}: invalid JSON ({what})")


def _array_tally(path: str | Path, filters: BattleFilter) -> Counter[Battle]:
    """Tally the battles of a JSON array file that pass the filters, streaming it."""
    tally: Counter[Battle] = Counter()
    for line, record in _array_elements(path):
        try:
            battle = _filtered_battle(record, filters)
        except ValueError as exc:
            raise InputError(f"line {line}: {exc}") from None
        if battle is not None:
            tally[battle] += 1
    return tally


def _starts_like_json_array(path: str | Path) -> bool:
    """Return whether the file's first non-blank character opens a JSON array."""
    with Path(path).open("rb") as handle:
        while chunk := handle.read(1 << 16):
            text = chunk.lstrip(b" \t\r\n\xef\xbb\xbf")
            if text:
                return text[:1] == b"["
    return False


def read_battle_counts(path: str | Path, filters: BattleFilter | None = None) -> BattleCounts:
    """Read an Arena battle log (JSON Lines or a JSON array) and aggregate the battles that pass the filters.

    Records may carry any other keys (FastChat's ``clean_battle`` files); the compiled scanner reads them without
    a Python object per record, a JSON array one element at a time.
    """
    filters = filters or NO_FILTER
    try:
        array = _starts_like_json_array(path)
        counts = _scanned_counts(path, array, filters) if compiled.kernels is not None else None
        if counts is None:
            if array:
                tally = _array_tally(path, filters)
            else:
                lines = tally_lines(path)
                fast = None if filters.reads_records else _simple_tally(lines)
                tally = Counter() if fast is not None else _tally_distinct_lines(lines, filters)
                counts = fast
            if counts is None:
                if not tally:
                    raise InputError(
                        "no battles pass the filters" if filters.reads_records else "no battles in the file"
                    )
                counts = counts_from_tally(tally)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    counts = filters.apply(counts)
    if not counts.n_battles:
        raise InputError("no battles pass the filters")
    return counts


def _scanned_counts(path: str | Path, array: bool, filters: BattleFilter) -> BattleCounts | None:
    """Aggregate a log with the compiled scanner; None where the caller must read it itself.

    That is where a name is not UTF-8 (the caller says where) or where the scanner stopped after keeping more than
    64 MB of records it leaves to Python and none of them was an error. The scanner counts the records it can
    judge per (model_a, model_b, winner) and keeps every other line (array element) as a distinct line, which is
    parsed here, in file order, so that an error names the first bad line. Large JSON Lines files are split at
    line ends into one part per idle core, scanned by threads (the kernel runs without the GIL).
    """
    parts = _scan_parts(path, array, filters)
    try:
        names = [[name.decode("utf-8") for name in part[0]] for part in parts]
    except UnicodeDecodeError:
        return None
    other = _tally_distinct_lines(_odd_lines(parts), filters)
    if _parts_fall_back(parts):
        return None
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
        raise InputError("no battles pass the filters" if filters.reads_records else "no battles in the file")
    return aggregate_codes(
        models, np.concatenate(first_model), np.concatenate(second_model), np.concatenate(outcomes), weights
    )


_Scanned = tuple[list[bytes], bytes, bytes, list[bytes], bytes, bytes, int, int, bool, tuple[int, str] | None, bytes]


def scan_options(filters: BattleFilter) -> tuple[bool, bytes | None, bool, float, float, bytes | None]:
    """Return the compiled scanner's filter arguments."""
    return (
        filters.anony_only,
        None if filters.language is None else filters.language.encode("utf-8", "surrogatepass"),
        filters.dedup,
        -math.inf if filters.since is None else float(filters.since),
        math.inf if filters.until is None else float(filters.until),
        None if not filters.category else filters.category.encode("utf-8", "surrogatepass"),
    )


def _parts_fall_back(parts: list[_Scanned]) -> bool:
    """Raise the first line error the scanner reported; return whether any part must be read in Python instead."""
    for part in parts:
        if part[9] is not None:
            line, message = part[9]
            raise InputError(f"line {line}: {message}")
    return any(part[8] for part in parts)


def _scan_parts(path: str | Path, array: bool, filters: BattleFilter, style: bool = False) -> list[_Scanned]:
    """Scan the file with the compiled kernel, in parts read by threads when it is large and cores are idle.

    ``style``: keep each battle with its conv_metadata style counts (``read_style_battles``) instead of counting it.
    """
    kernels = compiled.kernels
    assert kernels is not None
    options = scan_options(filters)
    ranges = [(0, -1)] if array else line_ranges(Path(path), idle_cores())
    anony, language, dedup, since, until, category = options

    def scan_range(start: int, stop: int, is_array: bool) -> _Scanned:
        return kernels.scan_battles(
            str(path), True, start, stop, is_array, anony, language, dedup, since, until, category, style
        )

    if len(ranges) == 1:
        return [scan_range(*ranges[0], array)]
    results: list[_Scanned | None] = [None] * len(ranges)
    errors: list[BaseException] = []

    def scan(k: int) -> None:
        try:
            results[k] = scan_range(*ranges[k], False)
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
        lines, counts, first = parts[0][3:6]
        return LineTally(lines, np.frombuffer(counts, np.int64), np.frombuffer(first, np.int64), _NO_WORDS)
    merged: dict[bytes, list[int]] = {}
    offset = 0
    for part in parts:
        lines, counts, first, n_lines = part[3:7]
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


def _tally_distinct_lines(lines: LineTally, filters: BattleFilter = NO_FILTER) -> Counter[Battle]:
    """Parse each distinct line once, in file order; raise InputError naming the first bad line."""
    tally: Counter[Battle] = Counter()
    for i in np.argsort(lines.first, kind="stable").tolist():
        content = lines.lines[i]
        if content.strip():
            try:
                battle = _battle_from_line(content, filters)
            except ValueError as exc:
                raise InputError(f"line {_error_line(content, exc, int(lines.first[i]))}: {exc}") from None
            if battle is not None:
                tally[battle] += int(lines.counts[i])
    return tally


def _error_line(content: bytes, exc: ValueError, first: int) -> int:
    """Return the line of an error in a record that starts on line ``first`` (array elements span lines)."""
    if "\n" not in content.decode("utf-8", "replace"):
        return first
    try:
        json.loads(content)
    except json.JSONDecodeError as error:
        return first + error.lineno - 1
    except (UnicodeDecodeError, RecursionError):
        pass
    return first


def read_battles(path: str | Path, filters: BattleFilter | None = None) -> list[Battle]:
    """Read an Arena battle log as (model_a, model_b, winner) triples in file order, filtered."""
    filters = filters or NO_FILTER
    out: list[Battle] = []
    try:
        if _starts_like_json_array(path):
            for line, record in _array_elements(path):
                try:
                    battle = _filtered_battle(record, filters)
                except ValueError as exc:
                    raise InputError(f"line {line}: {exc}") from None
                if battle is not None:
                    out.append(battle)
        else:
            cache: dict[bytes, Battle | None] = {}
            with Path(path).open("rb") as handle:
                for number, content in enumerate(handle, start=1):
                    content = content.rstrip(b"\n")
                    if content not in cache:
                        if not content.strip():
                            continue
                        try:
                            cache[content] = _battle_from_line(content, filters)
                        except ValueError as exc:
                            raise InputError(f"line {number}: {exc}") from None
                    battle = cache[content]
                    if battle is not None:
                        out.append(battle)
                    if len(cache) > 1 << 16:
                        cache.clear()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    out = filters.apply_to_battles(out)
    if not out:
        raise InputError("no battles pass the filters" if filters.active else "no battles in the file")
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


def read_style_battles(path: str | Path, filters: BattleFilter | None = None) -> StyleBattles:
    """Read an Arena log's battles that pass the filters with both answers' style counts (``conv_metadata``).

    The compiled scanner reads the records and their ``conv_metadata`` in one pass (JSON Lines in parts read by
    threads, a JSON array streamed), into 11 integers a battle; a record it leaves aside (escapes in keys, a count it
    cannot judge, a missing field) is parsed here, so that an error names its line. Without the kernels, or where
    the scanner gives up (more than 64 MB of such records, names that are not UTF-8), every record is parsed in
    Python: the numpy/Python twin. A record without ``conv_metadata`` or with a bad count is an error naming its line.
    """
    filters = filters or NO_FILTER
    try:
        scanned = None
        if compiled.kernels is not None:
            scanned = _scanned_style(path, _starts_like_json_array(path), filters)
        index, data, weights = scanned if scanned is not None else _parsed_style(path, filters)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    return _style_battles(index, data, weights, filters)


_StyleColumns = tuple[dict[str, int], IntArray, IntArray]


def _parsed_style(path: str | Path, filters: BattleFilter) -> _StyleColumns:
    """Parse every record in Python: the names' indices, the (11, n) columns and the weights (all ones)."""
    index: dict[str, int] = {}
    columns = [array.array("q") for _ in range(11)]
    for line, record in _records(path):
        row = _style_row(record, filters, index, line)
        if row is not None:
            for column, value in zip(columns, row, strict=True):
                column.append(value)
    data = np.array([np.frombuffer(column, dtype=np.int64) for column in columns]).reshape(11, -1)
    return index, data, np.ones(data.shape[1], dtype=np.int64)


def _style_row(record: Any, filters: BattleFilter, index: dict[str, int], line: int) -> tuple[int, ...] | None:
    """Return the record's (a, b, outcome, eight counts), None where the filters drop it; errors name the line."""
    from scoring.style import style_counts  # only here: it imports scipy, the plain path does not

    try:
        battle = _filtered_battle(record, filters)
        counts = None if battle is None else style_counts(record.get("conv_metadata"))
    except ValueError as exc:
        raise InputError(f"line {line}: {exc}") from None
    if battle is None or counts is None:
        return None
    a, b, winner = battle
    return (index.setdefault(a, len(index)), index.setdefault(b, len(index)), outcome_code(winner), *counts)


def _scanned_style(path: str | Path, array: bool, filters: BattleFilter) -> _StyleColumns | None:
    """Read the log with the compiled scanner's style rows; None where the caller must parse it all itself.

    The records the scanner leaves aside are parsed here, each distinct one once, in file order (the first error
    is the first bad line), and weighted by how often it occurs.
    """
    parts = _scan_parts(path, array, filters, style=True)
    try:
        names = [[name.decode("utf-8") for name in part[0]] for part in parts]
    except UnicodeDecodeError:
        return None
    odd = _odd_lines(parts)
    index: dict[str, int] = {}
    odd_rows, odd_weights = [], []
    for i in np.argsort(odd.first, kind="stable").tolist():
        content = odd.lines[i]
        if not content.strip():
            continue
        try:
            record = _load_record(content)
        except ValueError as exc:
            raise InputError(f"line {_error_line(content, exc, int(odd.first[i]))}: {exc}") from None
        row = _style_row(record, filters, index, int(odd.first[i]))
        if row is not None:
            odd_rows.append(row)
            odd_weights.append(int(odd.counts[i]))
    if _parts_fall_back(parts):
        return None
    blocks, weights = [np.array(odd_rows, dtype=np.int64).reshape(-1, 11).T], [np.array(odd_weights, np.int64)]
    for part, part_names in zip(parts, names, strict=True):
        rank = np.array([index.setdefault(name, len(index)) for name in part_names], dtype=np.int64)
        rows = np.frombuffer(part[10], dtype=np.int64).reshape(-1, 11).T.copy()
        rows[:2] = rank.take(rows[:2])
        blocks.append(rows)
        weights.append(np.ones(rows.shape[1], dtype=np.int64))
    return index, np.concatenate(blocks, axis=1), np.concatenate(weights)


def _style_battles(index: dict[str, int], data: IntArray, weights: IntArray, filters: BattleFilter) -> StyleBattles:
    """Apply ``exclude_ties`` and ``min_votes``, number the models in name order and return the battles."""
    from scoring.style import StyleBattles

    keep = _style_keep(data, weights, len(index), filters)
    data, weights = data[:, keep], weights[keep]
    if not data.shape[1]:
        raise InputError("no battles pass the filters" if filters.active else "no battles in the file")
    used = set(np.unique(data[:2]).tolist())
    names = sorted(name for name, i in index.items() if i in used)
    rank = np.full(len(index), -1, dtype=np.int64)
    rank[[index[name] for name in names]] = np.arange(len(names))
    return StyleBattles(
        models=tuple(names),
        model_a=rank[data[0]],
        model_b=rank[data[1]],
        outcome=data[2].copy(),
        counts_a=np.ascontiguousarray(data[3:7].T),
        counts_b=np.ascontiguousarray(data[7:11].T),
        weights=weights,
    )


def _style_keep(data: IntArray, weights: IntArray, n_models: int, filters: BattleFilter) -> NDArray[np.bool_]:
    """Return which rows ``exclude_ties`` and ``min_votes`` keep (as ``BattleFilter.apply``: one pass)."""
    keep = np.ones(data.shape[1], dtype=bool)
    if filters.exclude_ties:
        keep &= data[2] < 2
    if filters.min_votes > 0:
        kept = weights * keep
        votes = np.bincount(data[0], kept, n_models) + np.bincount(data[1], kept, n_models)
        enough = votes >= filters.min_votes
        keep &= enough[data[0]] & enough[data[1]]
    return keep


def _records(path: str | Path) -> Iterator[tuple[int, Any]]:
    """Yield (line, record) for each record of a JSON array or JSON Lines file; errors name the line."""
    if _starts_like_json_array(path):
        yield from _array_elements(path)
        return
    with Path(path).open("rb") as handle:
        for number, content in enumerate(handle, start=1):
            if content.strip():
                try:
                    record = _load_record(content)
                except ValueError as exc:
                    raise InputError(f"line {number}: {exc}") from None
                yield number, record
