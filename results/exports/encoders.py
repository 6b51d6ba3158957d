"""Encode an export's Arrow batches as JSON Lines, a JSON array, CSV or Parquet.

JSON Lines and CSV lines are built column-wise: every column becomes its text (numbers as PostgreSQL printed them,
strings escaped or quoted), then one element-wise join of the columns and the constant text between them makes
a batch of lines. A string column is checked for characters that need escaping in one search over its data
buffer; a clean column without nulls is left bare and its quotes join the constants around it. Long texts are
prepared once per prompt or output, not once per row (see ``reading``).
"""

from __future__ import annotations

import functools
import io
import json
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from results.exports.formats import STR, UTC, ExportFormat

LONG_TEXT = {"prompt", "output_a", "output_b", "rationale", "chosen", "rejected", "instruction", "output_1", "output_2"}
TEXT = pa.string()
SCAN_BYTES = 1 << 20
# What a JSON string escapes (json.dumps and PostgreSQL agree), and what PostgreSQL's CSV quotes (and "").
JSON_SPECIAL = bytes(range(32)) + b'"\\'
CSV_SPECIAL = b'",\r\n'


class Field(NamedTuple):
    """A column's text, to be written between ``quotes`` (a bare clean string column) or as it is."""

    values: pa.Array
    quotes: str = ""


def data_has(characters: bytes, values: pa.Array) -> bool:
    """Return whether any of the characters occurs in a string array's data (in all its buffer, beyond a slice)."""
    data = values.buffers()[2]
    view = memoryview(data) if data is not None else memoryview(b"")
    for start in range(0, len(view), SCAN_BYTES):  # in slices: a copy of a whole column of long texts is no small thing
        piece = view[start : start + SCAN_BYTES].tobytes()
        if len(piece.translate(None, characters)) != len(piece):
            return True
    return False


@functools.lru_cache(maxsize=256)  # every full batch joins the same constants: build them once
def repeated(text: str, n: int) -> pa.Array:
    """Return a string array of n times the same text (element-wise joins take arrays faster than scalars)."""
    data = text.encode()
    offsets = np.arange(n + 1, dtype=np.int32) * len(data)
    return pa.Array.from_buffers(TEXT, n, [None, pa.py_buffer(offsets), pa.py_buffer(data * n)])


def joined(parts: list[pa.Array | str], n: int, null: str | None = None) -> pa.Array:
    """Join arrays and constant texts element-wise, nulls written as ``null`` (by default, a null stays null)."""
    arrays = [repeated(part, n) if isinstance(part, str) else part for part in parts if part != ""]
    if null is None:
        return pc.binary_join_element_wise(*arrays, "")
    return pc.binary_join_element_wise(*arrays, "", null_handling="replace", null_replacement=null)


def text_data(lines: pa.Array) -> memoryview:
    """Return the concatenated values of a string array without nulls (a view of its buffer, not a copy)."""
    if not len(lines):
        return memoryview(b"")
    offsets = np.frombuffer(lines.buffers()[1], np.int32, len(lines) + 1, lines.offset * 4)
    return memoryview(lines.buffers()[2])[int(offsets[0]) : int(offsets[-1])]


def json_strings(values: pa.Array) -> Field:
    """Return strings as JSON string literals, nulls staying null."""
    if not data_has(JSON_SPECIAL, values):
        return Field(values, '"') if values.null_count == 0 else Field(joined(['"', values, '"'], len(values)))
    return Field(pa.concat_arrays([json_escaped(values.slice(start, 4096)) for start in range(0, len(values), 4096)]))


def json_escaped(values: pa.Array) -> pa.Array:
    """Return strings as JSON string literals, one by one (a few thousand at a time keeps the Python copies small)."""
    return pa.array([None if v is None else json.dumps(v, ensure_ascii=False) for v in values.to_pylist()], TEXT)


def csv_strings(values: pa.Array) -> Field:
    """Return strings as PostgreSQL writes CSV fields: quoted if they hold a delimiter, quote or newline, or are
    empty (NULL is nothing)."""
    empty = pc.fill_null(pc.equal(pc.binary_length(values), 0), False)
    if not data_has(CSV_SPECIAL, values) and not pc.any(empty).as_py():
        return Field(values)
    special = pc.or_(pc.fill_null(pc.match_substring_regex(values, r'[",\r\n]'), False), empty)
    quoted = joined(['"', pc.replace_substring(values, '"', '""'), '"'], len(values))
    return Field(pc.if_else(special, quoted, values))


class TextEncoder:
    """Lines of text: numbers as PostgreSQL printed them, strings rendered by ``strings``, NULL as ``null``."""

    null = ""

    def __init__(self, fmt: ExportFormat) -> None:
        self.fmt = fmt

    def read_type(self, kind: str) -> pa.DataType:
        return TEXT

    def prepare(self, values: pa.Array, kind: str) -> Field:
        return self.strings(values) if kind == STR else Field(values)

    def take(self, field: Field, positions: pa.Array) -> Field:
        values = field.values.take(positions)
        if field.quotes and values.null_count:
            return Field(joined([field.quotes, values, field.quotes], len(values)))
        return Field(values, field.quotes)

    def strings(self, values: pa.Array) -> Field:
        raise NotImplementedError

    def separators(self) -> list[str]:
        """Return the text before each column, then the text ending a line."""
        raise NotImplementedError

    def header(self) -> bytes:
        return b""

    def encode(self, fields: list[Field]) -> memoryview:
        separators = self.separators()
        parts: list[pa.Array | str] = []
        pending = ""
        for separator, field in zip(separators, fields, strict=False):  # separators end with the line's end
            parts += [pending + separator + field.quotes, field.values]
            pending = field.quotes
        parts.append(pending + separators[-1])
        return text_data(joined(parts, len(fields[0].values), self.null))

    def close(self) -> bytes:
        return b""


class JsonLinesEncoder(TextEncoder):
    """One JSON object per line, keys in the format's column order."""

    null = "null"

    def strings(self, values: pa.Array) -> Field:
        return json_strings(values)

    def separators(self) -> list[str]:
        keys = [json.dumps(name) + ":" for name in self.fmt.names]
        return ["{" + keys[0], *("," + key for key in keys[1:]), "}\n"]


class JsonArrayEncoder(JsonLinesEncoder):
    """One JSON array of objects (as pandas' ``read_json`` and FastChat's ``--clean-battle-file`` read a ``.json``
    file), written as it streams: an object per line, each after a comma but the first."""

    def __init__(self, fmt: ExportFormat) -> None:
        super().__init__(fmt)
        self.first = True

    def separators(self) -> list[str]:
        first, *rest = super().separators()
        return [",\n" + first, *rest[:-1], "}"]

    def header(self) -> bytes:
        return b"["

    def encode(self, fields: list[Field]) -> memoryview:
        lines = super().encode(fields)
        if self.first and len(lines):
            self.first = False
            return lines[2:]  # the first object follows the bracket without a comma
        return lines

    def close(self) -> bytes:
        return b"\n]\n"


class CsvEncoder(TextEncoder):
    """CSV as PostgreSQL's COPY writes it: a header line, fields quoted only when needed, NULL as nothing."""

    def strings(self, values: pa.Array) -> Field:
        return csv_strings(values)

    def separators(self) -> list[str]:
        return ["", *("," for _ in self.fmt.names[1:]), "\n"]

    def header(self) -> bytes:
        return (",".join(self.fmt.names) + "\n").encode()


class _Drain(io.RawIOBase):
    """A write-only sink whose written bytes are taken out after each row group."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.position = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self.parts.append(chunk)
        self.position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self.position

    def take(self) -> bytes:
        data, self.parts = b"".join(self.parts), []
        return data


class ParquetEncoder:
    """Parquet with zstd: one row group per batch, statistics only for short columns."""

    def __init__(self, fmt: ExportFormat) -> None:
        self.schema = pa.schema(
            [(name, TEXT if kind == UTC else pa.type_for_alias(kind)) for name, kind in fmt.columns]
        )
        self.sink = _Drain()
        small = [name for name, kind in fmt.columns if kind != STR or name not in LONG_TEXT]
        # Min/max statistics of long texts would grow the footer with every row group.
        self.writer = pq.ParquetWriter(self.sink, self.schema, compression="zstd", write_statistics=small)

    def read_type(self, kind: str) -> pa.DataType:
        return pa.type_for_alias(kind)

    def prepare(self, values: pa.Array, kind: str) -> pa.Array:
        return values

    def take(self, values: pa.Array, positions: pa.Array) -> pa.Array:
        return values.take(positions)

    def header(self) -> bytes:
        return b""

    def encode(self, columns: list[pa.Array]) -> bytes:
        self.writer.write_batch(pa.RecordBatch.from_arrays(columns, schema=self.schema))
        return self.sink.take()

    def close(self) -> bytes:
        self.writer.close()
        return self.sink.take()


ENCODERS: dict[str, type[JsonLinesEncoder] | type[CsvEncoder] | type[ParquetEncoder]] = {
    "jsonl": JsonLinesEncoder,
    "json": JsonArrayEncoder,
    "csv": CsvEncoder,
    "parquet": ParquetEncoder,
}
