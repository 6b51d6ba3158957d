"""Gold answers for existing comparisons: prompt_id, model_a, model_b, gold (model_a / model_b / tie / both_bad)."""

from __future__ import annotations

from dataclasses import dataclass

from annotation.importers.errors import ErrorCollector
from annotation.importers.fields import name_field
from annotation.importers.reading import Progress, Source, read_records
from annotation.importers.summary import ImportSummary
from annotation.importers.writing import check_campaign_accepts_imports, run_atomically
from annotation.models import Campaign, Comparison, Output, Verdict

LABELS = {"model_a", "model_b", "tie", "both_bad"}


@dataclass(frozen=True)
class GoldRow:
    line: int
    prompt_id: str
    model_a: str
    model_b: str
    gold: str


@dataclass
class GoldFile:
    name: str
    rows: list[GoldRow]


def parse_gold(name: str, source: Source, *, progress: Progress | None = None) -> GoldFile:
    """Return the gold answers of a file, or raise ImportRefused listing bad lines."""
    errors = ErrorCollector(name)
    rows: list[GoldRow] = []
    seen: dict[tuple[str, frozenset[str]], int] = {}
    for record in read_records(name, source, errors, progress=progress):
        prompt_id = name_field(record, "prompt_id", errors)
        model_a = name_field(record, "model_a", errors)
        model_b = name_field(record, "model_b", errors)
        gold = record.data.get("gold")
        if gold in (None, ""):
            errors.add(record.line, "gold", "missing field")
        elif not isinstance(gold, str) or gold not in LABELS:
            errors.add(record.line, "gold", f"unknown label {gold!r} (expected {', '.join(sorted(LABELS))})")
        if prompt_id is None or model_a is None or model_b is None or not isinstance(gold, str) or gold not in LABELS:
            continue
        key = (prompt_id, frozenset((model_a, model_b)))
        if key in seen:
            errors.add(record.line, "model_b", f"duplicate row: the same pair as line {seen[key]}")
            continue
        seen[key] = record.line
        rows.append(GoldRow(record.line, prompt_id, model_a, model_b, str(gold)))
    errors.raise_if_any()
    return GoldFile(name, rows)


def import_gold(*, campaign: Campaign, parsed: GoldFile, dry_run: bool = False) -> ImportSummary:
    """Set the gold answer of each listed comparison (which must exist: generate comparisons first)."""
    check_campaign_accepts_imports(campaign)
    return run_atomically(lambda: _write_gold(campaign, parsed), dry_run=dry_run)


def _write_gold(campaign: Campaign, parsed: GoldFile) -> ImportSummary:
    errors = ErrorCollector(parsed.name)
    outputs = {
        (o.prompt.external_id, o.model_name): o
        for o in Output.objects.filter(
            prompt__campaign=campaign, prompt__external_id__in={r.prompt_id for r in parsed.rows}
        ).select_related("prompt")
    }
    comparisons = {
        (c.output_a_id, c.output_b_id): c
        for c in Comparison.objects.filter(
            campaign=campaign, prompt__external_id__in={r.prompt_id for r in parsed.rows}
        )
    }
    changed = []
    for row in parsed.rows:
        a, b = outputs.get((row.prompt_id, row.model_a)), outputs.get((row.prompt_id, row.model_b))
        if a is None or b is None:
            missing = row.model_a if a is None else row.model_b
            errors.add(row.line, "model_a" if a is None else "model_b", f"no output of {missing} for {row.prompt_id}")
            continue
        comparison = comparisons.get((min(a.pk, b.pk), max(a.pk, b.pk)))
        if comparison is None:
            errors.add(row.line, "model_b", f"no comparison of these models for {row.prompt_id}: generate it first")
            continue
        winner = {"model_a": a, "model_b": b}.get(row.gold)
        comparison.gold_verdict = Verdict.WIN if winner else Verdict(row.gold)
        comparison.gold_winner = winner
        changed.append(comparison)
    errors.raise_if_any()
    Comparison.objects.bulk_update(changed, ["gold_verdict", "gold_winner"], batch_size=1000)
    return ImportSummary(
        file=parsed.name,
        records=len(parsed.rows),
        prompts=len({r.prompt_id for r in parsed.rows}),
        comparisons=len(changed),
        created={"gold answers": len(changed)},
    )
