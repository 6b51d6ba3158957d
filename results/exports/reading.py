"""Read an export's rows from PostgreSQL as Arrow batches, with its prompts' and outputs' fields looked up.

Every query goes through ``COPY (...) TO STDOUT``: PostgreSQL writes CSV and pyarrow parses it block by block, so
no row becomes a Python object. The rows are narrow (ids, verdicts, short strings): the prompts and outputs they
refer to are read once, before them, and each batch takes its texts from there by id. When a campaign's texts
are larger than ``LOOKUP_BUDGET_BYTES`` they are joined in SQL instead (slower, as every row then carries and
sorts its texts), so memory stays bounded whatever the campaign.
"""

from __future__ import annotations

import select
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
from django.db import connection, transaction
from psycopg import pq
from psycopg.pq.abc import PGconn

from annotation.models import Campaign
from results.exports.formats import STR, ExportFormat, Query, Ref

TEXT = pa.string()

LOOKUP_BUDGET_BYTES = 32 << 20  # prompt and output texts one export keeps in memory (plus a copy while reading)
BLOCK_BYTES = 512 << 10  # CSV bytes of rows parsed per batch...
BLOCK_ROWS = 4096  # ...and rows: each may show several long texts, so both bound the memory a batch takes
DENSE_SLACK = 1 << 16
TABLES = {"prompt": "annotation_prompt", "output": "annotation_output"}
CAMPAIGN_ROWS = {
    "prompt": "FROM annotation_prompt t WHERE t.campaign_id = %s",
    "output": "FROM annotation_output t JOIN annotation_prompt p ON p.id = t.prompt_id WHERE p.campaign_id = %s",
}


class Encoder(Protocol):
    """What reading needs from an encoder: the Arrow type to parse a column as, and how to prepare its values."""

    def read_type(self, kind: str) -> pa.DataType: ...

    def prepare(self, values: pa.Array, kind: str) -> Any: ...

    def take(self, prepared: Any, positions: pa.Array) -> Any: ...


@contextmanager
def export_transaction() -> Iterator[Any]:
    """Run an export's queries in one transaction, with one snapshot when it is ours; yield the raw connection."""
    ours = not connection.in_atomic_block
    with transaction.atomic(), connection.cursor() as cursor:
        if ours:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        cursor.execute("SET LOCAL jit = off")  # see selectors.no_jit
        cursor.execute("SET LOCAL work_mem = '64MB'")  # sorts a million narrow rows in memory
        yield connection.connection


def copy_batches(raw: Any, sql: str, params: Sequence[Any], schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    """Yield a query's rows as record batches of the given schema, parsed by pyarrow from PostgreSQL's CSV."""
    read_options = pacsv.ReadOptions(column_names=schema.names, block_size=2 * BLOCK_BYTES, use_threads=False)
    parse_options = pacsv.ParseOptions(newlines_in_values=True)
    convert_options = pacsv.ConvertOptions(
        column_types=schema, strings_can_be_null=True, quoted_strings_can_be_null=False
    )
    with raw.cursor() as cursor, cursor.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)", params):
        for block in copy_blocks(raw):
            table = pacsv.read_csv(pa.BufferReader(block), read_options, parse_options, convert_options)
            yield from table.to_batches()


def copy_blocks(raw: Any) -> Iterator[bytes]:
    """Yield the rows of the connection's COPY TO in blocks of BLOCK_ROWS rows or about BLOCK_BYTES.

    Rows are read straight from libpq: psycopg's per-row generator machinery costs more than a narrow row.
    """
    pgconn: PGconn = raw.pgconn
    block, rows = bytearray(), 0
    while True:
        size, data = pgconn.get_copy_data(1)
        if size > 0:
            block += data
            rows += 1
            if rows >= BLOCK_ROWS or len(block) >= BLOCK_BYTES:
                yield bytes(block)
                block.clear()
                rows = 0
        elif size == 0:  # no whole row received yet
            select.select([pgconn.socket], [], [])
            pgconn.consume_input()
        elif size == -1:
            break
        else:
            raise psycopg.OperationalError(pgconn.error_message.decode(errors="replace"))
    if block:
        yield bytes(block)
    result = pgconn.get_result()  # the end of the COPY: its status, or the error that stopped it
    while pgconn.get_result() is not None:
        pass
    if result is None:
        raise psycopg.OperationalError("the COPY ended without a result")
    if result.status != pq.ExecStatus.COMMAND_OK:
        raise psycopg.errors.error_from_result(result, encoding=raw.info.encoding)


class Lookup:
    """One table's fields for a campaign, prepared by the encoder, and where each id's values are."""

    def __init__(self, ids: np.ndarray, fields: dict[str, Any]) -> None:
        self.ids, self.fields = ids, fields
        span = int(ids[-1] - ids[0]) + 1 if len(ids) else 0
        self.index: np.ndarray | None = None
        if span <= 4 * len(ids) + DENSE_SLACK:  # one campaign's ids are mostly consecutive: index them directly
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
            raise LookupError("a row refers to a prompt or output that the export did not read")
        return pa.array(found, pa.int32(), mask=absent)


def load_lookups(raw: Any, campaign: Campaign, query: Query, encoder: Encoder) -> dict[str, Lookup] | None:
    """Return the campaign's prompts and outputs with the fields the query refers to, or None if over the budget."""
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
            lengths = " + ".join(f"coalesce(octet_length(t.{name}), 0)" for name in names)
            cursor.execute(f"SELECT coalesce(sum({lengths}), 0) {CAMPAIGN_ROWS[table]}", [campaign.pk])
            (size,) = cursor.fetchone()
            total += int(size)
    return total


def load_lookup(raw: Any, campaign: Campaign, table: str, names: list[str], encoder: Encoder) -> Lookup:
    """Read a table's fields for the campaign, sorted by id, and prepare them for the encoder."""
    schema = pa.schema([("id", pa.int64()), *((name, pa.string()) for name in names)])
    sql = f"SELECT t.id, {', '.join(f't.{name}' for name in names)} {CAMPAIGN_ROWS[table]} ORDER BY t.id"
    rows = pa.Table.from_batches(list(copy_batches(raw, sql, [campaign.pk], schema)), schema).combine_chunks()
    columns = {name: rows[name].chunk(0) if rows[name].num_chunks else pa.array([], TEXT) for name in names}
    return Lookup(rows["id"].to_numpy(), {name: encoder.prepare(values, STR) for name, values in columns.items()})


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
    select = [sql for sql, _ in plain] + [key for _, key in keys]
    sql = f"{query.prefix} SELECT {', '.join(select)} {query.source} ORDER BY {query.order_by}"
    schema = [(f"c{i}", encoder.read_type(kind)) for i, (_, kind) in enumerate(plain)]
    schema += [(f"k{i}", pa.int64()) for i in range(len(keys))]
    positions = iter(range(len(plain)))
    sources = tuple(value if isinstance(value, Ref) else next(positions) for value in query.select)
    return Plan(sql, pa.schema(schema), sources, {key: len(plain) + i for i, key in enumerate(keys)})


def joined_plan(fmt: ExportFormat, query: Query, encoder: Encoder) -> Plan:
    """Return the plan that joins the looked-up fields in SQL (sorting rows with their texts)."""
    keys = list(dict.fromkeys((ref.table, ref.key) for ref in refs(query)))
    inner = [f"{value} AS c{i}" for i, value in enumerate(query.select) if isinstance(value, str)]
    inner += [f"{key} AS k{i}" for i, (_, key) in enumerate(keys)]
    joins = "".join(f" LEFT JOIN {TABLES[table]} j{i} ON j{i}.id = n.k{i}" for i, (table, _) in enumerate(keys))
    outer = [
        f"j{keys.index((value.table, value.key))}.{value.field}" if isinstance(value, Ref) else f"n.c{i}"
        for i, value in enumerate(query.select)
    ]
    sql = f"""{query.prefix} SELECT {", ".join(outer)}
              FROM (SELECT {", ".join(inner)}, {query.order_by} AS sort_key {query.source}) n{joins}
              ORDER BY n.sort_key"""
    schema = [(f"c{i}", encoder.read_type(kind)) for i, (_, kind) in enumerate(fmt.columns)]
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
            encoder.prepare(batch.column(source), kind)
            if isinstance(source, int)
            else encoder.take(tables[source.table].fields[source.field], positions[source.table, source.key])
            for source, kind in zip(plan.sources, kinds, strict=True)
        ]
        yield batch.num_rows, columns
