"""Stream a campaign's ratings as datasets: ratings, Arena battles, TRL preference pairs, AlpacaEval records.

An export is one query whose narrow rows PostgreSQL sorts and streams with ``COPY (...) TO STDOUT (FORMAT
binary)``, a reading thread parses block by block into Arrow, and an encoder turns into JSON Lines, a JSON array,
CSV or Parquet; the texts those rows show come from the campaign's prompts, outputs and raters, read once (see
``reading``). Python never holds more than a few batches of rows. Rows an export leaves out (dpo pairs without
texts) are counted before the first byte, so that a download can say how many in its headers.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path

from annotation.models import Campaign
from evalplatform.exceptions import DomainError
from results.exports.formats import (
    AGGREGATES,
    FORMATS,
    MIN_CONFIDENCE,
    ExportFormat,
    Query,
    counted,
    export_format,
    gated,
    gated_format,
)
from results.raters import RaterSelection

__all__ = [
    "AGGREGATES",
    "CONTENT_TYPES",
    "FORMATS",
    "MIN_CONFIDENCE",
    "ExportFormat",
    "RowCounter",
    "export_format",
    "file_type_for",
    "iter_export",
    "started",
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
    """Count the rows an export wrote, and those it left out (see ``ExportFormat.skipped``)."""

    def __init__(self) -> None:
        self.rows = 0
        self.skipped = 0
        self.warning = ""

    def skip(self, fmt: ExportFormat, query: Query, rows: int) -> None:
        """Count rows the export left out, with the warning that says so."""
        self.skipped = rows
        self.warning = f"skipped {rows} {query.skipped_what or fmt.skipped}" if rows else ""


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
    min_confidence: float | None = None,
    counter: RowCounter | None = None,
    consistent: bool = False,
) -> Generator[bytes | memoryview, None, None]:
    """Yield an export of the campaign's selected ratings as encoded bytes, piece by piece.

    The first piece comes once the rows left out have been counted (in the export's snapshot): a caller that takes
    it before sending anything can report them (``counter.warning``) in a response header. ``consistent`` applies
    the consistency gate (``formats.gated``: what a tie means depends on the dataset).
    """
    # pyarrow and numpy are large: only a process that exports loads them, not every web or Celery worker.
    from results.exports.encoders import ENCODERS
    from results.exports.reading import count_rows, export_transaction, read_ahead, read_rows

    fmt, policy = export_format(format, aggregate, min_confidence)
    query = fmt.query(campaign, selection, policy, MIN_CONFIDENCE if min_confidence is None else min_confidence)
    if consistent:
        query = gated(fmt, query, campaign, selection, policy)
        fmt = gated_format(fmt)
    encoder = ENCODERS[file_type](fmt)
    counter = counter or RowCounter()
    with export_transaction() as raw:
        counter.skip(fmt, query, count_rows(raw, counted(query), query.params))
        yield encoder.header()
        # Reading rows (a Python loop per row) runs beside encoding them (Arrow, which releases the GIL).
        with read_ahead(read_rows(raw, campaign, fmt, query, encoder)) as batches:
            for rows, columns in batches:
                counter.rows += rows
                yield encoder.encode(columns)
    yield encoder.close()


def started(stream: Generator[bytes | memoryview, None, None]) -> Generator[bytes | memoryview, None, None]:
    """Run an export up to its first piece now, so its counts of rows left out are known, and return the whole
    stream; closing it closes the export."""
    first = next(stream)

    def pieces() -> Generator[bytes | memoryview, None, None]:
        try:
            yield first
            yield from stream
        finally:
            stream.close()

    return pieces()


def write_export(
    campaign: Campaign,
    *,
    format: str,
    out: str | Path,
    selection: RaterSelection,
    aggregate: str | None = None,
    min_confidence: float | None = None,
    consistent: bool = False,
) -> RowCounter:
    """Write an export to a file whose extension gives its type; return its counts of rows written and left out."""
    file_type = file_type_for(out)
    export_format(format, aggregate, min_confidence)  # fail on bad names before creating the file
    counter = RowCounter()
    with open(out, "wb") as handle:
        for data in iter_export(
            campaign, format=format, file_type=file_type, selection=selection, aggregate=aggregate,
            min_confidence=min_confidence, counter=counter, consistent=consistent,
        ):  # fmt: skip
            handle.write(data)
    return counter
