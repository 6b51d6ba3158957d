"""Synthetic Chatbot Arena battle logs in the shape of FastChat's ``clean_battle`` files, for benchmarks and tests.

``write_realistic`` writes what a public Arena log looks like: every key of a ``clean_battle`` record
(``question_id``, ``model_a``, ``model_b``, ``winner``, ``judge``, ``turn``, ``anony``, ``language``, ``tstamp``,
``conv_metadata`` with the token, header, list and bold counts of both answers, ``is_code``, ``is_refusal``,
``dedup_tag``, ``category_tag`` with the criteria/if/math/creative-writing tags, and for a share of the records
``conversation_a``/``conversation_b`` with texts that need escapes), long-tailed model popularity (weights
of 1 / (1 + (rank / 8)^3) among 150 models: in a million battles the top models get about 2 x 10^5 votes,
the tail a few tens, and most pairs meet under 10 times), a time order and about 10% ties. ``write_uniform`` is the old
three-key shape with uniformly chosen pairs. Both write JSON Lines or a JSON array (``json.dump(..., indent=...)``
style, as FastChat's ``clean_battle_data.py`` writes it).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

OUTCOME_LABELS = ("model_a", "model_b", "tie", "tie (bothbad)")
LANGUAGES = ("English", "Chinese", "Russian", "German", "Japanese", "Spanish", "French", "unknown")
LANGUAGE_WEIGHTS = (0.62, 0.12, 0.07, 0.04, 0.04, 0.04, 0.03, 0.04)
CRITERIA = (
    "specificity",
    "domain_knowledge",
    "complexity",
    "problem_solving",
    "creativity",
    "technical_accuracy",
    "real_world",
)
TEXTS = (
    'Here is a function:\n```python\ndef f(x):\n    return "a\\tb" * x\n```\n',
    "Sure! Let me explain the steps:\n1. **First**, read the file.\n2. __Then__ parse it.\n",
    "\u4f60\u597d\uff0c\u8fd9\u662f\u4e00\u4e2a\u56de\u7b54\u3002 \u00e9\u00e8 \U0001f600\n",
    "I can't help with that request.",
)


def model_names(n_models: int) -> list[str]:
    """Return model names in the style of the Arena's (distinct, with dashes, dots and versions)."""
    stems = (
        "gpt-4o",
        "claude-3-5-sonnet",
        "gemini-1.5-pro",
        "llama-3.1-405b-instruct",
        "qwen2.5-72b-instruct",
        "mistral-large",
        "deepseek-v2.5",
        "yi-lightning",
        "command-r-plus",
        "gemma-2-27b-it",
    )
    return [f"{stems[k % len(stems)]}-{2023 + k % 3}{k % 12 + 1:02d}{k:02d}" for k in range(n_models)]


def popularity(n_models: int, skew: float) -> np.ndarray:
    """Return each model's share of the votes: a head of about 8 models, then a tail falling as 1/rank^skew."""
    weights = 1.0 / (1.0 + (np.arange(n_models) / 8.0) ** skew)
    return np.asarray(weights / weights.sum())


def _pairs(rng: np.random.Generator, n: int, n_models: int, skew: float) -> tuple[np.ndarray, np.ndarray]:
    """Draw n ordered pairs of distinct models, each side by popularity (see ``popularity``)."""
    weights = popularity(n_models, skew)
    a = rng.choice(n_models, size=n, p=weights)
    b = rng.choice(n_models, size=n, p=weights)
    same = a == b
    while same.any():
        b[same] = rng.choice(n_models, size=int(same.sum()), p=weights)
        same = a == b
    return a, b


def _outcomes(rng: np.random.Generator, strength: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Draw Bradley-Terry outcomes (about 10% ties, a third of them 'tie (bothbad)')."""
    p_a = 1.0 / (1.0 + np.exp(strength[b] - strength[a]))
    u = rng.random(len(a))
    out = np.where(u < 0.9 * p_a, 0, 1)
    tie = rng.random(len(a)) < 0.1
    out[tie] = np.where(rng.random(int(tie.sum())) < 0.33, 3, 2)
    return out


def _record(
    rng: np.random.Generator, k: int, a: str, b: str, winner: str, tstamp: float, conversations: bool
) -> dict[str, Any]:
    """Return one clean_battle record with every key FastChat writes."""
    ints = rng.integers(0, 1000, size=20).tolist()
    flags = (rng.random(20) < 0.3).tolist()
    record: dict[str, Any] = {
        "question_id": f"{ints[0]:04x}{k:012x}{ints[1]:04x}{ints[2]:012x}",
        "model_a": a,
        "model_b": b,
        "winner": winner,
        "judge": f"arena_user_{ints[3] * 7919 + k % 97:x}",
        "turn": 1 + ints[4] % 3 // 2,
        "anony": ints[5] % 10 < 8,
        "language": LANGUAGES[int(rng.choice(len(LANGUAGES), p=LANGUAGE_WEIGHTS))],
        "tstamp": round(tstamp, 4),
        "conv_metadata": {
            "sum_user_tokens": ints[6] // 4 + 3,
            "sum_assistant_a_tokens": ints[7] + 12,
            "sum_assistant_b_tokens": ints[8] + 9,
            "context_a_tokens": ints[9] // 3 + 5,
            "context_b_tokens": ints[9] // 3 + 5,
            "turns": 1 + ints[4] % 3 // 2,
            "header_count_a": {f"h{i}": ints[10 + i] % 4 if i < 3 else 0 for i in range(1, 7)},
            "list_count_a": {"ordered": ints[14] % 6, "unordered": ints[15] % 7},
            "bold_count_a": {"**": ints[16] % 9, "__": 0},
            "header_count_b": {f"h{i}": ints[11 + i] % 3 if i < 3 else 0 for i in range(1, 7)},
            "list_count_b": {"ordered": ints[17] % 5, "unordered": ints[18] % 8},
            "bold_count_b": {"**": ints[19] % 7, "__": ints[0] % 2},
        },
        "is_code": flags[0],
        "is_refusal": flags[1] and flags[2],
        "dedup_tag": {"high_freq": flags[3] and flags[4], "sampled": not (flags[3] and flags[5])},
        "category_tag": {
            "criteria_v0.1": {name: flags[6 + i] for i, name in enumerate(CRITERIA)},
            "if_v0.1": {"if": flags[13], "score": ints[1] % 6},
            "math_v0.1": {"math": flags[14] and flags[15]},
            "creative_writing_v0.1": {"creative_writing": flags[16], "score": "no"},
        },
    }
    if conversations:
        question = TEXTS[ints[2] % len(TEXTS)] * (1 + ints[3] % 4)
        for side, extra in (("a", ints[7]), ("b", ints[8])):
            answer = TEXTS[extra % len(TEXTS)] * (1 + extra % 12)
            record[f"conversation_{side}"] = [
                {"role": "user", "content": question},
                {"role": "assistant", "content": answer},
            ]
    return record


def write_realistic(
    path: Path,
    n_battles: int,
    n_models: int = 150,
    seed: int = 0,
    array: bool = False,
    conversation_share: float = 0.05,
) -> None:
    """Write an Arena-shaped log (see the module docstring); JSON Lines, or a JSON array with ``array``."""
    rng = np.random.default_rng(seed)
    names = model_names(n_models)
    strength = rng.normal(0.0, 1.0, n_models)
    block = 50_000
    with path.open("w", encoding="utf-8") as out:
        if array:
            out.write("[\n")
        written = 0
        for start in range(0, n_battles, block):
            n = min(block, n_battles - start)
            a, b = _pairs(rng, n, n_models, 3.0)
            outcome = _outcomes(rng, strength, a, b)
            talk = rng.random(n) < conversation_share
            pieces = []
            for k in range(n):
                record = _record(
                    rng,
                    start + k,
                    names[a[k]],
                    names[b[k]],
                    OUTCOME_LABELS[outcome[k]],
                    1_682_000_000.0 + 45.0 * (start + k),
                    bool(talk[k]),
                )
                if array:
                    text = json.dumps(record, indent=1, ensure_ascii=False)
                    pieces.append(("  " if written + k == 0 else ",\n  ") + text.replace("\n", "\n  "))
                else:
                    pieces.append(json.dumps(record, ensure_ascii=False) + "\n")
            out.write("".join(pieces))
            written += n
        if array:
            out.write("\n]\n")


def write_uniform(path: Path, n_battles: int, n_models: int = 100, seed: int = 0, array: bool = False) -> None:
    """Write the old benchmark shape: three keys, pairs chosen uniformly, about 10% ties."""
    rng = np.random.default_rng(seed)
    names = [f"model-{i:03d}" for i in range(n_models)]
    strength = rng.normal(0.0, 1.0, n_models)
    with path.open("w") as out:
        if array:
            out.write("[")
        for start in range(0, n_battles, 100_000):
            n = min(100_000, n_battles - start)
            a, b = _pairs(rng, n, n_models, 0.0)
            outcome = _outcomes(rng, strength, a, b)
            lines = [
                f'{{"model_a": "{names[x]}", "model_b": "{names[y]}", "winner": "{OUTCOME_LABELS[w]}"}}'
                for x, y, w in zip(a.tolist(), b.tolist(), outcome.tolist(), strict=True)
            ]
            if array:
                out.write(("" if start == 0 else ",\n") + ",\n".join(lines))
            else:
                out.write("\n".join(lines) + "\n")
        if array:
            out.write("]\n")
