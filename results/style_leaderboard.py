"""Style-controlled leaderboards of a campaign: Chatbot Arena's contextual Bradley-Terry over the stored outputs.

Each rating is one battle (the model shown on the left is model_a, as everywhere in ``results``) whose style
features come from both outputs' stored counts (``Output.style_features``, ``annotation/style_features.py``);
outputs still without counts are counted first. The fit is ``scoring.style.style_leaderboard``.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

import numpy as np

from annotation.models import Campaign, Output
from annotation.style_features import fill_style_counts
from evalplatform.exceptions import DomainError
from results.raters import RaterSelection
from results.selectors import A_LEFT_SQL, OUTPUT_JOINS, VALUE_SQL, arena_battle, ratings_from, stream_rows
from scoring.battles import outcome_code
from scoring.style import DEFAULT_REG, StyleFitError, style_battles, style_leaderboard

MAX_BOOTSTRAP = 1000


def check_style_options(*, bootstrap: int, reg: float) -> None:
    """Raise DomainError when the style-controlled leaderboard's options are out of range."""
    if not 0 <= bootstrap <= MAX_BOOTSTRAP:
        raise DomainError(f"bootstrap must be between 0 and {MAX_BOOTSTRAP}", field="bootstrap")
    if not 0 <= reg <= 1e6:
        raise DomainError("style_reg must be a number between 0 and 1e6", field="style_reg")


def compute_style_leaderboard(
    campaign: Campaign, selection: RaterSelection, *, bootstrap: int = 0, seed: int = 0, reg: float = DEFAULT_REG
) -> dict[str, Any]:
    """Fit ratings and style coefficients to the campaign's selected ratings; return a JSON-ready report."""
    check_style_options(bootstrap=bootstrap, reg=reg)
    started = time.perf_counter()
    fill_style_counts(
        Output.objects.filter(prompt__campaign=campaign, style_features__isnull=True).values_list("pk", flat=True)
    )
    models, rows, weights, skipped = style_rows(campaign, selection)
    report: dict[str, Any] = {
        "campaign": campaign.slug,
        "raters": selection.key,
        "style_control": True,
        "n_battles": int(sum(weights)),
        "skipped_unnamed": skipped,
        "bootstrap": bootstrap,
        "reg": reg,
        "ratings": [],
        "style": [],
        "models": [],
        "warnings": [],
    }
    if not rows:
        report["warnings"].append("no ratings between named models")
        return report
    try:
        board = style_leaderboard(
            style_battles(models, rows, weights), reg=reg, bootstrap=bootstrap, rng=np.random.default_rng(seed)
        )
    except StyleFitError as exc:
        report["warnings"].append(str(exc))
        return report
    report.update(board.to_dict())
    report.update(campaign=campaign.slug, raters=selection.key, style_control=True, skipped_unnamed=skipped)
    report["models"] = [row["model"] for row in report["ratings"]]
    report["seconds"] = round(time.perf_counter() - started, 4)
    return report


def style_rows(
    campaign: Campaign, selection: RaterSelection
) -> tuple[list[str], list[tuple[int, int, int, tuple[int, ...]]], list[int], int]:
    """Return the models, (left, right, outcome code, eight counts) rows with their counts, and unnamed ratings."""
    source, params = ratings_from(campaign, selection, joins=OUTPUT_JOINS, rater=False)
    sql = f"""SELECT xa.model_name, xb.model_name, {A_LEFT_SQL}, {VALUE_SQL}, xa.style_features, xb.style_features,
                     count(*)
              {source} GROUP BY 1, 2, 3, 4, 5, 6"""
    index: dict[str, int] = {}
    rows: list[tuple[int, int, int, tuple[int, ...]]] = []
    weights: list[int] = []
    skipped = 0
    for chunk in stream_rows(sql, params):
        for model_a, model_b, a_left, value, style_a, style_b, n in chunk:
            left, right, winner = arena_battle(model_a, model_b, a_left, value)
            if left is None or right is None or style_a is None or style_b is None:
                skipped += n
                continue
            counts = (*style_a, *style_b) if a_left else (*style_b, *style_a)
            code = outcome_code(winner)
            rows.append((index.setdefault(left, len(index)), index.setdefault(right, len(index)), code, counts))
            weights.append(n)
    return list(index), rows, weights, skipped


def style_output(campaign: Campaign, selection: RaterSelection, options: dict[str, Any]) -> str:
    """Return ``manage.py leaderboard --style-control``'s output (JSON or a table); raise DomainError on bad options."""
    from results.leaderboards import campaign_leaderboard  # that module hooks this one in

    refused = [
        f"--{name.replace('_', '-')}" for name in ("combine", "consistent", "category", "manifest") if options[name]
    ]
    refused += ["--side-by-side"] if options["side_by_side"] else []
    if refused:
        raise DomainError(f"--style-control does not take {', '.join(refused)}", field="style_control")
    if not math.isfinite(options["style_reg"]):
        raise DomainError("--style-reg must be a number >= 0", field="style_reg")
    board = campaign_leaderboard(
        campaign,
        selection,
        bootstrap=options["bootstrap"],
        seed=options["seed"],
        style_control=True,
        style_reg=options["style_reg"],
    )
    return json.dumps(board, indent=2) if options["json"] else style_table(board)


def style_table(board: dict[str, Any]) -> str:
    """Return the style-controlled leaderboard and its style coefficients as a text table."""
    lines = [
        f"{board['campaign']}: style-controlled, {board['n_battles']} battles, raters {board['raters']}, "
        f"L2 regularisation {board['reg']:g}"
        + (f", {board['skipped_unnamed']} ratings skipped (unnamed models)" if board["skipped_unnamed"] else ""),
        f"{'rank':>4} {'ranks':>7}  {'model':<28} {'rating':>8} {'95% interval':>19} {'votes':>6}",
    ]
    for row in board["ratings"]:
        spread = f"{row['rank_lower']}-{row['rank_upper']}"
        lines.append(
            f"{row['rank']:>4} {spread:>7}  {row['model']:<28} {row['rating']:>8.1f} "
            f"[{row['lower']:>7.1f}, {row['upper']:>7.1f}] {row['votes']:>6}"
        )
    if board["style"]:
        lines.append(f"{'style feature':<14} {'coefficient':>11} {'95% interval':>21}")
        for item in board["style"]:
            lines.append(
                f"{item['feature']:<14} {item['coefficient']:>11.4f} [{item['lower']:>8.4f}, {item['upper']:>8.4f}]"
            )
        lines.append(
            "rating: what the model would score with the style of an average answer; coefficient: the log-odds of "
            "winning per standard deviation of (a - b) / (a + b + 1) in that feature"
            + ("" if board["bootstrap"] else "; intervals need --bootstrap N")
        )
    lines += [f"warning: {w}" for w in board.get("warnings", [])]
    return "\n".join(lines)
