"""Read an export's rows from PostgreSQL as Arrow batches, with its prompts' and outputs' fields looked up.

Every query goes through ``COPY (...) TO STDOUT``: PostgreSQL writes CSV and pyarrow parses it block by block, so
no row becomes a Python object. The rows are narrow (ids, verdicts, short strings): the prompts and outputs they
refer to are read once, before them, and each batch takes its texts from there by id. When a campaign's texts
are larger than ``LOOKUP_BUDGET_BYTES`` they are joined in SQL instead (slower, as every row then carries and
sorts its texts), so memory stays bounded whatever the campaign.
"""

from __future__ import annotations

import select
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from queue import Empty, Queue
from typing import Any, Protocol, TypeVar

import numpy as np
import psycopg
import pyarrow as pa
from django.db import connections, transaction
from psycopg import pq
from psycopg.pq.abc import PGconn

from annotation.models import Campaign
from evalplatform.db_router import heavy_read_alias
from results.exports.formats import STR, UTC, ExportFormat, Query, Ref
from results.exports.timestamps import iso_utc

T = TypeVar("T")
TEXT = pa.string()
TIMESTAMP = pa.timestamp("us", "UTC")

LOOKUP_BUDGET_BYTES = 32 << 20  # prompt and output texts one export keeps in memory (plus a copy while reading)
BLOCK_BYTES = 2 << 20  # bytes of rows parsed per batch...
BLOCK_ROWS = 4096  # ...and rows: each may show several long texts, so both bound the memory a batch takes
DENSE_SLACK = 1 << 16
SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
HEADER_BYTES = 19  # the signature, 4 bytes of flags and 4 of the header extension's length
TRAILER = b"\xff\xff"
POSTGRES_EPOCH_US = 946_684_800_000_000
TABLES = {"prompt": "annotation_prompt", "output": "annotation_output", "rater": "annotation_rater"}
# The rows an export may refer to: the campaign's prompts and outputs, and every rater (a few short names each).
CAMPAIGN_ROWS = {
    "prompt": "FROM annotation_prompt t WHERE t.campaign_id = %(campaign)s",
    "output": """FROM annotation_output t JOIN annotation_prompt p ON p.id = t.prompt_id
                  WHERE p.campaign_id = %(campaign)s""",
    "rater": "FROM annotation_rater t",
}
FIELDS = {("rater", "public_name"): "CASE WHEN {t}.user_id IS NULL THEN {t}.name ELSE {t}.pseudonym END"}
CASTS = {pa.string(): "text", pa.int64(): "int8", pa.float64(): "float8", pa.bool_(): "bool", TIMESTAMP: "timestamptz"}


class Encoder(Protocol):
    """What reading needs from an encoder: the Arrow type to parse a column as, and how to prepare its values."""

    def read_type(self, kind: str) -> pa.DataType: ...

    def prepare(self, values: pa.Array, kind: str) -> Any: ...

    def take(self, prepared: Any, positions: pa.Array) -> Any: ...


@contextmanager
def export_transaction() -> Iterator[Any]:
    """Run an export's queries in one transaction, with one snapshot when it is ours; yield the raw connection.

    The transaction is on the replica when one is configured and has caught up (``evalplatform.db_router``).
    """
    alias = heavy_read_alias()
    connection = connections[alias]
    ours = not connection.in_atomic_block
    with transaction.atomic(using=alias), connection.cursor() as cursor:
        if ours:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        cursor.execute("SET LOCAL jit = off")  # see selectors.no_jit
        cursor.execute("SET LOCAL work_mem = '64MB'")  # sorts a million narrow rows in memory
        yield connection.connection


def count_rows(raw: Any, sql: str, params: Sequence[Any]) -> int:
    """Return the count a ``SELECT count(*)`` query gives, 0 for no query."""
    if not sql:
        return 0
    with raw.cursor() as cursor:
        cursor.execute(sql, params)
        (rows,) = cursor.fetchone()
    return int(rows)


@contextmanager
def read_ahead(items: Iterator[T], depth: int = 2) -> Iterator[Iterator[T]]:
    """Run a generator in a thread of its own, at most ``depth`` items ahead of the iterator yielded.

    The generator is closed in its thread when the block exits, also early (a download stopped midway), and its
    exception, if any, is raised from the iterator.
    """
    queue: Queue[tuple[bool, Any]] = Queue(depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                queue.put((True, item))
                if stop.is_set():
                    break
            queue.put((False, None))
        except BaseException as exc:  # handed to the consumer, which raises it
            queue.put((False, exc))
        finally:
            items.close()  # type: ignore[attr-defined]

    def consume() -> Iterator[T]:
        while True:
            more, item = queue.get()
            if not more:
                if item is not None:
                    raise item
                return
            yield item

    thread = threading.Thread(target=produce, name="export-reader", daemon=True)
    thread.start()
    try:
        yield consume()
    finally:
        stop.set()
        while thread.is_alive():  # let the producer past a full queue, to see the stop
            with suppress(Empty):
                queue.get(timeout=0.05)
        thread.join()


def copy_batches(
    raw: Any, sql: str, params: Sequence[Any] | dict[str, Any], schema: pa.Schema
) -> Iterator[pa.RecordBatch]:
    """Yield a query's rows as record batches of the given schema, parsed from PostgreSQL's binary COPY.

    The query's columns must have the schema's types: text for strings, an integer type for int64, float4 or
    float8 for float64, bool for bool, timestamptz for timestamps (microseconds since 1970 in UTC).
    """
    with raw.cursor() as cursor, cursor.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT binary)", params):
        for block, lengths in copy_blocks(raw):
            yield parse_rows(block, lengths, schema)


def copy_blocks(raw: Any) -> Iterator[tuple[bytearray, list[int]]]:
    """Yield the rows of the connection's binary COPY TO in blocks of BLOCK_ROWS rows or about BLOCK_BYTES, with
    the length of each row.

    Rows are read straight from libpq: psycopg's per-row generator machinery costs more than a narrow row, and
    this loop runs once per row.
    """
    pgconn: PGconn = raw.pgconn
    get_copy_data = pgconn.get_copy_data
    block, lengths = bytearray(), list[int]()
    append, rows_left, header = lengths.append, BLOCK_ROWS, True
    while True:
        size, data = get_copy_data(1)
        if size > 2 or (size == 2 and bytes(data) != TRAILER):  # a row (the first one after the file's header)
            if header:
                first, header = without_header(bytes(data)), False
                if first == TRAILER:  # the header came with the trailer: no rows
                    continue
                data, size = memoryview(first), len(first)
            block += data
            append(size)
            rows_left -= 1
            if not rows_left or len(block) >= BLOCK_BYTES:
                yield block, lengths
                block, lengths = bytearray(), []
                append, rows_left = lengths.append, BLOCK_ROWS
        elif size == 0:  # no whole row received yet
            select.select([pgconn.socket], [], [])
            pgconn.consume_input()
        elif size == -1:
            break
        elif size < 0:
            raise psycopg.OperationalError(pgconn.error_message.decode(errors="replace"))
    # The COPY's end is read before the last block is handed out: if its consumer stops there, the connection
    # must not be left with the COPY's result unread.
    result = pgconn.get_result()  # the end of the COPY: its status, or the error that stopped it
    while pgconn.get_result() is not None:
        pass
    if result is None:
        raise psycopg.OperationalError("the COPY ended without a result")
    if result.status != pq.ExecStatus.COMMAND_OK:
        raise psycopg.errors.error_from_result(result, encoding=raw.info.encoding)
    if lengths:
        yield block, lengths


def without_header(first: bytes) -> bytes:
    """Return the first message of a binary COPY without the file header that begins it."""
    if not first.startswith(SIGNATURE) or len(first) < HEADER_BYTES:
        raise psycopg.OperationalError("the COPY did not start with PostgreSQL's binary signature")
    return first[HEADER_BYTES + int.from_bytes(first[15:19], "big") :]


def parse_rows(block: bytearray, lengths: list[int], schema: pa.Schema) -> pa.RecordBatch:
    """Return binary COPY rows as a record batch: every column is read for all the rows at once.

    A row is a field count, then per field its length (-1 for NULL) and its bytes; the row lengths give where
    each row starts, and each column's lengths where the next column starts.
    """
    n = len(lengths)
    block += bytes(8)  # a NULL's value is read (and ignored) where the next field starts: keep that inside
    sizes = np.array(lengths, np.int64)
    ends = np.cumsum(sizes)
    position = ends - sizes
    if n and (view(block, ">i2")[position] != len(schema)).any():
        raise psycopg.DataError(f"the COPY rows do not have the {len(schema)} columns expected")
    position += 2
    field_sizes = view(block, ">i4")
    columns = []
    for field in schema:
        size = field_sizes[position].astype(np.int64)
        columns.append(parse_column(block, position + 4, size, field))
        position += 4 + np.maximum(size, 0)
    if n and (position != ends).any():
        raise psycopg.DataError("the COPY rows are longer than their columns")
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def view(block: bytearray, dtype: str) -> np.ndarray:
    """Return the block as overlapping values of the type, one starting at each byte: ``view(...)[p]`` is the value
    whose bytes start at p (so one gather reads a value at each of many unaligned positions)."""
    width = np.dtype(dtype).itemsize
    return np.ndarray((len(block) - width + 1,), dtype, buffer=block, strides=(1,))


def parse_column(block: bytearray, start: np.ndarray, size: np.ndarray, field: pa.Field) -> pa.Array:
    """Return one column's values, whose bytes begin at ``start`` and have ``size`` bytes (-1: NULL)."""
    null = size < 0
    mask = null if null.any() else None
    if pa.types.is_string(field.type):
        return text_values(block, start, np.maximum(size, 0), mask)
    if pa.types.is_boolean(field.type):
        if (size[~null] != 1).any():
            raise psycopg.DataError(f"column {field.name}: values of several bytes are not a bool")
        return pa.array(view(block, "u1")[np.where(null, 0, start)] != 0, pa.bool_(), mask=mask)
    width = int(size.max(initial=-1))
    if width < 0:
        return pa.nulls(len(size), field.type)
    kind = "f" if pa.types.is_floating(field.type) else "i"
    if width not in ((4, 8) if kind == "f" else (2, 4, 8)) or (mask is not None and (size[~null] != width).any()):
        raise psycopg.DataError(f"column {field.name}: values of {width} bytes are not a {field.type}")
    if mask is None and (size != width).any():
        raise psycopg.DataError(f"column {field.name}: values of several sizes are not a {field.type}")
    values = view(block, f">{kind}{width}")[np.where(null, 0, start) if mask is not None else start]
    values = values.astype(np.float64 if kind == "f" else np.int64)
    if pa.types.is_timestamp(field.type):
        values += POSTGRES_EPOCH_US  # PostgreSQL counts from 2000-01-01
    return arrow(values, field.type, mask)


def arrow(values: np.ndarray, type: pa.DataType, mask: np.ndarray | None) -> pa.Array:
    """Return a numpy array of 8-byte values as an Arrow array of the type, null where the mask is true."""
    if mask is not None:
        return pa.array(values, type, mask=mask)
    # Without a mask, pa.array(values, type) takes a slow path (about 1 ms for 4,096 values): wrap the buffer.
    return pa.Array.from_buffers(type, len(values), [None, pa.py_buffer(np.ascontiguousarray(values))])


def text_values(block: bytearray, start: np.ndarray, size: np.ndarray, mask: np.ndarray | None) -> pa.Array:
    """Return strings cut out of the block: every other value of a binary array over it, taken at once."""
    n = len(start)
    offsets = np.empty(2 * n + 1, np.int32)  # a block is far below 2 GB: a row is at most 1 GB
    offsets[0:-1:2] = start
    offsets[1:-1:2] = start + size
    offsets[-1] = len(block)
    spans = pa.Array.from_buffers(pa.binary(), 2 * n, [None, pa.py_buffer(offsets), pa.py_buffer(block)])
    wanted = arrow(np.arange(0, 2 * n, 2, dtype=np.int64), pa.int64(), mask)
    return spans.take(wanted).view(TEXT)  # PostgreSQL sends valid UTF-8 in a UTF8 database


class Lookup:
    """One table's fields for a campaign, prepared by the encoder, and where each id's values are."""

    def __init__(self, ids: np.ndarray, fields: dict[str, Any]) -> None:
        self.ids, self.fields = ids, fields
        span = int(ids[-1] - ids[0]) + 1 if len(ids) else 0
        self.index: np.ndarray | None = None
        if (
            len(ids) and span <= 4 * len(ids) + DENSE_SLACK
        ):  # one campaign's ids are mostly consecutive: index them directly
            self.index = np.full(span, -1, np.int32)
            self.index[ids - ids[0]] = np.arange(len(ids), dtype=np.int32)

    def find(self, wanted: np.ndarray) -> np.ndarray:
        """Return the position of each id, -1 for an id not read."""
        if not len(self.ids):
            return np.full(len(wanted), -1, np.int32)
        if self.index is not None:
            offsets = wanted - self.ids[0]
            inside = (offsets >= 0) & (offsets < len(self.index))
            return np.where(inside, self.index[np.where(inside, offsets, 0)], -1)
        found = np.searchsorted(self.ids, wanted).clip(0, len(self.ids) - 1)
        return np.where(self.ids[found] == wanted, found, -1)

    def positions(self, keys: pa.Array) -> pa.Array:
        """Return the position of each key's values (null where the key is null)."""
        absent = keys.is_null().to_numpy(zero_copy_only=False)
        found = self.find(keys.fill_null(0).to_numpy())
        if ((found < 0) & ~absent).any():
            raise LookupError("a row refers to a prompt, output or rater that the export did not read")
        return pa.array(found, pa.int32(), mask=absent)


def load_lookups(raw: Any, campaign: Campaign, query: Query, encoder: Encoder) -> dict[str, Lookup] | None:
    """Return the campaign's prompts, outputs and raters with the fields the query refers to, or None if over the
    budget."""
    fields: dict[str, list[str]] = {}
    for ref in refs(query):
        names = fields.setdefault(ref.table, [])
        names += [ref.field] if ref.field not in names else []
    if text_bytes(raw, campaign, fields) > LOOKUP_BUDGET_BYTES:
        return None
    return {table: load_lookup(raw, campaign, table, names, encoder) for table, names in fields.items()}


def text_bytes(raw: Any, campaign: Campaign, fields: dict[str, list[str]]) -> int:
    """Return the size of the campaign's fields to look up."""
    total = 0
    with raw.cursor() as cursor:
        for table, names in fields.items():
            lengths = " + ".join(f"coalesce(octet_length({field_sql(table, name, 't')}), 0)" for name in names)
            cursor.execute(f"SELECT coalesce(sum({lengths}), 0) {CAMPAIGN_ROWS[table]}", {"campaign": campaign.pk})
            (size,) = cursor.fetchone()
            total += int(size)
    return total


def load_lookup(raw: Any, campaign: Campaign, table: str, names: list[str], encoder: Encoder) -> Lookup:
    """Read a table's fields for the campaign, sorted by id, and prepare them for the encoder."""
    schema = pa.schema([("id", pa.int64()), *((name, pa.string()) for name in names)])
    values = ", ".join(f"{field_sql(table, name, 't')}::text" for name in names)
    sql = f"SELECT t.id::int8, {values} {CAMPAIGN_ROWS[table]} ORDER BY t.id"
    batches = list(copy_batches(raw, sql, {"campaign": campaign.pk}, schema))
    rows = pa.Table.from_batches(batches, schema).combine_chunks()
    columns = {name: rows[name].chunk(0) if rows[name].num_chunks else pa.array([], TEXT) for name in names}
    return Lookup(rows["id"].to_numpy(), {name: encoder.prepare(values, STR) for name, values in columns.items()})


def field_sql(table: str, field: str, alias: str) -> str:
    """Return the SQL of a looked-up field of the table aliased ``alias``."""
    return FIELDS.get((table, field), "{t}." + field).format(t=alias)


def read_type(encoder: Encoder, kind: str) -> pa.DataType:
    """Return the Arrow type to read a column of this kind as: timestamps are read as such for every encoder."""
    return TIMESTAMP if kind == UTC else encoder.read_type(kind)


def cast(sql: str, type: pa.DataType) -> str:
    """Return the SQL of a column cast to the PostgreSQL type that the binary rows are parsed as."""
    return f"({sql})::{CASTS[type]}"


def refs(query: Query) -> list[Ref]:
    """Return the query's looked-up columns."""
    return [value for value in query.select if isinstance(value, Ref)]


@dataclass(frozen=True)
class Plan:
    """How to read an export: the SQL, the Arrow schema of its rows, and where each column's values are.

    A column's source is a column of the batch, or a Ref to look up by the batch column of its key.
    """

    sql: str
    schema: pa.Schema
    sources: tuple[int | Ref, ...]
    keys: dict[tuple[str, str], int]


def lookup_plan(fmt: ExportFormat, query: Query, encoder: Encoder) -> Plan:
    """Return the plan that selects plain columns and the ids to look the rest up by."""
    plain = [(sql, kind) for sql, (_, kind) in zip(query.select, fmt.columns, strict=True) if isinstance(sql, str)]
    keys = list(dict.fromkeys((ref.table, ref.key) for ref in refs(query)))
    select = [cast(sql, read_type(encoder, kind)) for sql, kind in plain] + [cast(key, pa.int64()) for _, key in keys]
    sql = f"{query.prefix} SELECT {', '.join(select)} {query.source} ORDER BY {query.order_by}"
    schema = [(f"c{i}", read_type(encoder, kind)) for i, (_, kind) in enumerate(plain)]
    schema += [(f"k{i}", pa.int64()) for i in range(len(keys))]
    positions = iter(range(len(plain)))
    sources = tuple(value if isinstance(value, Ref) else next(positions) for value in query.select)
    return Plan(sql, pa.schema(schema), sources, {key: len(plain) + i for i, key in enumerate(keys)})


def joined_plan(fmt: ExportFormat, query: Query, encoder: Encoder) -> Plan:
    """Return the plan that joins the looked-up fields in SQL (sorting rows with their texts)."""
    keys = list(dict.fromkeys((ref.table, ref.key) for ref in refs(query)))
    types = [read_type(encoder, kind) for _, kind in fmt.columns]
    inner = [f"{value} AS c{i}" for i, value in enumerate(query.select) if isinstance(value, str)]
    inner += [f"{key} AS k{i}" for i, (_, key) in enumerate(keys)]
    joins = "".join(f" LEFT JOIN {TABLES[table]} j{i} ON j{i}.id = n.k{i}" for i, (table, _) in enumerate(keys))
    outer = [
        cast(
            field_sql(value.table, value.field, f"j{keys.index((value.table, value.key))}")
            if isinstance(value, Ref)
            else f"n.c{i}",
            types[i],
        )
        for i, value in enumerate(query.select)
    ]
    sql = f"""{query.prefix} SELECT {", ".join(outer)}
              FROM (SELECT {", ".join(inner)}, {query.order_by} AS sort_key {query.source}) n{joins}
              ORDER BY n.sort_key"""
    schema = [(f"c{i}", type) for i, type in enumerate(types)]
    return Plan(sql, pa.schema(schema), tuple(range(len(fmt.columns))), {})


def read_rows(
    raw: Any, campaign: Campaign, fmt: ExportFormat, query: Query, encoder: Encoder
) -> Iterator[tuple[int, list[Any]]]:
    """Yield the export's rows batch by batch: their number, and per column of the format its prepared values."""
    lookups = load_lookups(raw, campaign, query, encoder)
    plan = joined_plan(fmt, query, encoder) if lookups is None else lookup_plan(fmt, query, encoder)
    tables = lookups or {}
    kinds = [kind for _, kind in fmt.columns]
    for batch in copy_batches(raw, plan.sql, query.params, plan.schema):
        positions = {key: tables[key[0]].positions(batch.column(index)) for key, index in plan.keys.items()}
        columns = [
            encoder.prepare(*plain_values(batch.column(source), kind))
            if isinstance(source, int)
            else encoder.take(tables[source.table].fields[source.field], positions[source.table, source.key])
            for source, kind in zip(plan.sources, kinds, strict=True)
        ]
        yield batch.num_rows, columns


def plain_values(values: pa.Array, kind: str) -> tuple[pa.Array, str]:
    """Return a column read from the rows as the encoder takes it: timestamps become their ISO 8601 strings."""
    return (iso_utc(values), STR) if kind == UTC else (values, kind)
