"""Stream a campaign's ratings as datasets: ratings, Arena battles, TRL preference pairs, AlpacaEval records.

Each export is one SQL query streamed with ``COPY (...) TO STDOUT``: PostgreSQL writes the CSV (or, with
``row_to_json``, the JSON Lines) one row message at a time, and Parquet is that CSV parsed block by block by
pyarrow's streaming reader into row groups. Python never holds more than a batch, whatever the campaign's size.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.db import connection

from annotation.models import Campaign
from evalplatform.exceptions import DomainError
from results.raters import RaterSelection
from results.selectors import A_LEFT_SQL, OUTPUT_JOINS, PUBLIC_RATER_SQL, VALUE_SQL, ratings_from

FILE_TYPES = {".jsonl": "jsonl", ".json": "jsonl", ".csv": "csv", ".parquet": "parquet"}
CONTENT_TYPES = {"jsonl": "application/x-ndjson", "csv": "text/csv", "parquet": "application/vnd.apache.parquet"}
AGGREGATES = ("majority", "unanimous", "each")
PARQUET_BLOCK_BYTES = 1 << 20  # CSV bytes per Parquet row group: bounds memory
LONG_TEXT = {"prompt", "output_a", "output_b", "rationale", "chosen", "rejected", "instruction", "output_1", "output_2"}

STR, INT, FLOAT = "string", "int64", "float64"

PROMPT_JOIN = OUTPUT_JOINS + "\n    JOIN annotation_prompt p ON p.id = c.prompt_id"
LEFT_SQL = f"CASE WHEN {A_LEFT_SQL} THEN 'a' ELSE 'b' END"
ISO_SQL = """to_char(r.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""


@dataclass(frozen=True)
class ExportFormat:
    """An export: its columns with their Arrow types and the query that yields them in that order."""

    name: str
    columns: tuple[tuple[str, str], ...]
    query: Callable[[Campaign, RaterSelection, str], tuple[str, list[Any]]]
    aggregates: tuple[str, ...] = ("each",)

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.columns]


def ratings_query(campaign: Campaign, selection: RaterSelection, aggregate: str) -> tuple[str, list[Any]]:
    """Return the query of one row per rating, with texts, model names and the rater's pseudonym."""
    source, params = ratings_from(campaign, selection, joins=PROMPT_JOIN)
    sql = f"""SELECT r.id, c.id, p.external_id, p.text, c.output_a_id, c.output_b_id, xa.model_name, xb.model_name,
                     xa.text, xb.text, rr.pseudonym, r.rater_kind, r.source, r.verdict, {VALUE_SQL},
                     CASE WHEN r.verdict = 'win' AND r.winner_id = c.output_a_id THEN xa.model_name
                          WHEN r.verdict = 'win' THEN xb.model_name END,
                     {LEFT_SQL},
                     CASE WHEN r.verdict <> 'win' THEN r.verdict
                          WHEN r.winner_id = COALESCE(r.left_output_id, c.output_a_id) THEN 'left' ELSE 'right' END,
                     r.strength, r.rationale, r.time_ms, {ISO_SQL}
              {source} ORDER BY r.id"""
    return sql, params


RATINGS = ExportFormat(
    name="ratings",
    columns=(
        ("rating_id", INT),
        ("comparison_id", INT),
        ("question_id", STR),
        ("prompt", STR),
        ("output_a_id", INT),
        ("output_b_id", INT),
        ("model_a", STR),
        ("model_b", STR),
        ("output_a", STR),
        ("output_b", STR),
        ("rater", STR),
        ("rater_kind", STR),
        ("source", STR),
        ("verdict", STR),
        ("choice", STR),
        ("winner_model", STR),
        ("shown_left", STR),
        ("choice_side", STR),
        ("strength", INT),
        ("rationale", STR),
        ("time_ms", INT),
        ("created_at", STR),
    ),
    query=ratings_query,
)


def arena_query(campaign: Campaign, selection: RaterSelection, aggregate: str) -> tuple[str, list[Any]]:
    """Return the query of one Chatbot Arena battle per rating whose outputs both have a model name."""
    source, params = ratings_from(campaign, selection, joins=PROMPT_JOIN)
    sql = f"""SELECT CASE WHEN {A_LEFT_SQL} THEN xa.model_name ELSE xb.model_name END,
                     CASE WHEN {A_LEFT_SQL} THEN xb.model_name ELSE xa.model_name END,
                     CASE WHEN r.verdict = 'tie' THEN 'tie' WHEN r.verdict = 'both_bad' THEN 'tie (bothbad)'
                          WHEN r.winner_id = COALESCE(r.left_output_id, c.output_a_id) THEN 'model_a'
                          ELSE 'model_b' END,
                     {PUBLIC_RATER_SQL}, p.external_id, extract(epoch FROM r.created_at)::float8
              {source} AND xa.model_name IS NOT NULL AND xb.model_name IS NOT NULL ORDER BY r.id"""
    return sql, params


ARENA = ExportFormat(
    name="arena",
    columns=(
        ("model_a", STR),
        ("model_b", STR),
        ("winner", STR),
        ("judge", STR),
        ("question_id", STR),
        ("tstamp", FLOAT),
    ),
    query=arena_query,
)


def alpaca_eval_query(campaign: Campaign, selection: RaterSelection, aggregate: str) -> tuple[str, list[Any]]:
    """Return the query of one AlpacaEval annotation per rating: output_1 is the output shown first (left)."""
    source, params = ratings_from(campaign, selection, joins=PROMPT_JOIN)
    sql = f"""SELECT p.text,
                     CASE WHEN {A_LEFT_SQL} THEN xa.text ELSE xb.text END,
                     CASE WHEN {A_LEFT_SQL} THEN xb.text ELSE xa.text END,
                     CASE WHEN {A_LEFT_SQL} THEN xa.model_name ELSE xb.model_name END,
                     CASE WHEN {A_LEFT_SQL} THEN xb.model_name ELSE xa.model_name END,
                     CASE WHEN r.verdict <> 'win' THEN 1.5::float8
                          WHEN r.winner_id = COALESCE(r.left_output_id, c.output_a_id) THEN 1.0::float8
                          ELSE 2.0::float8 END,
                     {PUBLIC_RATER_SQL}, p.external_id, c.id, r.id
              {source} ORDER BY r.id"""
    return sql, params


ALPACA_EVAL = ExportFormat(
    name="alpaca_eval",
    columns=(
        ("instruction", STR),
        ("output_1", STR),
        ("output_2", STR),
        ("generator_1", STR),
        ("generator_2", STR),
        ("preference", FLOAT),
        ("annotator", STR),
        ("question_id", STR),
        ("comparison_id", INT),
        ("rating_id", INT),
    ),
    query=alpaca_eval_query,
)


def dpo_query(campaign: Campaign, selection: RaterSelection, aggregate: str) -> tuple[str, list[Any]]:
    """Return the query of TRL preference pairs under an aggregation policy (see DPO_POLICIES)."""
    if aggregate == "each":
        return dpo_each_query(campaign, selection)
    source, params = ratings_from(campaign, selection)
    keep = "v.a * 2 > v.n OR v.b * 2 > v.n" if aggregate == "majority" else "v.a = v.n OR v.b = v.n"
    sql = f"""WITH v AS (
                SELECT r.comparison_id AS id, count(*) AS n,
                       count(*) FILTER (WHERE r.verdict = 'win' AND r.winner_id = c.output_a_id) AS a,
                       count(*) FILTER (WHERE r.verdict = 'win' AND r.winner_id = c.output_b_id) AS b,
                       count(*) FILTER (WHERE r.verdict = 'tie') AS t,
                       count(*) FILTER (WHERE r.verdict = 'both_bad') AS bb
                {source} GROUP BY r.comparison_id)
              SELECT p.text,
                     CASE WHEN v.a > v.b THEN xa.text ELSE xb.text END,
                     CASE WHEN v.a > v.b THEN xb.text ELSE xa.text END,
                     CASE WHEN v.a > v.b THEN xa.model_name ELSE xb.model_name END,
                     CASE WHEN v.a > v.b THEN xb.model_name ELSE xa.model_name END,
                     p.external_id, c.id, %s, v.n, GREATEST(v.a, v.b), LEAST(v.a, v.b), v.t, v.bb, NULL, NULL
              FROM v JOIN annotation_comparison c ON c.id = v.id {PROMPT_JOIN}
              WHERE {keep} ORDER BY c.id"""
    return sql, [*params, aggregate]


def dpo_each_query(campaign: Campaign, selection: RaterSelection) -> tuple[str, list[Any]]:
    """Return the query of one preference pair per decisive rating."""
    source, params = ratings_from(campaign, selection, joins=PROMPT_JOIN)
    sql = f"""SELECT p.text,
                     CASE WHEN r.winner_id = c.output_a_id THEN xa.text ELSE xb.text END,
                     CASE WHEN r.winner_id = c.output_a_id THEN xb.text ELSE xa.text END,
                     CASE WHEN r.winner_id = c.output_a_id THEN xa.model_name ELSE xb.model_name END,
                     CASE WHEN r.winner_id = c.output_a_id THEN xb.model_name ELSE xa.model_name END,
                     p.external_id, c.id, 'each', 1, 1, 0, 0, 0, {PUBLIC_RATER_SQL}, r.id
              {source} AND r.verdict = 'win' ORDER BY r.id"""
    return sql, params


DPO = ExportFormat(
    name="dpo",
    columns=(
        ("prompt", STR),
        ("chosen", STR),
        ("rejected", STR),
        ("chosen_model", STR),
        ("rejected_model", STR),
        ("question_id", STR),
        ("comparison_id", INT),
        ("policy", STR),
        ("n_ratings", INT),
        ("votes_chosen", INT),
        ("votes_rejected", INT),
        ("votes_tie", INT),
        ("votes_both_bad", INT),
        ("rater", STR),
        ("rating_id", INT),
    ),
    query=dpo_query,
    aggregates=AGGREGATES,
)

FORMATS = {f.name: f for f in (RATINGS, ARENA, DPO, ALPACA_EVAL)}


def file_type_for(path: str | Path) -> str:
    """Return the file type (jsonl, csv, parquet) named by a file's extension."""
    suffix = Path(path).suffix.lower()
    if suffix not in FILE_TYPES:
        raise DomainError(f"{path}: unknown file type {suffix or '(none)'}; use .jsonl, .csv or .parquet", field="out")
    return FILE_TYPES[suffix]


def export_format(name: str, aggregate: str | None) -> tuple[ExportFormat, str]:
    """Return the named export and the aggregation policy to use, raising DomainError for bad names."""
    if name not in FORMATS:
        raise DomainError(f"format: unknown export {name!r}; use one of {', '.join(FORMATS)}", field="format")
    fmt = FORMATS[name]
    policy = aggregate or fmt.aggregates[0]
    if policy not in fmt.aggregates:
        allowed = ", ".join(fmt.aggregates)
        raise DomainError(f"aggregate: {name} exports take {allowed}, not {policy!r}", field="aggregate")
    return fmt, policy


def iter_export(
    campaign: Campaign,
    *,
    format: str,
    file_type: str,
    selection: RaterSelection,
    aggregate: str | None = None,
    counter: RowCounter | None = None,
) -> Iterator[bytes]:
    """Yield an export of the campaign's selected ratings as encoded bytes, piece by piece."""
    fmt, policy = export_format(format, aggregate)
    sql, params = fmt.query(campaign, selection, policy)
    yield from ENCODERS[file_type](fmt, sql, params, counter or RowCounter())


def write_export(
    campaign: Campaign, *, format: str, out: str | Path, selection: RaterSelection, aggregate: str | None = None
) -> int:
    """Write an export to a file whose extension gives its type; return the number of rows written."""
    file_type = file_type_for(out)
    export_format(format, aggregate)  # fail on bad names before creating the file
    counter = RowCounter()
    with open(out, "wb") as handle:
        for data in iter_export(
            campaign, format=format, file_type=file_type, selection=selection, aggregate=aggregate, counter=counter
        ):
            handle.write(data)
    return counter.rows


class RowCounter:
    """Count the rows an export wrote."""

    def __init__(self) -> None:
        self.rows = 0


def named(fmt: ExportFormat, sql: str, select: str = "t.*") -> str:
    """Wrap an export query so that its columns carry the format's names."""
    return f"SELECT {select} FROM ({sql}) AS t({', '.join(fmt.names)})"


def copy_out(sql: str, params: Sequence[Any], options: str) -> Iterator[bytes]:
    """Yield the output of ``COPY (sql) TO STDOUT`` as PostgreSQL sends it: one message per row."""
    # Take this thread's connection now: pyarrow may pull the rows from one of its own threads.
    connection.ensure_connection()
    return _copy_rows(connection.connection, f"COPY ({sql}) TO STDOUT {options}", params)


def _copy_rows(raw: Any, statement: str, params: Sequence[Any]) -> Iterator[bytes]:
    with raw.cursor() as cursor:
        cursor.execute("SET jit = off")  # see selectors.no_jit; reset below as the connection is reused
        try:
            with cursor.copy(statement, params) as copy:
                for data in copy:
                    yield bytes(data)
        finally:
            cursor.execute("RESET jit")


def encode_jsonl(fmt: ExportFormat, sql: str, params: Sequence[Any], counter: RowCounter) -> Iterator[bytes]:
    """Yield JSON Lines built by PostgreSQL (row_to_json), batched into larger writes."""
    rows = copy_out(named(fmt, sql, "row_to_json(t)::text"), params, "")
    # COPY's text format escapes backslashes; JSON text has no other character it escapes (no raw tab or newline).
    for batch in batched(rows):
        counter.rows += len(batch)
        yield b"".join(batch).replace(b"\\\\", b"\\")


def encode_csv(fmt: ExportFormat, sql: str, params: Sequence[Any], counter: RowCounter) -> Iterator[bytes]:
    """Yield CSV with a header line, written by PostgreSQL's COPY."""
    rows = copy_out(named(fmt, sql), params, "WITH (FORMAT csv, HEADER)")
    for batch in batched(rows):
        counter.rows += len(batch)
        yield b"".join(batch)
    counter.rows -= 1  # the header


def batched(messages: Iterable[bytes], size: int = 2000) -> Iterator[list[bytes]]:
    """Group row messages into lists of at most size."""
    batch: list[bytes] = []
    for message in messages:
        batch.append(message)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


class _StreamReader(io.RawIOBase):
    """A readable file over an iterator of byte strings (for pyarrow's streaming CSV reader)."""

    def __init__(self, parts: Iterator[bytes]) -> None:
        self.parts = parts
        self.buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        while not self.buffer:
            part = next(self.parts, None)
            if part is None:
                return 0
            self.buffer = part
        n = min(len(target), len(self.buffer))
        target[:n] = self.buffer[:n]
        self.buffer = self.buffer[n:]
        return n


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


def encode_parquet(fmt: ExportFormat, sql: str, params: Sequence[Any], counter: RowCounter) -> Iterator[bytes]:
    """Yield Parquet: PostgreSQL's CSV parsed by pyarrow's streaming reader, one row group per block."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    schema = pa.schema([(name, pa.type_for_alias(kind)) for name, kind in fmt.columns])
    source = io.BufferedReader(_StreamReader(copy_out(named(fmt, sql), params, "WITH (FORMAT csv)")), 1 << 20)
    reader = pacsv.open_csv(
        source,
        read_options=pacsv.ReadOptions(column_names=fmt.names, block_size=PARQUET_BLOCK_BYTES, use_threads=False),
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types=schema, strings_can_be_null=True, quoted_strings_can_be_null=False
        ),
    )
    sink = _Drain()
    small = [name for name, kind in fmt.columns if kind != "string" or name not in LONG_TEXT]
    # Min/max statistics of long texts would grow the footer with every row group.
    writer = pq.ParquetWriter(sink, schema, compression="zstd", write_statistics=small)
    for batch in reader:
        counter.rows += batch.num_rows
        writer.write_batch(batch)
        yield sink.take()
    writer.close()
    yield sink.take()


ENCODERS: dict[str, Callable[[ExportFormat, str, Sequence[Any], RowCounter], Iterator[bytes]]] = {
    "jsonl": encode_jsonl,
    "csv": encode_csv,
    "parquet": encode_parquet,
}
