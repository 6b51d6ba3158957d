"""AlpacaEval 2's length-controlled win rates of a campaign's models against a baseline model.

Every selected rating of a comparison between the baseline's output and another model's is one annotation of
that model (AlpacaEval's preference: 1 the baseline won, 2 the model, 1.5 a tie or both bad); the lengths are the
outputs' lengths in characters, as alpaca_eval measures them. The statistics are ``scoring.length_controlled``;
the instruction difficulty is estimated from the campaign's prompts (``difficulty="auto"``) or left out.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from annotation.models import Campaign
from evalplatform.exceptions import DomainError
from results.leaderboards import cache_key, cached
from results.rater_mix import rater_mix
from results.raters import RaterSelection
from results.selectors import OUTPUT_JOINS, ratings_from, ratings_version, stream_rows
from scoring.length_controlled import MAX_ANNOTATIONS, estimate_difficulty, length_controlled_winrate

DIFFICULTIES = ("auto", "none")


def _annotations_sql(campaign: Campaign, selection: RaterSelection, baseline: str) -> tuple[str, list[Any]]:
    source, params = ratings_from(campaign, selection, joins=OUTPUT_JOINS, rater=False)
    base_is_a = "(xa.model_name = %s)"
    sql = f"""
        SELECT c.prompt_id,
               CASE WHEN {base_is_a} THEN xb.model_name ELSE xa.model_name END,
               char_length(CASE WHEN {base_is_a} THEN xa.text ELSE xb.text END),
               char_length(CASE WHEN {base_is_a} THEN xb.text ELSE xa.text END),
               CASE WHEN r.verdict <> 'win' THEN 1.5::float8
                    WHEN r.winner_id = (CASE WHEN {base_is_a} THEN c.output_a_id ELSE c.output_b_id END)
                    THEN 1.0::float8 ELSE 2.0::float8 END
        {source}
          AND (xa.model_name = %s OR xb.model_name = %s)
          AND xa.model_name IS NOT NULL AND xb.model_name IS NOT NULL
        ORDER BY r.id"""
    return sql, [baseline] * 4 + params + [baseline, baseline]


def _read(campaign: Campaign, selection: RaterSelection, baseline: str) -> dict[str, list[tuple[Any, ...]]]:
    sql, params = _annotations_sql(campaign, selection, baseline)
    by_model: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    total = 0
    for rows in stream_rows(sql, params):
        total += len(rows)
        if total > MAX_ANNOTATIONS:
            raise DomainError(f"more than {MAX_ANNOTATIONS:,} ratings against the baseline", field="baseline")
        for prompt, model, base_len, model_len, preference in rows:
            by_model[model].append((prompt, base_len, model_len, preference))
    return by_model


def campaign_lc_winrates(
    campaign: Campaign, selection: RaterSelection, *, baseline: str, difficulty: str = "auto"
) -> dict[str, Any]:
    """Return each model's raw and length-controlled win rate against ``baseline``, best LC win rate first."""
    if difficulty not in DIFFICULTIES:
        raise DomainError(f"difficulty must be one of {', '.join(DIFFICULTIES)}", field="difficulty")
    if not campaign.prompts.filter(outputs__model_name=baseline).exists():
        raise DomainError(f"no output of a model named {baseline!r} in this campaign", field="baseline")
    key = cache_key("lc", campaign.pk, selection.key, baseline, difficulty, ratings_version().key)
    return dict(cached(key, lambda: _compute(campaign, selection, baseline, difficulty)))


def _compute(campaign: Campaign, selection: RaterSelection, baseline: str, difficulty: str) -> dict[str, Any]:
    by_model = _read(campaign, selection, baseline)
    names = sorted(by_model)
    columns = {name: np.array(by_model[name], dtype=np.float64).reshape(-1, 4) for name in names}
    per_model: dict[str, Any] = dict.fromkeys(names)
    if difficulty == "auto" and names:
        stacked = np.vstack([columns[name] for name in names])
        flat = estimate_difficulty(stacked[:, 0].astype(np.int64), stacked[:, 3])
        start = 0
        for name in names:
            per_model[name] = flat[start : start + len(columns[name])]
            start += len(columns[name])
    results = {
        name: length_controlled_winrate(
            preference=columns[name][:, 3],
            baseline_length=columns[name][:, 1],
            model_length=columns[name][:, 2],
            difficulty=per_model[name],
        )
        for name in names
    }
    order = sorted(names, key=lambda name: -float(np.nan_to_num(results[name].length_controlled_winrate, nan=-1.0)))
    rows = [
        {"model": name, **results[name].as_dict(), "avg_length": float(columns[name][:, 2].mean())} for name in order
    ]
    return {
        "baseline": baseline,
        "difficulty": difficulty,
        "raters": selection.key,
        "rater_mix": rater_mix(campaign, selection),
        "method": "AlpacaEval 2 length-controlled win rate (GLM with the length term set to zero)",
        "models": [_finite(row) for row in rows],
    }


def _finite(row: dict[str, Any]) -> dict[str, Any]:
    """Replace nan by None (JSON has no nan): too few annotations leave the LC fields empty."""
    return {key: (None if isinstance(value, float) and not np.isfinite(value) else value) for key, value in row.items()}
