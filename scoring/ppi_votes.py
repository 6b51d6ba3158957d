"""Votes of humans and LLM judges read from a battle log and paired by comparison for ``rank --combine ppi``.

Each record is an Arena battle (``model_a``, ``model_b``, ``winner``) plus ``question_id``, ``judge`` (the rater's
name) and ``rater_kind`` (``human`` or ``llm``). Votes on the same ``question_id`` and model pair (in either order)
are one comparison; its score is the mean of its votes for the alphabetically first model (1 win, 0 loss, 0.5 a
tie). Comparisons with human and judge votes are labelled, those with judge votes only unlabelled, those with human
votes only are counted and left out (the correction needs the judge's verdict beside the humans').
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scoring.battles import MODEL_A, MODEL_B, OUTCOMES
from scoring.loaders import InputError
from scoring.ppi import Labelled, Unlabelled

RATER_KINDS = ("human", "llm")


@dataclass(frozen=True)
class PairedVotes:
    """Comparisons ready for ``ppi_bradley_terry`` and what was read."""

    labelled: list[Labelled]
    unlabelled: list[Unlabelled]
    human_only: int
    human_votes: int
    judge_votes: int
    judges: list[str]


def _records(path: str | Path) -> Iterator[tuple[int, Any]]:
    """Yield (line or record number, record) from a JSON array or JSON Lines file."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        if data.lstrip()[:1] == b"[":
            try:
                records = json.loads(data)
            except json.JSONDecodeError as exc:
                raise InputError(f"line {exc.lineno}: invalid JSON ({exc.msg})") from None
            yield from enumerate(records, start=1)
            return
        for number, line in enumerate(data.split(b"\n"), start=1):
            if line.strip():
                try:
                    yield number, json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InputError(f"line {number}: invalid JSON ({exc.msg})") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"invalid UTF-8 ({exc.reason})") from None


def _vote(record: Any) -> tuple[Any, str, str, float, str, str]:
    """Return (question_id, first model, second model, score of the first, rater kind, rater) of one record."""
    if not isinstance(record, dict):
        raise ValueError("expected a JSON object")
    for name in ("question_id", "model_a", "model_b", "winner", "judge", "rater_kind"):
        if name not in record:
            raise ValueError(f"missing field {name!r} (read by --combine ppi)")
    model_a, model_b, winner, kind = record["model_a"], record["model_b"], record["winner"], record["rater_kind"]
    if not isinstance(model_a, str) or not isinstance(model_b, str):
        raise ValueError("model names must be strings")
    if model_a == model_b:
        raise ValueError(f"battle of model {model_a!r} against itself")
    if winner not in OUTCOMES:
        raise ValueError(f"unknown winner {winner!r} (expected one of {', '.join(OUTCOMES)})")
    if kind not in RATER_KINDS:
        raise ValueError(f"rater_kind must be 'human' or 'llm', got {kind!r}")
    question = record["question_id"]
    if not isinstance(question, str | int) or isinstance(question, bool):
        raise ValueError("question_id must be a string or an integer")
    score_a = 1.0 if winner == MODEL_A else 0.0 if winner == MODEL_B else 0.5
    first, second = sorted((model_a, model_b))
    score = score_a if first == model_a else 1.0 - score_a
    return question, first, second, score, kind, str(record["judge"])


def read_paired_votes(path: str | Path, *, judges: Collection[str] = ()) -> PairedVotes:
    """Read a vote log and pair human and judge votes by comparison; ``judges`` keeps only these LLM raters."""
    scores: dict[tuple[Any, str, str], tuple[list[float], list[float]]] = {}
    names: set[str] = set()
    counts = {"human": 0, "llm": 0}
    for number, record in _records(path):
        try:
            question, first, second, score, kind, rater = _vote(record)
        except ValueError as exc:
            raise InputError(f"line {number}: {exc}") from None
        if kind == "llm":
            if judges and rater not in judges:
                continue
            names.add(rater)
        counts[kind] += 1
        human, judge = scores.setdefault((question, first, second), ([], []))
        (human if kind == "human" else judge).append(score)
    if not counts["human"] + counts["llm"]:
        raise InputError("no votes in the file" + (" by the judges named with --judge" if judges else ""))
    labelled: list[Labelled] = []
    unlabelled: list[Unlabelled] = []
    human_only = 0
    for (_, first, second), (human, judge) in scores.items():
        if not judge:
            human_only += 1
        elif human:
            labelled.append((first, second, sum(human) / len(human), sum(judge) / len(judge)))
        else:
            unlabelled.append((first, second, sum(judge) / len(judge)))
    return PairedVotes(labelled, unlabelled, human_only, counts["human"], counts["llm"], sorted(names))
