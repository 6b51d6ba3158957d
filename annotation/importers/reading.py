"""Read JSON arrays, JSON Lines and CSV into (line number, record) pairs, reporting bad lines."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from annotation.importers.errors import ErrorCollector

BOM = "\ufeff"


@dataclass(frozen=True)
class Record:
    """One record of a file and the line it starts on."""

    line: int
    data: dict[str, Any]


def decode(data: bytes, errors: ErrorCollector) -> str:
    """Return the file as text, reporting every line that is not valid UTF-8."""
    try:
        return data.decode("utf-8").removeprefix(BOM)
    except UnicodeDecodeError:
        pass
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        errors.add(1, "encoding", "the file is UTF-16: save it as UTF-8")
        return ""
    offset = 0
    for number, raw in enumerate(data.split(b"\n"), start=1):
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            bad = raw[exc.start]
            errors.add(
                number,
                "encoding",
                f"not UTF-8: byte 0x{bad:02X} at column {exc.start + 1} (file offset {offset + exc.start})",
            )
        offset += len(raw) + 1
    return ""


def detect_format(name: str, text: str) -> str:
    """Return "json", "jsonl" or "csv" from the file name's extension, else from the content."""
    suffix = PurePath(name).suffix.lower()
    head = text.lstrip()[:1]
    if suffix in {".jsonl", ".ndjson"}:
        return "jsonl"
    if suffix == ".csv":
        return "csv"
    if head == "[":
        return "json"
    if head == "{" or suffix == ".json":
        return "jsonl"
    return "csv"


def read_records(name: str, data: bytes, errors: ErrorCollector) -> list[Record]:
    """Return the records of a JSON array, JSON Lines or CSV file; bad lines go to `errors`."""
    text = decode(data, errors)
    if errors:
        return []
    if not text.strip():
        errors.add(1, "file", "the file is empty")
        return []
    readers = {"json": _read_json_array, "jsonl": _read_json_lines, "csv": _read_csv}
    records = readers[detect_format(name, text)](text, errors)
    if not records and not errors:
        errors.add(1, "file", "the file has no records")
    return records


def _read_json_lines(text: str, errors: ErrorCollector) -> list[Record]:
    records: list[Record] = []
    # Split on "\n" only: str.splitlines() would also split inside strings holding U+2028 and friends.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            errors.add(number, "json", f"invalid JSON: {exc.msg} at column {exc.colno}")
            continue
        _append_object(records, number, value, errors)
    return records


def _read_json_array(text: str, errors: ErrorCollector) -> list[Record]:
    """Walk a top-level array element by element, so that each record knows the line it starts on."""
    decoder = json.JSONDecoder()
    records: list[Record] = []
    pos = _skip_space(text, text.index("[") + 1)
    line, counted = 1, 0
    while pos < len(text) and text[pos] != "]":
        line += text.count("\n", counted, pos)
        counted = pos
        try:
            value, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            errors.add(exc.lineno, "json", f"invalid JSON: {exc.msg} at column {exc.colno}")
            return records
        _append_object(records, line, value, errors)
        pos = _skip_space(text, end)
        if pos < len(text) and text[pos] == ",":
            pos = _skip_space(text, pos + 1)
        elif pos >= len(text) or text[pos] != "]":
            line += text.count("\n", counted, pos)
            errors.add(line, "json", "invalid JSON: expected ',' or ']' after an element")
            return records
    if pos >= len(text):
        errors.add(text.count("\n") + 1, "json", "invalid JSON: the array is not closed")
    elif text[pos + 1 :].strip():
        errors.add(text.count("\n", 0, pos) + 1, "json", "invalid JSON: extra data after the array")
    return records


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _append_object(records: list[Record], line: int, value: Any, errors: ErrorCollector) -> None:
    if isinstance(value, dict):
        _append_record(records, line, value, errors)
    else:
        errors.add(line, "json", f"expected an object, got {type(value).__name__}")


def _append_record(records: list[Record], line: int, data: dict[str, Any], errors: ErrorCollector) -> None:
    """Keep a record unless some text in it holds a null character, which PostgreSQL cannot store."""
    for key, value in data.items():
        if _holds_null(key) or _holds_null(value):
            field = key.replace("\0", "\\0") if isinstance(key, str) else str(key)
            errors.add(line, field, "contains a null character (U+0000), which cannot be stored")
            return
    records.append(Record(line, data))


def _holds_null(value: Any) -> bool:
    if isinstance(value, str):
        return "\0" in value
    if isinstance(value, dict):
        return any(_holds_null(k) or _holds_null(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_null(v) for v in value)
    return False


def _read_csv(text: str, errors: ErrorCollector) -> list[Record]:
    reader = csv.DictReader(io.StringIO(text, newline=""), restkey="\0extra")
    records: list[Record] = []
    try:
        for row in reader:
            # line_num is the row's last line; quoted cells may span lines and blank lines are skipped.
            start = reader.line_num - sum(v.count("\n") for v in row.values() if isinstance(v, str))
            if "\0extra" in row:
                errors.add(start, "csv", "more cells than header columns")
                continue
            if None in row.values():
                errors.add(start, "csv", "fewer cells than header columns")
                continue
            _append_record(records, start, {key: value for key, value in row.items() if key}, errors)
    except csv.Error as exc:
        errors.add(reader.line_num, "csv", f"invalid CSV: {exc}")
    return records
