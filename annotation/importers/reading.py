"""Read JSON arrays, JSON Lines and CSV into (line number, record) pairs, one record at a time, reporting bad lines.

A file is read line by line from disk (or an uploaded file), never whole: memory holds one line, or one element of
a JSON array, at a time. Every line, element and nesting level is bounded (`ImportLimits`); a value PostgreSQL
cannot store (a null character, a lone surrogate, NaN or an infinity) is reported with its line and field.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import PurePath
from typing import IO, Any

from annotation.importers.errors import ErrorCollector
from annotation.importers.limits import ImportLimits, import_limits

BOM = "\ufeff"
Source = bytes | str | os.PathLike[str] | IO[bytes]
Progress = Callable[[int], None]
# Text whose JSON may hold a null character or a lone surrogate (only an escape can make either).
_SUSPECT_ESCAPE = re.compile(r"\\u(?:0000|[dD][89abcdefABCDEF])")
_NOT_BLANK = re.compile(r"[^ \t\r\n]")
_CHUNK = 64 * 1024
_PROGRESS_EVERY = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Record:
    """One record of a file and the line it starts on."""

    line: int
    data: dict[str, Any]


class _Stop(Exception):
    """A problem after which the rest of the file cannot be read (reported already)."""


@contextmanager
def open_source(source: Source) -> Iterator[IO[bytes]]:
    """Yield a binary stream at the start of `source`: bytes, a path, or a seekable binary file."""
    if isinstance(source, bytes):
        yield io.BytesIO(source)
    elif isinstance(source, str | os.PathLike):
        with open(source, "rb") as stream:
            yield stream
    else:
        source.seek(0)
        yield source


def read_records(
    name: str,
    source: Source,
    errors: ErrorCollector,
    *,
    limits: ImportLimits | None = None,
    progress: Progress | None = None,
    max_records: int | None = None,
    unit: str = "records",
) -> Iterator[Record]:
    """Yield the records of a JSON array, JSON Lines or CSV file one at a time; bad lines go to `errors`.

    Reading stops with an error after `max_records` (default: the limit's max_records), counted as `unit`.
    """
    limits = limits or import_limits()
    max_records = max_records or limits.max_records
    with open_source(source) as stream:
        head = stream.read(2)
        stream.seek(0)
        if head in (b"\xff\xfe", b"\xfe\xff"):
            errors.add(1, "encoding", "the file is UTF-16: save it as UTF-8")
            return
        first = _first_character(stream)
        if first is None:
            errors.add(1, "file", "the file is empty")
            return
        lines = _Lines(stream, errors, limits, progress)
        readers = {"json": _read_json_array, "jsonl": _read_json_lines, "csv": _read_csv}
        count = 0
        try:
            for record in readers[detect_format(name, first)](lines, errors, limits):
                count += 1
                if count > max_records:
                    errors.add(record.line, "file", f"more than {max_records:,} {unit}: split the file")
                    return
                yield record
        except _Stop:
            return
        if not count and not errors:
            errors.add(1, "file", "the file has no records")


def detect_format(name: str, first: str) -> str:
    """Return "json", "jsonl" or "csv" from the file name's extension, else from its first non-blank character."""
    suffix = PurePath(name).suffix.lower()
    if suffix in {".jsonl", ".ndjson"}:
        return "jsonl"
    if suffix == ".csv":
        return "csv"
    if first == "[":
        return "json"
    if first == "{" or suffix == ".json":
        return "jsonl"
    return "csv"


def _first_character(stream: IO[bytes]) -> str | None:
    """Return the first character that is not blank (nor a BOM), reading chunk by chunk; rewind the stream."""
    found = None
    while chunk := stream.read(_CHUNK):
        stripped = chunk.lstrip(b" \t\r\n").removeprefix(BOM.encode()).lstrip(b" \t\r\n")
        if stripped:
            found = stripped[:1].decode("latin-1")
            break
    stream.seek(0)
    return found


class _Lines:
    """The file's lines as text, each at most `max_line_bytes`; a bad line is reported and read as blank."""

    def __init__(self, stream: IO[bytes], errors: ErrorCollector, limits: ImportLimits, progress: Progress | None):
        self.stream, self.errors, self.limits, self.progress = stream, errors, limits, progress
        self.number = 0
        self.offset = 0
        self.reported = 0
        self.eof = False

    def __iter__(self) -> Iterator[tuple[int, str]]:
        while (line := self.read()) is not None:
            yield self.number, line

    def read(self) -> str | None:
        """Return the next line with its newline (None at the end of the file)."""
        limit = self.limits.max_line_bytes
        raw = self.stream.readline(limit + 2)
        if not raw:
            self.eof = True
            return None
        self.number += 1
        start = self.offset
        self.offset += len(raw)
        if len(raw) > limit + 1 or (len(raw) == limit + 1 and not raw.endswith(b"\n")):
            while not raw.endswith(b"\n") and (raw := self.stream.readline(_CHUNK)):
                self.offset += len(raw)
            self.errors.add(self.number, "line", f"longer than {limit:,} bytes")
            return "\n"
        if self.progress is not None and self.offset - self.reported >= _PROGRESS_EVERY:
            self.reported = self.offset
            self.progress(self.offset)
        return self._decode(raw, start)

    def _decode(self, raw: bytes, start: int) -> str:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            bad = raw[exc.start]
            self.errors.add(
                self.number,
                "encoding",
                f"not UTF-8: byte 0x{bad:02X} at column {exc.start + 1} (file offset {start + exc.start})",
            )
            return "\n"
        return text.removeprefix(BOM) if self.number == 1 else text


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number PostgreSQL can store")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is too large a number to store")
    return value


_DECODER = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite_float)


def _value_problem(exc: ValueError) -> str:
    if "digits" in str(exc):
        return "invalid JSON: a number with more than 4300 digits"
    return f"invalid JSON: {str(exc)[:200]}"


def _read_json_lines(lines: _Lines, errors: ErrorCollector, limits: ImportLimits) -> Iterator[Record]:
    # One record per "\n": str.splitlines() would also split inside strings holding U+2028 and friends.
    for number, line in lines:
        if not line.strip():
            continue
        try:
            value = _DECODER.decode(line)
        except json.JSONDecodeError as exc:
            errors.add(number, "json", f"invalid JSON: {exc.msg} at column {exc.colno}")
            continue
        except RecursionError:
            errors.add(number, "json", f"nested deeper than {limits.max_depth} levels")
            continue
        except ValueError as exc:
            errors.add(number, "json", _value_problem(exc))
            continue
        record = _record(number, value, line, errors, limits)
        if record is not None:
            yield record


class _ArrayText:
    """A window on a JSON array's text that grows by whole lines and forgets what was read."""

    def __init__(self, lines: _Lines) -> None:
        self.lines = lines
        self.text = ""
        self.first_line = 1  # the line `text` starts on
        self.counted_pos, self.counted_line = 0, 1

    def grow(self, at_least: int) -> bool:
        """Append whole lines until `at_least` characters were added; False at the end of the file."""
        added: list[str] = []
        size = 0
        while size < at_least and (line := self.lines.read()) is not None:
            added.append(line)
            size += len(line)
        self.text += "".join(added)
        return bool(added)

    def skip_space(self, pos: int) -> int:
        """Return the position of the next character that is not blank, reading on as needed (len(text) at EOF)."""
        while True:
            match = _NOT_BLANK.search(self.text, pos)
            if match:
                return match.start()
            pos = len(self.text)
            if not self.grow(_CHUNK):
                return pos

    def line_at(self, pos: int) -> int:
        self.counted_line += self.text.count("\n", self.counted_pos, pos)
        self.counted_pos = pos
        return self.counted_line

    def column_at(self, pos: int) -> int:
        return pos - (self.text.rfind("\n", 0, pos) + 1) + 1

    def forget_before(self, pos: int) -> int:
        """Drop whole lines before `pos` once they are most of the window; return `pos` in the new window."""
        cut = self.text.rfind("\n", 0, pos) + 1
        if cut < _CHUNK or cut < len(self.text) // 2:
            return pos
        self.line_at(cut)
        self.text = self.text[cut:]
        self.counted_pos = 0
        return pos - cut


def _read_json_array(lines: _Lines, errors: ErrorCollector, limits: ImportLimits) -> Iterator[Record]:
    """Walk a top-level array element by element, so that each record knows the line it starts on."""
    window = _ArrayText(lines)
    pos = window.skip_space(0) + 1  # past the "[" that chose this reader
    while True:
        pos = window.forget_before(window.skip_space(pos))
        if pos >= len(window.text):
            raise _fail(errors, window.line_at(pos), "invalid JSON: the array is not closed")
        if window.text[pos] == "]":
            break
        line = window.line_at(pos)
        value, end = _decode_element(window, pos, line, errors, limits)
        if end - pos > limits.max_line_bytes:
            errors.add(line, "json", f"a record longer than {limits.max_line_bytes:,} bytes")
        elif record := _record(line, value, window.text[pos:end], errors, limits):
            yield record
        pos = window.skip_space(end)
        if pos < len(window.text) and window.text[pos] == ",":
            pos += 1
        elif pos >= len(window.text) or window.text[pos] != "]":
            raise _fail(errors, window.line_at(pos), "invalid JSON: expected ',' or ']' after an element")
    after = window.skip_space(pos + 1)
    if after < len(window.text):
        errors.add(window.line_at(after), "json", "invalid JSON: extra data after the array")


def _decode_element(
    window: _ArrayText, pos: int, line: int, errors: ErrorCollector, limits: ImportLimits
) -> tuple[Any, int]:
    """Return the element at `pos` and where it ends, reading more lines while it is incomplete."""
    while True:
        try:
            return _DECODER.raw_decode(window.text, pos)
        except json.JSONDecodeError as exc:
            # The window holds whole lines and no JSON token spans a newline: an error at its very end means
            # the element goes on in lines not read yet; anywhere else it is a real error.
            incomplete = exc.pos >= len(window.text.rstrip())
            if not incomplete:
                raise _fail(
                    errors,
                    window.line_at(exc.pos),
                    f"invalid JSON: {exc.msg} at column {window.column_at(exc.pos)}",
                ) from None
            if len(window.text) - pos > limits.max_line_bytes:
                raise _fail(errors, line, f"a record longer than {limits.max_line_bytes:,} bytes") from None
            if not window.grow(max(_CHUNK, len(window.text) - pos)):
                raise _fail(errors, window.line_at(exc.pos), "invalid JSON: the array is not closed") from None
        except RecursionError:
            raise _fail(errors, line, f"nested deeper than {limits.max_depth} levels") from None
        except ValueError as exc:
            raise _fail(errors, line, _value_problem(exc)) from None


def _fail(errors: ErrorCollector, line: int, problem: str) -> _Stop:
    errors.add(line, "json", problem)
    return _Stop()


def _record(line: int, value: Any, raw: str, errors: ErrorCollector, limits: ImportLimits) -> Record | None:
    """Return the value as a record unless it is not an object or holds something that cannot be stored."""
    if not isinstance(value, dict):
        errors.add(line, "json", f"expected an object, got {type(value).__name__}")
        return None
    # Only text with many brackets can nest deeply, and only an escape can hide a null or a surrogate: most
    # records skip the walk.
    if raw.count("[") + raw.count("{") > limits.max_depth or _SUSPECT_ESCAPE.search(raw):
        problem = _unstorable(value, limits.max_depth)
        if problem is not None:
            errors.add(line, *problem)
            return None
    return Record(line, value)


def _unstorable(data: dict[str, Any], max_depth: int) -> tuple[str, str] | None:
    """Return (field, problem) for the first value nested too deep or holding a character PostgreSQL refuses."""
    for key, value in data.items():
        field = _printable(key)
        if _bad_text(key):
            return field, _bad_text(key)
        stack: list[tuple[Any, int]] = [(value, 2)]
        while stack:
            item, depth = stack.pop()
            if isinstance(item, str):
                if problem := _bad_text(item):
                    return field, problem
            elif isinstance(item, dict | list):
                if depth > max_depth:
                    return field, f"nested deeper than {max_depth} levels"
                children = item.values() if isinstance(item, dict) else item
                stack.extend((child, depth + 1) for child in children)
                if isinstance(item, dict):
                    stack.extend((child, depth + 1) for child in item)
    return None


def _bad_text(text: str) -> str:
    if "\0" in text:
        return "contains a null character (U+0000), which cannot be stored"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "contains a lone surrogate (an unpaired \\ud800-\\udfff escape), which is not valid text"
    return ""


def _printable(key: str) -> str:
    return key.replace("\0", "\\0").encode("utf-8", "backslashreplace").decode("utf-8")


def _read_csv(lines: _Lines, errors: ErrorCollector, limits: ImportLimits) -> Iterator[Record]:
    size = 0

    def feed() -> Iterator[str]:
        nonlocal size
        for number, text in lines:
            size += len(text)
            if size > limits.max_line_bytes:
                errors.add(number, "csv", f"a record longer than {limits.max_line_bytes:,} bytes")
                raise _Stop
            yield text

    reader = csv.DictReader(feed(), restkey="\0extra")
    try:
        if reader.fieldnames is None:
            return
        size = 0
        for row in reader:
            size = 0
            # line_num is the row's last line; quoted cells may span lines and blank lines are skipped.
            start = reader.line_num - sum(v.count("\n") for v in row.values() if isinstance(v, str))
            if "\0extra" in row:
                errors.add(start, "csv", "more cells than header columns")
            elif None in row.values():
                errors.add(start, "csv", "fewer cells than header columns")
            elif null := next((key for key, value in row.items() if "\0" in value or "\0" in (key or "")), None):
                errors.add(start, _printable(null), _bad_text("\0"))
            else:
                yield Record(start, {key: value for key, value in row.items() if key})
    except csv.Error as exc:
        errors.add(reader.line_num, "csv", f"invalid CSV: {exc}")
