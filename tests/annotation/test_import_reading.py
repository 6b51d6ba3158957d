"""The reader under every importer: bounded lines, records, nesting and errors, read in pieces from a file."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

from annotation.importers import ImportRefused, parse_alpaca_eval, parse_battles, parse_gold, parse_outputs
from annotation.importers.errors import ErrorCollector
from annotation.importers.reading import read_records

ROW = {"prompt_id": "p1", "prompt": "Q", "model": "m", "output": "A"}
PARSERS = [parse_outputs, parse_battles, parse_alpaca_eval, parse_gold]


def _errors(name: str, data: bytes, parse: Any = parse_outputs) -> list[str]:
    with pytest.raises(ImportRefused) as refused:
        parse(name, data)
    return refused.value.lines


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.fixture
def small_limits(settings: Any) -> None:
    settings.IMPORT_LIMITS = {"max_line_bytes": 1000, "max_records": 3, "max_prompts": 2, "max_ratings": 2}


@pytest.mark.parametrize("parse", PARSERS)
@pytest.mark.parametrize(("depth", "field"), [(200, "extra"), (900, r"\w+"), (100_000, "json")])
def test_every_importer_refuses_deep_nesting_naming_the_line(parse: Any, depth: int, field: str) -> None:
    # Past several hundred levels json.loads itself gives up (RecursionError), before the field is known.
    row = '{"prompt_id": "p1", "prompt": "Q", "model": "m", "output": "A", "extra": ' + _nested(depth) + "}"
    jsonl = (json.dumps(ROW) + "\n" + row + "\n").encode()
    array = ("[\n" + json.dumps(ROW) + ",\n" + row + "\n]").encode()

    assert any(
        re.fullmatch(f"x.jsonl:2: {field}: nested deeper than 64 levels", e) for e in _errors("x.jsonl", jsonl, parse)
    )
    assert any(
        re.fullmatch(f"x.json:3: {field}: nested deeper than 64 levels", e) for e in _errors("x.json", array, parse)
    )


def test_nesting_is_counted_from_the_record_and_reported_with_its_field() -> None:
    # The record's object is level 1: "extra" holding 63 lists reaches level 64, 64 lists level 65.
    fine = {**ROW, "extra": json.loads(_nested(63))}
    deep = {**ROW, "prompt_id": "p2", "extra": json.loads(_nested(64))}

    assert parse_outputs("o.jsonl", json.dumps(fine).encode()).outputs[0].metadata == {"extra": fine["extra"]}
    assert _errors("o.jsonl", (json.dumps(fine) + "\n" + json.dumps(deep)).encode()) == [
        "o.jsonl:2: extra: nested deeper than 64 levels"
    ]


def test_a_line_longer_than_the_limit_is_reported_and_the_rest_still_read(small_limits: None) -> None:
    long_row = {**ROW, "prompt_id": "p2", "output": "x" * 5000}
    bad = {"prompt_id": "p3", "prompt": "Q", "model": "m"}
    data = "\n".join(json.dumps(r) for r in (ROW, long_row, bad)).encode()

    assert _errors("o.jsonl", data) == [
        "o.jsonl:2: line: longer than 1,000 bytes",
        "o.jsonl:3: output: missing field",
    ]


def test_a_json_array_element_or_csv_record_longer_than_the_limit_is_refused(small_limits: None) -> None:
    element = json.dumps({**ROW, "extra": ["x" * 20] * 100}, indent=1)  # short lines, 2,800 bytes
    csv_data = b'prompt_id,prompt,model,output\np1,Q,m,"' + b"x\n" * 800 + b'"\n'

    assert _errors("o.json", f"[\n{json.dumps(ROW)},\n{element}\n]".encode())[-1] == (
        "o.json:3: json: a record longer than 1,000 bytes"
    )
    assert _errors("o.csv", csv_data) == ["o.csv:498: csv: a record longer than 1,000 bytes"]


def test_a_file_with_more_records_prompts_or_ratings_than_the_limits_is_refused(small_limits: None) -> None:
    models = "\n".join(json.dumps({**ROW, "model": f"m{i}"}) for i in range(10)).encode()
    prompts = "\n".join(json.dumps({**ROW, "prompt_id": f"p{i}"}) for i in range(10)).encode()
    battle = {"model_a": "a", "model_b": "b", "winner": "tie"}
    battles = "\n".join(json.dumps({**battle, "question_id": f"q{i}"}) for i in range(10)).encode()

    assert _errors("o.jsonl", models) == ["o.jsonl:4: file: more than 3 records: split the file"]
    assert _errors("o.jsonl", prompts) == ["o.jsonl:3: prompt_id: more than 2 prompts: split the file"]
    assert _errors("b.jsonl", battles, parse_battles) == ["b.jsonl:3: file: more than 2 ratings: split the file"]


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("NaN", "invalid JSON: NaN is not a number PostgreSQL can store"),
        ("-Infinity", "invalid JSON: -Infinity is not a number PostgreSQL can store"),
        ("1e999", "invalid JSON: 1e999 is too large a number to store"),
        ("1" * 5000, "invalid JSON: a number with more than 4300 digits"),
    ],
)
def test_numbers_postgresql_cannot_store_are_refused_with_their_line(value: str, problem: str) -> None:
    data = (json.dumps(ROW) + "\n" + json.dumps({**ROW, "prompt_id": "p2"})[:-1] + f', "score": {value}}}').encode()

    assert _errors("o.jsonl", data) == [f"o.jsonl:2: json: {problem}"]
    assert _errors("o.json", b"[" + data.replace(b"\n", b",\n") + b"]") == [f"o.json:2: json: {problem}"]


def test_a_lone_surrogate_is_refused_with_its_line_and_field() -> None:
    data = (json.dumps(ROW) + "\n" + json.dumps({**ROW, "prompt_id": "p2", "meta": {"a": ["\ud800"]}})).encode()

    assert _errors("o.jsonl", data) == [
        "o.jsonl:2: meta: contains a lone surrogate (an unpaired \\ud800-\\udfff escape), which is not valid text"
    ]


class _Recorder(io.BytesIO):
    """A file that remembers the largest piece it was asked for."""

    largest = 0

    def read(self, size: int | None = -1) -> bytes:
        self.largest = max(self.largest, size if size is not None and size >= 0 else 1 << 62)
        return super().read(size)

    def readline(self, size: int | None = -1) -> bytes:
        self.largest = max(self.largest, size if size is not None and size >= 0 else 1 << 62)
        return super().readline(size)


@pytest.mark.parametrize("name", ["o.jsonl", "o.json", "o.csv"])
def test_records_are_read_from_a_file_in_bounded_pieces(name: str, small_limits: None) -> None:
    rows = [{**ROW, "prompt_id": f"p{i}"} for i in range(3)]
    text = {
        "o.jsonl": "\n".join(json.dumps(r) for r in rows),
        "o.json": json.dumps(rows, indent=2),
        "o.csv": "prompt_id,prompt,model,output\n" + "".join(f"{r['prompt_id']},Q,m,A\n" for r in rows),
    }[name]
    stream = _Recorder(text.encode())
    errors = ErrorCollector(name)

    records = list(read_records(name, stream, errors))

    assert [r.data["prompt_id"] for r in records] == ["p0", "p1", "p2"]
    assert not errors
    assert stream.largest <= 64 * 1024


def test_parsers_read_a_path(tmp_path: Path) -> None:
    path = tmp_path / "o.jsonl"
    path.write_text(json.dumps(ROW))

    assert [o.text for o in parse_outputs(path.name, path).outputs] == ["A"]


def test_an_unknown_import_limit_is_named(settings: Any) -> None:
    settings.IMPORT_LIMITS = {"max_lines": 10}

    with pytest.raises(ValueError, match=r"IMPORT_LIMITS: unknown keys \['max_lines'\]"):
        parse_outputs("o.jsonl", json.dumps(ROW).encode())
