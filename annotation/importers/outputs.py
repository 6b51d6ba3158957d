"""Prompts and model outputs: long format (a row per prompt, model and output) or wide (a column per model)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from annotation.importers.errors import ErrorCollector
from annotation.importers.fields import extras, name_field, text_field
from annotation.importers.reading import Progress, Record, Source, read_records
from annotation.importers.summary import ImportSummary
from annotation.importers.writing import BATCH_SIZE, batched, check_campaign_accepts_imports, run_atomically
from annotation.models import Campaign, Output, Prompt
from annotation.rendering import render_markdown

WIDE_PREFIX = "output:"
LONG_FIELDS = {"prompt_id", "prompt", "model", "output", "reference"}
PROMPT_FIELDS = {"prompt_id", "prompt", "reference"}


@dataclass(frozen=True, slots=True)
class PromptRow:
    line: int
    external_id: str
    text: str
    reference: str
    metadata: dict[str, Any]


@dataclass(frozen=True, slots=True)
class OutputRow:
    line: int
    prompt_id: str
    model: str
    text: str
    metadata: dict[str, Any]


@dataclass
class OutputsFile:
    """A validated file of prompts and outputs."""

    name: str
    layout: str
    prompts: dict[str, PromptRow] = field(default_factory=dict)
    outputs: list[OutputRow] = field(default_factory=list)

    @property
    def models(self) -> set[str]:
        return {row.model for row in self.outputs}


def parse_outputs(name: str, source: Source, *, progress: Progress | None = None) -> OutputsFile:
    """Return the prompts and outputs of a JSONL, JSON or CSV file, or raise ImportRefused listing bad lines.

    The layout is the first record's: wide when it has an `output:<model>` column, else long.
    """
    errors = ErrorCollector(name)
    parsed: OutputsFile | None = None
    seen: dict[tuple[str, str], int] = {}
    models: dict[str, str] = {}
    for record in read_records(name, source, errors, progress=progress):
        if parsed is None:
            wide = any(key.startswith(WIDE_PREFIX) for key in record.data)
            parsed = OutputsFile(name=name, layout="wide" if wide else "long")
        prompt = _prompt_row(record, errors, wide=parsed.layout == "wide")
        rows = _wide_outputs(record, errors) if parsed.layout == "wide" else _long_output(record, errors)
        if prompt is None:
            continue
        prompt_id = _add_prompt(parsed, prompt, errors)
        for row in rows:
            model = models.setdefault(row.model, row.model)  # one string per model name, however many rows
            key = (prompt_id, model)
            if key in seen:
                errors.add(
                    row.line, "model", f"duplicate row: prompt {prompt_id} and model {model} as on line {seen[key]}"
                )
                continue
            seen[key] = row.line
            parsed.outputs.append(OutputRow(row.line, prompt_id, model, row.text, row.metadata))
    errors.raise_if_any()
    assert parsed is not None  # a file without records was refused above
    return parsed


def _prompt_row(record: Record, errors: ErrorCollector, *, wide: bool) -> PromptRow | None:
    external_id = name_field(record, "prompt_id", errors)
    text = text_field(record, "prompt", errors)
    reference = text_field(record, "reference", errors, required=False) or ""
    if external_id is None or text is None:
        return None
    metadata = extras(record, PROMPT_FIELDS) if wide else {}
    metadata = {key: value for key, value in metadata.items() if not key.startswith(WIDE_PREFIX)}
    return PromptRow(record.line, external_id, text, reference, metadata)


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
    first = parsed.prompts.setdefault(prompt.external_id, prompt)
    if first is prompt:
        return first.external_id
    if first.text != prompt.text:
        errors.add(prompt.line, "prompt", f"conflicting text for prompt_id {prompt.external_id} (line {first.line})")
    if prompt.reference and first.reference != prompt.reference:
        errors.add(
            prompt.line, "reference", f"conflicting reference for prompt_id {prompt.external_id} (line {first.line})"
        )
    return first.external_id


def import_outputs(*, campaign: Campaign, parsed: OutputsFile, dry_run: bool = False) -> ImportSummary:
    """Add the file's prompts and outputs to the campaign; rows already stored identically are kept as they are.

    Refuses (writing nothing) when a stored prompt or output with the same id differs from the file.
    """
    check_campaign_accepts_imports(campaign)
    return run_atomically(lambda: _write_outputs(campaign, parsed, render=not dry_run), dry_run=dry_run)


def _write_outputs(campaign: Campaign, parsed: OutputsFile, *, render: bool) -> ImportSummary:
    errors = ErrorCollector(parsed.name)
    stored = _stored_prompts(campaign, parsed, errors)
    stored_outputs = _stored_outputs(stored, parsed)
    new_outputs = _new_outputs(parsed, stored_outputs, errors)
    errors.raise_if_any()
    # A dry run is rolled back: it checks every constraint but does not spend time rendering markdown.
    html = render_markdown if render else _no_html
    new_prompts = [p for p in parsed.prompts.values() if p.external_id not in stored]
    for batch in batched(new_prompts, BATCH_SIZE):
        created = Prompt.objects.bulk_create(
            Prompt(
                campaign=campaign,
                external_id=p.external_id,
                text=p.text,
                html=html(p.text),
                reference_answer=p.reference,
                metadata=p.metadata,
            )
            for p in batch
        )
        stored.update((prompt.external_id, prompt.pk) for prompt in created)
    for rows in batched(new_outputs, BATCH_SIZE):
        Output.objects.bulk_create(
            Output(
                prompt_id=stored[r.prompt_id], model_name=r.model, text=r.text, html=html(r.text), metadata=r.metadata
            )
            for r in rows
        )
    return ImportSummary(
        file=parsed.name,
        records=len({row.line for row in parsed.outputs}),
        prompts=len(parsed.prompts),
        models=len(parsed.models),
        outputs=len(parsed.outputs),
        created={"prompts": len(new_prompts), "outputs": len(new_outputs)},
    )


def _no_html(text: str) -> str:
    return ""


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


def _stored_outputs(stored: dict[str, int], parsed: OutputsFile) -> dict[tuple[str, str], str]:
    """Return the text of each stored output of the file's prompts and models, by (prompt id, model)."""
    external_ids = {pk: external_id for external_id, pk in stored.items()}
    texts: dict[tuple[str, str], str] = {}
    for pks in batched(external_ids, BATCH_SIZE):
        rows = Output.objects.filter(prompt_id__in=pks, model_name__in=parsed.models).values_list(
            "prompt_id", "model_name", "text"
        )
        texts.update(((external_ids[pk], model or ""), text) for pk, model, text in rows)
    return texts


def _check_stored_prompt(row: PromptRow, text: str, reference: str, errors: ErrorCollector) -> None:
    if text != row.text:
        errors.add(row.line, "prompt", f"prompt_id {row.external_id} is already stored with a different text")
    elif row.reference and reference != row.reference:
        errors.add(row.line, "reference", f"prompt_id {row.external_id} is already stored with a different reference")


def _new_outputs(parsed: OutputsFile, stored: dict[tuple[str, str], str], errors: ErrorCollector) -> list[OutputRow]:
    new = []
    for row in parsed.outputs:
        existing = stored.get((row.prompt_id, row.model))
        if existing is None:
            new.append(row)
        elif existing != row.text:
            errors.add(
                row.line, "output", f"model {row.model} already has a different output for prompt_id {row.prompt_id}"
            )
    return new
