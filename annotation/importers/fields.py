"""Field checks shared by the importers: each returns the clean value or None after reporting the problem."""

from __future__ import annotations

from typing import Any

from annotation.importers.errors import ErrorCollector
from annotation.importers.reading import Record

MISSING = object()
MAX_NAME = 200


def text_field(record: Record, key: str, errors: ErrorCollector, *, required: bool = True) -> str | None:
    """Return a non-empty string field; a missing optional field gives None."""
    value = record.data.get(key, MISSING)
    if value is MISSING or value is None:
        if required:
            errors.add(record.line, key, "missing field")
        return None
    if not isinstance(value, str):
        errors.add(record.line, key, f"expected text, got {type(value).__name__}")
        return None
    if not value.strip():
        if required:
            errors.add(record.line, key, "empty text")
        return None
    return value


def name_field(record: Record, key: str, errors: ErrorCollector, *, required: bool = True) -> str | None:
    """Return an identifier (text or an integer, stripped, at most 200 characters)."""
    value = record.data.get(key, MISSING)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    text = text_field(record, key, errors, required=required)
    if text is None:
        return None
    text = text.strip()
    if len(text) > MAX_NAME:
        errors.add(record.line, key, f"longer than {MAX_NAME} characters")
        return None
    return text


NO_EXTRAS: dict[str, Any] = {}  # shared by every record without extra keys (a dict per row adds up); never mutated


def extras(record: Record, known: set[str]) -> dict[str, Any]:
    """Return the record's keys that the format does not define, for metadata."""
    found = {key: value for key, value in record.data.items() if key not in known}
    return found or NO_EXTRAS
