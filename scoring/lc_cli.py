"""``python -m scoring lc-winrate FILE --baseline NAME``: AlpacaEval's raw and length-controlled win rates.

FILE holds AlpacaEval annotations (a JSON array, as alpaca_eval writes ``annotations.json``, or JSON Lines), each
with ``instruction``, ``output_1``, ``output_2``, ``generator_1``, ``generator_2`` and ``preference`` (1: output_1
wins, 2: output_2 wins, 1.5 or 0: a draw). Annotations whose generators are the baseline and another model count
for that model, either way round; the rest are left out and counted.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from scoring.length_controlled import estimate_difficulty, length_controlled_winrate
from scoring.loaders import InputError, _array_elements, _starts_like_json_array

MAX_MODELS = 10_000
MAX_DIFFICULTIES = 1_000_000


@dataclass
class ModelAnnotations:
    """One model's annotations against the baseline: instruction keys, preferences (2: the model won), lengths."""

    instructions: list[str] = field(default_factory=list)
    preferences: list[float] = field(default_factory=list)
    baseline_lengths: list[int] = field(default_factory=list)
    model_lengths: list[int] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)


def _records(path: str) -> Iterator[tuple[int, Any]]:
    try:
        if _starts_like_json_array(path):
            yield from _array_elements(path)
            return
        with Path(path).open("rb") as handle:
            for number, raw in enumerate(handle, start=1):
                if raw.strip():
                    try:
                        yield number, json.loads(raw)
                    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
                        raise InputError(f"line {number}: invalid JSON ({exc})") from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None


def _text(record: dict[str, Any], key: str, line: int) -> str:
    value = record.get(key)
    if not isinstance(value, str):
        raise InputError(f"line {line}: '{key}' must be a string")
    return value


def _preference(record: dict[str, Any], line: int) -> float:
    value = record.get("preference")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InputError(f"line {line}: 'preference' must be a number in [1, 2] (or 0 for a draw)")
    value = 1.5 if value == 0 else float(value)
    if not 1 <= value <= 2:
        raise InputError(f"line {line}: 'preference' must be a number in [1, 2] (or 0 for a draw), not {value}")
    return value


def read_annotations(path: str, baseline: str) -> tuple[dict[str, ModelAnnotations], int, dict[str, int]]:
    """Return each model's annotations against ``baseline``, the number left out, and instructions' positions."""
    models: dict[str, ModelAnnotations] = defaultdict(ModelAnnotations)
    left_out = 0
    positions: dict[str, int] = {}
    for line, record in _records(path):
        if not isinstance(record, dict):
            raise InputError(f"line {line}: each annotation must be a JSON object")
        instruction = _text(record, "instruction", line)
        g1, g2 = _text(record, "generator_1", line), _text(record, "generator_2", line)
        pref = _preference(record, line)
        out1, out2 = _text(record, "output_1", line), _text(record, "output_2", line)
        position = positions.setdefault(instruction, len(positions))
        if g1 == baseline and g2 != baseline:
            model, base_len, model_len = g2, len(out1), len(out2)
        elif g2 == baseline and g1 != baseline:
            model, base_len, model_len, pref = g1, len(out2), len(out1), 3 - pref
        else:
            left_out += 1
            continue
        if model not in models and len(models) >= MAX_MODELS:
            raise InputError(f"line {line}: more than {MAX_MODELS:,} models")
        entry = models[model]
        entry.instructions.append(instruction)
        entry.preferences.append(pref)
        entry.baseline_lengths.append(base_len)
        entry.model_lengths.append(model_len)
        entry.positions.append(position)
    return dict(models), left_out, positions


def read_difficulty(path: str) -> tuple[bool, dict[str, float]]:
    """Return (keyed by position, difficulties) from a two-column CSV.

    alpaca_eval's ``instruction_difficulty.csv`` (header ``index,instruction_difficulty``) is keyed by the
    instruction's position in the evaluation set, here its order of first appearance in FILE; any other header
    keys the difficulty by the instruction's text.
    """
    values: dict[str, float] = {}
    try:
        with Path(path).open(newline="", encoding="utf-8-sig") as handle:
            rows = csv.reader(handle)
            header = next(rows, None)
            if header is None or len(header) < 2:
                raise InputError(f"{path}: line 1: expected a header of two columns (instruction, difficulty)")
            for number, row in enumerate(rows, start=2):
                if len(values) >= MAX_DIFFICULTIES:
                    raise InputError(f"{path}: more than {MAX_DIFFICULTIES:,} difficulties")
                try:
                    values[row[0]] = float(row[1])
                except (IndexError, ValueError):
                    raise InputError(f"{path}: line {number}: expected an instruction and a number") from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{path}: {exc}") from None
    return header[0].strip() == "index", values


def lc_payload(args: argparse.Namespace) -> dict[str, Any]:
    """Return the JSON payload of ``lc-winrate``: one row per model, best length-controlled win rate first."""
    models, left_out, _ = read_annotations(args.file, args.baseline)
    if not models:
        raise InputError(f"{args.file}: no annotation compares the baseline {args.baseline!r} with another model")
    difficulty = _difficulties(models, args.difficulty)
    results = {
        name: length_controlled_winrate(
            preference=entry.preferences,
            baseline_length=entry.baseline_lengths,
            model_length=entry.model_lengths,
            difficulty=None if difficulty is None else difficulty[name],
        )
        for name, entry in models.items()
    }
    order = sorted(results, key=lambda name: -np.nan_to_num(results[name].length_controlled_winrate, nan=-1.0))
    rows = [
        {"model": name, **results[name].as_dict(), "avg_length": float(np.mean(models[name].model_lengths))}
        for name in order
    ]
    return {
        "baseline": args.baseline,
        "difficulty": args.difficulty if args.difficulty in ("auto", "none") else "file",
        "left_out": left_out,
        "models": rows,
    }


def _difficulties(models: dict[str, ModelAnnotations], option: str) -> dict[str, list[float]] | None:
    if option == "none":
        return None
    if option == "auto":
        names = list(models)
        instructions = [key for name in names for key in models[name].instructions]
        preferences = [pref for name in names for pref in models[name].preferences]
        flat = estimate_difficulty(instructions, preferences)
        out, start = {}, 0
        for name in names:
            size = len(models[name].instructions)
            out[name] = flat[start : start + size].tolist()
            start += size
        return out
    by_position, values = read_difficulty(option)
    out = {}
    for name, entry in models.items():
        keys = [str(p) for p in entry.positions] if by_position else entry.instructions
        missing = next((key for key in keys if key not in values), None)
        if missing is not None:
            what = f"position {missing}" if by_position else f"instruction {missing[:60]!r}"
            raise InputError(f"{option}: no difficulty for {what}")
        out[name] = [values[key] for key in keys]
    return out


def lc_table(payload: dict[str, Any]) -> str:
    """Return the payload as alpaca_eval's leaderboard table."""
    width = max([len(row["model"]) for row in payload["models"]] + [5])
    head = (
        f"{'model':<{width}}  {'LC win rate':>11}  {'LC se':>6}  {'win rate':>8}  {'se':>5}  {'n':>6}  {'avg len':>8}"
    )
    lines = [head, "-" * len(head)]
    for row in payload["models"]:
        lc, lc_se = row["length_controlled_winrate"], row["lc_standard_error"]
        lines.append(
            f"{row['model']:<{width}}  {lc:11.2f}  {lc_se:6.2f}  {row['win_rate']:8.2f}  "
            f"{row['standard_error']:5.2f}  {row['n_total']:>6}  {row['avg_length']:8.0f}"
        )
    lines.append(f"baseline {payload['baseline']}, difficulty {payload['difficulty']}, left out {payload['left_out']}")
    return "\n".join(lines)
