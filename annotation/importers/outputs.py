"""Prompts and model outputs: long format (a row per prompt, model and output) or wide (a column per model)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from annotation.importers.errors import ErrorCollector
from annotation.importers.fields import extras, name_field, text_field
from annotation.importers.reading import Record, read_records
from annotation.importers.summary import ImportSummary
from annotation.importers.writing import BATCH_SIZE, check_campaign_accepts_imports, run_atomically
from annotation.models import Campaign, Output, Prompt
from annotation.rendering import render_markdown

WIDE_PREFIX = "output:"
LONG_FIELDS = {"prompt_id", "prompt", "model", "output", "reference"}
PROMPT_FIELDS = {"prompt_id", "prompt", "reference"}


@dataclass(frozen=True)
class PromptRow:
    line: int
    external_id: str
    text: str
    reference: str
    metadata: dict[str, Any]


@dataclass(frozen=True)
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


def parse_outputs(name: str, data: bytes) -> OutputsFile:
    """Return the prompts and outputs of a JSONL, JSON or CSV file, or raise ImportRefused listing bad lines."""
    errors = ErrorCollector(name)
    records = read_records(name, data, errors)
    layout = "wide" if any(key.startswith(WIDE_PREFIX) for r in records for key in r.data) else "long"
    parsed = OutputsFile(name=name, layout=layout)
    seen: dict[tuple[str, str], int] = {}
    for record in records:
        prompt = _prompt_row(record, errors, wide=layout == "wide")
        rows = _wide_outputs(record, errors) if layout == "wide" else _long_output(record, errors)
        if prompt is None:
            continue
        _add_prompt(parsed, prompt, errors)
        for row in rows:
            key = (prompt.external_id, row.model)
            if key in seen:
                errors.add(
                    row.line, "model", f"duplicate row: prompt {key[0]} and model {key[1]} as on line {seen[key]}"
                )
                continue
            seen[key] = row.line
            parsed.outputs.append(OutputRow(row.line, prompt.external_id, row.model, row.text, row.metadata))
    errors.raise_if_any()
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


def _add_prompt(parsed: OutputsFile, prompt: PromptRow, errors: ErrorCollector) -> None:
    first = parsed.prompts.setdefault(prompt.external_id, prompt)
    if first is prompt:
        return
    if first.text != prompt.text:
        errors.add(prompt.line, "prompt", f"conflicting text for prompt_id {prompt.external_id} (line {first.line})")
    if prompt.reference and first.reference != prompt.reference:
        errors.add(
            prompt.line, "reference", f"conflicting reference for prompt_id {prompt.external_id} (line {first.line})"
        )


def import_outputs(*, campaign: Campaign, parsed: OutputsFile, dry_run: bool = False) -> ImportSummary:
    """Add the file's prompts and outputs to the campaign; rows already stored identically are kept as they are.

    Refuses (writing nothing) when a stored prompt or output with the same id differs from the file.
    """
    check_campaign_accepts_imports(campaign)
    return run_atomically(lambda: _write_outputs(campaign, parsed), dry_run=dry_run)


def _write_outputs(campaign: Campaign, parsed: OutputsFile) -> ImportSummary:
    errors = ErrorCollector(parsed.name)
    stored = {
        p.external_id: p
        for p in Prompt.objects.select_for_update().filter(campaign=campaign, external_id__in=list(parsed.prompts))
    }
    _check_stored_prompts(parsed, stored, errors)
    stored_outputs = {
        (o.prompt.external_id, o.model_name or ""): o
        for o in Output.objects.filter(prompt__in=list(stored.values()), model_name__in=parsed.models).select_related(
            "prompt"
        )
    }
    new_outputs = _new_outputs(parsed, stored_outputs, errors)
    errors.raise_if_any()
    new_prompts = [
        Prompt(
            campaign=campaign,
            external_id=p.external_id,
            text=p.text,
            html=render_markdown(p.text),
            reference_answer=p.reference,
            metadata=p.metadata,
        )
        for p in parsed.prompts.values()
        if p.external_id not in stored
    ]
    for prompt in Prompt.objects.bulk_create(new_prompts, batch_size=BATCH_SIZE):
        stored[prompt.external_id] = prompt
    Output.objects.bulk_create(
        [
            Output(
                prompt=stored[r.prompt_id],
                model_name=r.model,
                text=r.text,
                html=render_markdown(r.text),
                metadata=r.metadata,
            )
            for r in new_outputs
        ],
        batch_size=BATCH_SIZE,
    )
    return ImportSummary(
        file=parsed.name,
        records=len({row.line for row in parsed.outputs}),
        prompts=len(parsed.prompts),
        models=len(parsed.models),
        outputs=len(parsed.outputs),
        created={"prompts": len(new_prompts), "outputs": len(new_outputs)},
    )


def _check_stored_prompts(parsed: OutputsFile, stored: dict[str, Prompt], errors: ErrorCollector) -> None:
    for external_id, prompt in stored.items():
        row = parsed.prompts[external_id]
        if prompt.text != row.text:
            errors.add(row.line, "prompt", f"prompt_id {external_id} is already stored with a different text")
        elif row.reference and prompt.reference_answer != row.reference:
            errors.add(row.line, "reference", f"prompt_id {external_id} is already stored with a different reference")


def _new_outputs(parsed: OutputsFile, stored: dict[tuple[str, str], Output], errors: ErrorCollector) -> list[OutputRow]:
    new = []
    for row in parsed.outputs:
        existing = stored.get((row.prompt_id, row.model))
        if existing is None:
            new.append(row)
        elif existing.text != row.text:
            errors.add(
                row.line, "output", f"model {row.model} already has a different output for prompt_id {row.prompt_id}"
            )
    return new
