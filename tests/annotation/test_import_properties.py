"""Property tests (Hypothesis): whatever a file holds, every importer answers with its own refusal or imports it,
never another exception (an admin 500), and a refused file leaves the database as it was."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from django.contrib.auth.models import User
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from annotation.importers import ImportRefused
from annotation.importers.jobs import IMPORTERS
from annotation.models import Comparison, Output, Prompt, Rater, Rating
from evalplatform.exceptions import DomainError
from tests import factories

FIELDS = {
    "outputs": ["prompt_id", "prompt", "model", "output", "reference", "output:m1", "output:m2"],
    "battles": ["question_id", "model_a", "model_b", "winner", "judge", "tstamp", "conversation_a", "conversation_b"],
    "alpaca_eval": ["instruction", "output_1", "output_2", "generator_1", "generator_2", "preference", "annotator"],
    "gold": ["prompt_id", "model_a", "model_b", "gold"],
}
NAMES = ["f.jsonl", "f.json", "f.csv", "f.txt"]
PROPERTY_SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)

# Text with what databases and decoders trip on: nulls, lone surrogates, newlines, separators, non-ASCII.
texts = st.one_of(
    st.text(st.characters(codec=None, categories=None), max_size=12),
    st.text(st.sampled_from(["\0", "\ud800", "\n", "\r", '"', ",", "\u2028", "é", "a"]), max_size=6),
    st.sampled_from(["m1", "m2", "model_a", "model_b", "tie", "p1"]),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1, 2, 1.5, 0, "model_a", "model_b", "tie", "both_bad", "tie (bothbad)"]),
    st.sampled_from([float("nan"), float("inf"), "\0", "\udc80"]),  # what PostgreSQL cannot store
    texts,
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8,
)


VALID: dict[str, dict[str, Any]] = {
    "outputs": {"prompt_id": "p1", "prompt": "Q", "model": "m1", "output": "A"},
    "battles": {"question_id": "q1", "model_a": "m1", "model_b": "m2", "winner": "tie"},
    "alpaca_eval": {"instruction": "Q", "output_1": "A", "output_2": "B", "preference": 1, "annotator": "x"},
    "gold": {"prompt_id": "p1", "model_a": "m1", "model_b": "m2", "gold": "tie"},
}


def _records(kind: str) -> st.SearchStrategy[list[dict[str, Any]]]:
    """Return lists of records that start valid and have some fields replaced or added with anything."""
    keys = st.one_of(st.sampled_from(FIELDS[kind]), texts)
    changes = st.lists(st.dictionaries(keys, json_values, max_size=4), min_size=1, max_size=6)
    # Each record its own item (else most files would be refused as duplicate rows), then changed.
    unique = {"outputs": "prompt_id", "battles": "question_id", "alpaca_eval": "instruction", "gold": "prompt_id"}
    return changes.map(lambda cs: [VALID[kind] | {unique[kind]: f"p{i}"} | c for i, c in enumerate(cs)])


def _encode(name: str, records: list[dict[str, Any]]) -> bytes:
    """Return the records as the file format the name chooses (surrogates written as JSON escapes)."""
    if name.endswith(".json"):
        return json.dumps(records, indent=1).encode()
    if name.endswith(".csv"):
        columns = sorted({str(key) for record in records for key in record})
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(columns)
        writer.writerows([[str(record.get(c, "")) for c in columns] for record in records])
        return out.getvalue().encode("utf-8", "surrogatepass")
    return "\n".join(json.dumps(record) for record in records).encode()


def _counts() -> tuple[int, ...]:
    return tuple(model.objects.count() for model in (Prompt, Output, Comparison, Rater, Rating))


def _import(kind: str, name: str, data: bytes, campaign: Any) -> None:
    """Parse and store the file; only the importers' own refusals may come out."""
    importer = IMPORTERS[kind]
    before = _counts()
    try:
        importer.write(campaign, importer.parse(name, data, None), False)
    except (ImportRefused, DomainError):
        assert _counts() == before
        return


@pytest.fixture
def campaign(researcher: User) -> Any:
    return factories.CampaignFactory.create(owner=researcher, slug="props")


@pytest.mark.parametrize("kind", list(IMPORTERS))
@PROPERTY_SETTINGS
@given(name=st.sampled_from(NAMES), data=st.binary(max_size=300))
def test_arbitrary_bytes_are_imported_or_refused(kind: str, name: str, data: bytes) -> None:
    try:
        IMPORTERS[kind].parse(name, data, None)
    except ImportRefused as refused:
        lines = refused.lines
    else:
        return
    assert lines
    assert all(line.startswith((f"{name}:", "...")) for line in lines)


@pytest.mark.django_db
@pytest.mark.parametrize("kind", list(IMPORTERS))
@PROPERTY_SETTINGS
@given(name=st.sampled_from(NAMES), data=st.data())
def test_arbitrary_records_are_imported_or_refused_leaving_the_database_as_it_was(
    kind: str, name: str, data: st.DataObject, campaign: Any
) -> None:
    records = data.draw(_records(kind))

    _import(kind, name, _encode(name, records), campaign)


@pytest.mark.django_db
@pytest.mark.parametrize("kind", list(IMPORTERS))
@PROPERTY_SETTINGS
@given(
    name=st.sampled_from(["f.jsonl", "f.json"]),
    extra=json_values,
    bad=st.sampled_from([float("nan"), float("-inf"), "a\0b", "\udc80"]),
)
def test_a_value_postgresql_cannot_store_anywhere_in_a_record_is_refused_before_writing(
    kind: str, name: str, extra: Any, bad: Any, campaign: Any
) -> None:
    record: dict[str, Any] = {**VALID[kind], "extra": [extra, {"deeper": bad}]}
    before = _counts()

    with pytest.raises(ImportRefused):
        IMPORTERS[kind].parse(name, _encode(name, [record]), None)

    assert _counts() == before


@pytest.mark.parametrize("kind", list(IMPORTERS))
@PROPERTY_SETTINGS
@given(depth=st.integers(min_value=64, max_value=5000), array=st.booleans())
def test_nesting_past_the_limit_is_refused_by_every_importer_naming_the_line(
    kind: str, depth: int, array: bool
) -> None:
    # The record's object is level 1, so a list nested `depth` deep in one of its fields reaches depth + 1 > 64.
    deep = "[" * depth + "]" * depth
    record = "{" + ", ".join(f'"{field}": "x"' for field in FIELDS[kind]) + f', "deep": {deep}}}'
    name, text = ("f.json", f"[\n{record}\n]") if array else ("f.jsonl", record)

    with pytest.raises(ImportRefused) as refused:
        IMPORTERS[kind].parse(name, text.encode(), None)

    line = 2 if array else 1
    assert any(
        e
        in (f"{name}:{line}: deep: nested deeper than 64 levels", f"{name}:{line}: json: nested deeper than 64 levels")
        for e in refused.value.lines
    ), refused.value.lines
