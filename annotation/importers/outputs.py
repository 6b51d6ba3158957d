"""Prompts and model outputs: long format (a row per prompt, model and output) or wide (a column per model)."""

from __future__ import annotations

import dataclasses
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from annotation.importers.errors import ErrorCollector
from annotation.importers.fields import NO_EXTRAS, extras, name_field, text_field
from annotation.importers.limits import import_limits
from annotation.importers.reading import Progress, Record, Source, read_records
from annotation.importers.summary import ImportSummary
from annotation.importers.tags import TAG_FIELDS, prompt_tags, tags_field
from annotation.importers.writing import BATCH_SIZE, batched, check_campaign_accepts_imports, run_atomically
from annotation.models import Campaign, Output, Prompt
from annotation.rendering import render_markdown
from annotation.style_features import style_counts

WIDE_PREFIX = "output:"
LONG_FIELDS = {"prompt_id", "prompt", "model", "output", "reference", *TAG_FIELDS}
PROMPT_FIELDS = {"prompt_id", "prompt", "reference", *TAG_FIELDS}


@dataclass(frozen=True, slots=True)
class PromptRow:
    line: int
    external_id: str
    # UTF-8: a str holding one character past U+FFFF takes 4 bytes for every character of it.
    text_utf8: bytes
    reference_utf8: bytes
    metadata: dict[str, Any]
    number: int = -1  # its place in OutputsFile.prompt_ids, once kept
    tags: tuple[str, ...] = ()  # the file's tags/category (annotation/importers/tags.py)

    @property
    def text(self) -> str:
        return self.text_utf8.decode()

    @property
    def reference(self) -> str:
        return self.reference_utf8.decode()


@dataclass(frozen=True, slots=True)
class OutputRow:
    line: int
    prompt_id: str
    model: str
    text: str
    metadata: dict[str, Any]


@dataclass
class OutputsFile:
    """A validated file of prompts and outputs.

    Outputs are kept in columns (arrays of line, prompt and model numbers; the texts' UTF-8 end to end), not as
    an object per row, which would cost some 200 bytes of overhead each.
    """

    name: str
    layout: str
    prompts: dict[str, PromptRow] = field(default_factory=dict)
    prompt_ids: list[str] = field(default_factory=list)
    model_names: list[str] = field(default_factory=list)
    lines: array[int] = field(default_factory=lambda: array("i"))
    prompt_numbers: array[int] = field(default_factory=lambda: array("i"))
    model_numbers: array[int] = field(default_factory=lambda: array("i"))
    # Every output's text, UTF-8, one after the other; text i ends at text_ends[i].
    text_bytes: bytearray = field(default_factory=bytearray)
    text_ends: array[int] = field(default_factory=lambda: array("q"))
    metadata: list[dict[str, Any]] = field(default_factory=list)
    _model_numbers: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.lines)

    @property
    def models(self) -> set[str]:
        return set(self.model_names)

    @property
    def outputs(self) -> list[OutputRow]:
        """Return every output as a row (for small files and tests: the columns are what imports use)."""
        return [self.row(i) for i in range(len(self))]

    def row(self, i: int) -> OutputRow:
        prompt_id, model = self.prompt_ids[self.prompt_numbers[i]], self.model_names[self.model_numbers[i]]
        text = self.text_bytes[self.text_ends[i - 1] if i else 0 : self.text_ends[i]].decode()
        return OutputRow(self.lines[i], prompt_id, model, text, self.metadata[i])

    def add_prompt(self, prompt: PromptRow) -> tuple[PromptRow, bool]:
        """Keep the first row of each prompt id (numbered); return it, and whether it is this one."""
        first = self.prompts.get(prompt.external_id)
        if first is not None:
            return first, False
        first = self.prompts[prompt.external_id] = dataclasses.replace(prompt, number=len(self.prompt_ids))
        self.prompt_ids.append(prompt.external_id)
        return first, True

    def prompt_number(self, external_id: str) -> int:
        return self.prompts[external_id].number

    def add_output(self, prompt_id: str, row: OutputRow) -> None:
        model = self._model_numbers.setdefault(row.model, len(self.model_names))
        if model == len(self.model_names):
            self.model_names.append(row.model)
        self.lines.append(row.line)
        self.prompt_numbers.append(self.prompts[prompt_id].number)
        self.model_numbers.append(model)
        self.text_bytes += row.text.encode()
        self.text_ends.append(len(self.text_bytes))
        self.metadata.append(row.metadata)

    def duplicates(self) -> Iterator[tuple[int, int]]:
        """Yield (row, first row) for each row whose prompt and model an earlier row has already."""
        keys = np.frombuffer(self.prompt_numbers, dtype=np.int32).astype(np.int64) * max(len(self.model_names), 1)
        keys = keys + np.frombuffer(self.model_numbers, dtype=np.int32)
        order = np.argsort(keys, kind="stable")  # rows of one key stay in file order
        repeated = np.flatnonzero(keys[order][1:] == keys[order][:-1]) + 1
        if not len(repeated):
            return
        group_start = np.ones(len(order), dtype=bool)
        group_start[repeated] = False
        first = np.maximum.accumulate(np.where(group_start, np.arange(len(order)), 0))
        for position in repeated:
            yield int(order[position]), int(order[first[position]])


def parse_outputs(name: str, source: Source, *, progress: Progress | None = None) -> OutputsFile:
    """Return the prompts and outputs of a JSONL, JSON or CSV file, or raise ImportRefused listing bad lines.

    The layout is the first record's: wide when it has an `output:<model>` column, else long.
    """
    errors = ErrorCollector(name)
    parsed: OutputsFile | None = None
    max_prompts = import_limits().max_prompts
    for record in read_records(name, source, errors, progress=progress):
        if parsed is None:
            wide = any(key.startswith(WIDE_PREFIX) for key in record.data)
            parsed = OutputsFile(name=name, layout="wide" if wide else "long")
        prompt = _prompt_row(record, errors, wide=parsed.layout == "wide")
        rows = _wide_outputs(record, errors) if parsed.layout == "wide" else _long_output(record, errors)
        if prompt is None:
            continue
        if len(parsed.prompts) == max_prompts and prompt.external_id not in parsed.prompts:
            errors.add(record.line, "prompt_id", f"more than {max_prompts:,} prompts: split the file")
            break
        prompt_id = _add_prompt(parsed, prompt, errors)
        for row in rows:
            parsed.add_output(prompt_id, row)
    if parsed is not None:
        for number, first in parsed.duplicates():
            duplicate = parsed.row(number)
            errors.add(
                duplicate.line,
                "model",
                f"duplicate row: prompt {duplicate.prompt_id} and model {duplicate.model} as on line "
                f"{parsed.lines[first]}",
            )
    errors.raise_if_any()
    assert parsed is not None  # a file without records was refused above
    return parsed


def _prompt_row(record: Record, errors: ErrorCollector, *, wide: bool) -> PromptRow | None:
    external_id = name_field(record, "prompt_id", errors)
    text = text_field(record, "prompt", errors)
    reference = text_field(record, "reference", errors, required=False) or ""
    tags = tags_field(record, errors)
    if external_id is None or text is None:
        return None
    metadata = extras(record, PROMPT_FIELDS) if wide else NO_EXTRAS
    if metadata:
        metadata = {key: value for key, value in metadata.items() if not key.startswith(WIDE_PREFIX)} or NO_EXTRAS
    return PromptRow(record.line, external_id, text.encode(), reference.encode(), metadata, tags=tags)


def _long_output(record: Record, errors: ErrorCollector) -> list[OutputRow]:
    model = name_field(record, "model", errors)
    text = text_field(record, "output", errors)
    if model is None or text is None:
        return []
    return [OutputRow(record.line, "", model, text, extras(record, LONG_FIELDS))]


def _wide_outputs(record: Record, errors: ErrorCollector) -> list[OutputRow]:
    """Return one output per non-empty `output:<model>` cell; an empty cell means that model did not answer."""
    rows = []
    for key, value in record.data.items():
        if not key.startswith(WIDE_PREFIX):
            continue
        model = key.removeprefix(WIDE_PREFIX).strip()
        if not model or len(model) > 200:
            errors.add(record.line, key, "the column must name a model: output:<model name>")
            continue
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        if not isinstance(value, str):
            errors.add(record.line, key, f"expected text, got {type(value).__name__}")
            continue
        rows.append(OutputRow(record.line, "", model, value, {}))
    if not rows and not any(k.startswith(WIDE_PREFIX) and record.data[k] for k in record.data):
        errors.add(record.line, "output:*", "no output in any model column")
    return rows


def _add_prompt(parsed: OutputsFile, prompt: PromptRow, errors: ErrorCollector) -> str:
    """Keep the prompt's first row; return its id (the first row's string, so that rows share it)."""
    first, added = parsed.add_prompt(prompt)
    if added:
        return first.external_id
    if first.text_utf8 != prompt.text_utf8:
        errors.add(prompt.line, "prompt", f"conflicting text for prompt_id {prompt.external_id} (line {first.line})")
    if prompt.reference_utf8 and first.reference_utf8 != prompt.reference_utf8:
        errors.add(
            prompt.line, "reference", f"conflicting reference for prompt_id {prompt.external_id} (line {first.line})"
        )
    if prompt.tags and not first.tags:  # tags may come on any one of the prompt's rows
        parsed.prompts[first.external_id] = dataclasses.replace(first, tags=prompt.tags)
    elif prompt.tags and first.tags != prompt.tags:
        errors.add(prompt.line, "tags", f"conflicting tags for prompt_id {prompt.external_id} (line {first.line})")
    return first.external_id


def import_outputs(*, campaign: Campaign, parsed: OutputsFile, dry_run: bool = False) -> ImportSummary:
    """Add the file's prompts and outputs to the campaign; rows already stored identically are kept as they are.

    Refuses (writing nothing) when a stored prompt or output with the same id differs from the file. A dry run
    checks and counts with queries only.
    """
    check_campaign_accepts_imports(campaign)
    return run_atomically(lambda: _write_outputs(campaign, parsed, dry_run=dry_run), dry_run=dry_run)


def _write_outputs(campaign: Campaign, parsed: OutputsFile, *, dry_run: bool) -> ImportSummary:
    errors = ErrorCollector(parsed.name)
    stored = _stored_prompts(campaign, parsed, errors)
    new_rows = _new_rows(parsed, stored, errors)
    errors.raise_if_any()
    new_prompts = [p for p in parsed.prompts.values() if p.external_id not in stored]
    if not dry_run:
        _insert_prompts(campaign, new_prompts, stored)
        _insert_outputs(parsed, new_rows, stored)
    return ImportSummary(
        file=parsed.name,
        records=int(np.unique(np.frombuffer(parsed.lines, dtype=np.int32)).size),
        prompts=len(parsed.prompts),
        models=len(parsed.model_names),
        outputs=len(parsed),
        created={"prompts": len(new_prompts), "outputs": len(new_rows)},
    )


def _stored_prompts(campaign: Campaign, parsed: OutputsFile, errors: ErrorCollector) -> dict[str, int]:
    """Return the pk of each of the file's prompts already stored (locked), reporting those stored differently."""
    stored: dict[str, int] = {}
    for ids in batched(parsed.prompts, BATCH_SIZE):
        rows = (
            Prompt.objects.select_for_update()
            .filter(campaign=campaign, external_id__in=ids)
            .values_list("pk", "external_id", "text", "reference_answer")
        )
        for pk, external_id, text, reference in rows:
            stored[external_id] = pk
            _check_stored_prompt(parsed.prompts[external_id], text, reference, errors)
    return stored


def _check_stored_prompt(row: PromptRow, text: str, reference: str, errors: ErrorCollector) -> None:
    if text != row.text:
        errors.add(row.line, "prompt", f"prompt_id {row.external_id} is already stored with a different text")
    elif row.reference and reference != row.reference:
        errors.add(row.line, "reference", f"prompt_id {row.external_id} is already stored with a different reference")


def _new_rows(parsed: OutputsFile, stored: dict[str, int], errors: ErrorCollector) -> np.ndarray[Any, Any]:
    """Return the numbers of the rows to insert: all but those of stored prompts whose output is stored already."""
    prompt_numbers = np.frombuffer(parsed.prompt_numbers, dtype=np.int32)
    stored_numbers = np.array([parsed.prompt_number(external_id) for external_id in stored], dtype=np.int32)
    new = np.ones(len(prompt_numbers), dtype=bool)
    for rows in batched(np.flatnonzero(np.isin(prompt_numbers, stored_numbers)).tolist(), BATCH_SIZE):
        batch = [parsed.row(i) for i in rows]
        stored_outputs = Output.objects.filter(
            prompt_id__in={stored[r.prompt_id] for r in batch}, model_name__in={r.model for r in batch}
        ).values_list("prompt_id", "model_name", "text")
        texts = {(pk, model): text for pk, model, text in stored_outputs}
        for i, row in zip(rows, batch, strict=True):
            existing = texts.get((stored[row.prompt_id], row.model))
            if existing is None:
                continue
            new[i] = False
            if existing != row.text:
                errors.add(
                    row.line,
                    "output",
                    f"model {row.model} already has a different output for prompt_id {row.prompt_id}",
                )
    return np.flatnonzero(new)


def _insert_prompts(campaign: Campaign, new_prompts: list[PromptRow], stored: dict[str, int]) -> None:
    for batch in batched(new_prompts, BATCH_SIZE):
        created = Prompt.objects.bulk_create(
            Prompt(
                campaign=campaign,
                external_id=p.external_id,
                text=p.text,
                html=render_markdown(p.text),
                reference_answer=p.reference,
                metadata=p.metadata,
                tags=prompt_tags(given=p.tags, user_turns=[p.text]),
            )
            for p in batch
        )
        stored.update((prompt.external_id, prompt.pk) for prompt in created)


def _insert_outputs(parsed: OutputsFile, new_rows: np.ndarray[Any, Any], stored: dict[str, int]) -> None:
    for start in range(0, len(new_rows), BATCH_SIZE):
        numbers = new_rows[start : start + BATCH_SIZE].tolist()  # a Python int per row would cost 50 MB at 1.5M
        Output.objects.bulk_create(
            Output(
                prompt_id=stored[row.prompt_id],
                model_name=row.model,
                text=row.text,
                html=render_markdown(row.text),
                metadata=row.metadata,
                style_features=style_counts(row.text),
            )
            for row in map(parsed.row, numbers)
        )
