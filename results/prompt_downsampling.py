"""Chatbot Arena's high-frequency downsampling on a campaign: the selected ratings per prompt, capped.

A campaign's prompt is its ``Prompt`` row (every comparison of one prompt shares it). The ratings of the selected
raters are counted per prompt, shown models and outcome in one SQL aggregation, expanded to one code per rating,
and ``scoring.prompt_frequency.high_frequency_keep`` keeps a seeded random ``floor(c)`` of the ratings of every
prompt rated more than ``c`` times, ``c`` the 99.9th percentile of the prompts' rating counts.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from annotation.models import Campaign
from results.raters import RaterSelection
from results.selectors import A_LEFT_SQL, OUTPUT_JOINS, VALUE_SQL, arena_battle, fetch_all, ratings_from
from scoring.battles import OUTCOMES, BattleCounts, aggregate_codes
from scoring.prompt_frequency import DEFAULT_PERCENTILE, Downsampling, high_frequency_keep


def downsampled_counts(
    campaign: Campaign, selection: RaterSelection, *, seed: int = 0, percentile: float = DEFAULT_PERCENTILE
) -> tuple[BattleCounts, Downsampling] | None:
    """Return the selected battles between named models after downsampling, or None when there are none."""
    source, params = ratings_from(campaign, selection, joins=OUTPUT_JOINS, rater=False)
    rows = fetch_all(
        f"""SELECT c.prompt_id, xa.model_name, xb.model_name, {A_LEFT_SQL} AS a_left, {VALUE_SQL} AS value, count(*)
            {source} AND xa.model_name IS NOT NULL AND xb.model_name IS NOT NULL GROUP BY 1, 2, 3, 4, 5""",
        params,
    )
    if not rows:
        return None
    names: dict[str, int] = {}
    prompt, first, second, outcome, n = [], [], [], [], []
    codes = {label: code for code, label in enumerate(OUTCOMES)}
    for prompt_id, model_a, model_b, a_left, value, count in rows:
        left, right, winner = arena_battle(model_a, model_b, a_left, value)
        prompt.append(prompt_id)
        first.append(names.setdefault(str(left), len(names)))  # named models only (the SQL's condition)
        second.append(names.setdefault(str(right), len(names)))
        outcome.append(codes[winner])
        n.append(count)
    repeats = np.array(n, dtype=np.int64)
    keep, summary = high_frequency_keep(
        np.repeat(np.array(prompt, dtype=np.int64), repeats), percentile=percentile, rng=np.random.default_rng(seed)
    )
    ordered = sorted(names, key=str)
    remap = np.array([ordered.index(name) for name in names], dtype=np.int64)
    counts = aggregate_codes(
        ordered,
        np.repeat(remap[np.array(first)], repeats)[keep],
        np.repeat(remap[np.array(second)], repeats)[keep],
        np.repeat(np.array(outcome, dtype=np.int64), repeats)[keep],
    )
    return counts, summary


def hygiene_lines(board: dict[str, Any]) -> list[str]:
    """Return the text table's lines on vote influence and downsampling (none when neither was asked for)."""
    lines = []
    for pair in board.get("influence", []):
        votes = pair["n_votes_to_flip"]
        said = "more than the search cap" if votes is None else f"{votes} votes ({100 * pair['share']:.2f}%)"
        marker = "  FRAGILE" if pair["fragile"] else ""
        lines.append(f"swap {pair['upper']} / {pair['lower']}: {said}{marker}")
    down = board.get("downsampling")
    if down:
        lines.append(
            f"downsampled: {down['high_frequency_prompts']} of {down['prompts']} prompts rated more than "
            f"{down['cutoff']:.1f} times (the {100 * down['percentile']:g}th percentile) kept "
            f"{down['kept_per_prompt']} ratings each; {down['votes_dropped']} of {down['votes_before']} ratings "
            "left out"
        )
    return lines
