"""Stream a campaign's ratings as datasets: ratings, Arena battles, TRL preference pairs, AlpacaEval records.

An export is one query whose narrow rows PostgreSQL sorts and streams with ``COPY (...) TO STDOUT (FORMAT
binary)``, a reading thread parses block by block into Arrow, and an encoder turns into JSON Lines, CSV or Parquet;
the texts those rows show come from the campaign's prompts, outputs and raters, read once (see ``reading``).
Python never holds more than a few batches of rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from annotation.models import Campaign
from evalplatform.exceptions import DomainError
from results.exports.formats import AGGREGATES, FORMATS, ExportFormat, export_format
from results.raters import RaterSelection

__all__ = [
    "AGGREGATES",
    "CONTENT_TYPES",
    "FORMATS",
    "ExportFormat",
    "RowCounter",
    "export_format",
    "file_type_for",
    "iter_export",
    "write_export",
]

FILE_TYPES = {".jsonl": "jsonl", ".json": "json", ".csv": "csv", ".parquet": "parquet"}
CONTENT_TYPES = {
    "jsonl": "application/x-ndjson",
    "json": "application/json",
    "csv": "text/csv",
    "parquet": "application/vnd.apache.parquet",
}


class RowCounter:
    """Count the rows an export wrote."""

    def __init__(self) -> None:
        self.rows = 0


def file_type_for(path: str | Path) -> str:
    """Return the file type (jsonl, json, csv, parquet) named by a file's extension."""
    suffix = Path(path).suffix.lower()
    if suffix not in FILE_TYPES:
        raise DomainError(
            f"{path}: unknown file type {suffix or '(none)'}; use .jsonl, .json, .csv or .parquet", field="out"
        )
    return FILE_TYPES[suffix]


def iter_export(
    campaign: Campaign,
    *,
    format: str,
    file_type: str,
    selection: RaterSelection,
    aggregate: str | None = None,
    counter: RowCounter | None = None,
) -> Iterator[bytes | memoryview]:
    """Yield an export of the campaign's selected ratings as encoded bytes, piece by piece."""
    # pyarrow and numpy are large: only a process that exports loads them, not every web or Celery worker.
    from results.exports.encoders import ENCODERS
    from results.exports.reading import export_transaction, read_ahead, read_rows

    fmt, policy = export_format(format, aggregate)
    query = fmt.query(campaign, selection, policy)
    encoder = ENCODERS[file_type](fmt)
    counter = counter or RowCounter()
    yield encoder.header()
    # Reading rows (a Python loop per row) runs beside encoding them (Arrow, which releases the GIL).
    with export_transaction() as raw, read_ahead(read_rows(raw, campaign, fmt, query, encoder)) as batches:
        for rows, columns in batches:
            counter.rows += rows
            yield encoder.encode(columns)
    yield encoder.close()


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
