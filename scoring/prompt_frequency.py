"""Chatbot Arena's high-frequency downsampling: cap the votes of over-asked prompts at a percentile of repeats.

A few prompts (a greeting, a viral riddle) are asked thousands of times and would otherwise weigh on the
leaderboard in proportion. Following Chatbot Arena's deduplication (FastChat's ``deduplication.py``, which sets
``dedup_tag.sampled``), every distinct prompt's number of votes is counted, the ``percentile`` quantile of those
counts (linear interpolation, as pandas' ``Series.quantile``) is the cutoff ``c``, and each prompt with more than
``c`` votes keeps a uniformly random ``floor(c)`` of them (at least one); the others keep all theirs.

On Arena battle logs a prompt is identified by the user turns of ``conversation_a``, each followed by a newline,
cut at 10,000 characters (Arena's own identity); a record without a conversation (MT-Bench human judgments) by its
``question_id``. Arena's public logs give every battle its own ``question_id``, so that id alone would see no repeats.
Records are remembered by a 64-bit hash of the identity: memory grows with the battles, not with their texts.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from scoring.battles import BattleCounts, aggregate_codes, outcome_code
from scoring.loaders import BattleFilter, InputError, _array_elements, _filtered_battle, _load_record

DEFAULT_PERCENTILE = 0.999
PROMPT_CHARS = 10_000


@dataclass(frozen=True)
class Downsampling:
    """What the downsampling did: the cutoff, how many prompts were above it and the votes dropped."""

    percentile: float
    cutoff: float
    kept_per_prompt: int
    high_frequency_prompts: int
    prompts: int
    votes_before: int
    votes_dropped: int

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return dict(vars(self))


def high_frequency_keep(
    prompts: NDArray[np.int64], *, percentile: float = DEFAULT_PERCENTILE, rng: np.random.Generator
) -> tuple[NDArray[np.bool_], Downsampling]:
    """Return which votes to keep (one prompt code per vote) and a summary of the downsampling."""
    if not 0.0 < percentile <= 1.0:
        raise ValueError(f"percentile must be in (0, 1], got {percentile!r}")
    n = len(prompts)
    keep = np.ones(n, dtype=bool)
    if not n:
        return keep, Downsampling(percentile, 0.0, 0, 0, 0, 0, 0)
    _, inverse, counts = np.unique(prompts, return_inverse=True, return_counts=True)
    cutoff = float(np.quantile(counts, percentile))
    kept = max(1, math.floor(cutoff))
    high = np.flatnonzero(counts > cutoff)
    if len(high):
        # Random order of the votes, then each high-frequency prompt keeps its first ``kept`` in that order.
        order = rng.permutation(n)
        group = inverse[order]
        sorted_order = order[np.argsort(group, kind="stable")]
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        rank = np.empty(n, dtype=np.int64)
        rank[sorted_order] = np.arange(n) - np.repeat(starts, counts)
        keep = ~(np.isin(inverse, high) & (rank >= kept))
    dropped = int(n - keep.sum())
    return keep, Downsampling(percentile, cutoff, kept, len(high), len(counts), n, dropped)


def prompt_identity(record: dict[str, Any]) -> str:
    """Return a battle record's prompt identity (``conversation_a``'s user turns, else ``question_id``)."""
    conversation = record.get("conversation_a")
    if isinstance(conversation, list):
        turns = []
        for turn in conversation:
            if isinstance(turn, dict) and turn.get("role") == "user":
                content = turn.get("content")
                turns.append(content if isinstance(content, str) else json.dumps(content, sort_keys=True))
        return "c:" + "".join(text + "\n" for text in turns)[:PROMPT_CHARS]
    question = record.get("question_id")
    if isinstance(question, str | int) and not isinstance(question, bool):
        return "q:" + str(question)
    raise ValueError("--downsample-high-freq needs a 'conversation_a' list or a 'question_id' in every battle")


def _prompt_hash(identity: str) -> int:
    """Return a signed 64-bit hash of a prompt identity."""
    digest = hashlib.blake2b(identity.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)


def _records(path: str | Path) -> Iterator[tuple[int, Any]]:
    """Yield (line, record) of a JSON array or JSON Lines battle log."""
    with Path(path).open("rb") as handle:
        head = handle.read(64).lstrip(b" \t\r\n\xef\xbb\xbf")
    if head[:1] == b"[":
        yield from _array_elements(path)
        return
    with Path(path).open("rb") as handle:
        for number, content in enumerate(handle, start=1):
            if content.strip():
                try:
                    yield number, _load_record(content)
                except ValueError as exc:
                    raise InputError(f"line {number}: {exc}") from None


def read_downsampled_counts(
    path: str | Path,
    filters: BattleFilter,
    *,
    percentile: float = DEFAULT_PERCENTILE,
    rng: np.random.Generator,
) -> tuple[BattleCounts, Downsampling]:
    """Read an Arena battle log, filter it, downsample high-frequency prompts and return the counts."""
    names: dict[str, int] = {}
    first, second, outcome, prompts = [], [], [], []
    try:
        for line, record in _records(path):
            try:
                battle = _filtered_battle(record, filters)
                if battle is None:
                    continue
                key = _prompt_hash(prompt_identity(record))
            except ValueError as exc:
                raise InputError(f"line {line}: {exc}") from None
            first.append(names.setdefault(battle[0], len(names)))
            second.append(names.setdefault(battle[1], len(names)))
            outcome.append(outcome_code(battle[2]))
            prompts.append(key)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not prompts:
        raise InputError("no battles pass the filters" if filters.active else "no battles in the file")
    keep, summary = high_frequency_keep(np.array(prompts, dtype=np.int64), percentile=percentile, rng=rng)
    model_names = list(names)
    order = sorted(range(len(model_names)), key=model_names.__getitem__)
    remap = np.empty(len(order), dtype=np.int64)
    remap[order] = np.arange(len(order))
    counts = aggregate_codes(
        [model_names[k] for k in order],
        remap[np.array(first, dtype=np.int64)[keep]],
        remap[np.array(second, dtype=np.int64)[keep]],
        np.array(outcome, dtype=np.int64)[keep],
    )
    return filters.apply(counts), summary
