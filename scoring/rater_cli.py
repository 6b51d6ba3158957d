"""``python -m scoring raters FILE``: each rater's votes, competence, left bias, p-value and whether it is flagged."""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

from scoring.rater_flags import rater_report, read_rater_votes


def raters_output(args: argparse.Namespace) -> str:
    """Return the report as JSON (``{"raters": [...], "alpha", "correction", "n_votes", "n_flagged"}``) or a table."""
    if not 0 < args.alpha < 1:
        raise ValueError("--alpha must be between 0 and 1")
    votes = read_rater_votes(args.file)
    rows = rater_report(votes, alpha=args.alpha, correction=args.correction)
    if args.format == "table":
        return table(rows)
    payload = {
        "raters": rows,
        "alpha": args.alpha,
        "correction": args.correction,
        "n_votes": len(votes),
        "n_flagged": sum(row["flagged"] for row in rows),
    }
    return json.dumps(payload, indent=1)


def table(rows: list[dict[str, Any]]) -> str:
    """Return the report for people, most suspect first."""
    width = max([len(row["rater"]) for row in rows] + [5])
    lines = [f"{'rater':<{width}}  {'votes':>6}  {'competence':>10}  {'left':>5}  {'p_value':>8}  flagged"]
    for row in rows:
        lines.append(
            f"{row['rater']:<{width}}  {row['votes']:>6}  {number(row['competence'], 3):>10}  "
            f"{number(row['left_bias'], 2):>5}  {number(row['p_value'], 3, 'g'):>8}  "
            + ("yes: " + "; ".join(row["reasons"]) if row["flagged"] else "")
        )
    lines.append(f"{sum(row['flagged'] for row in rows)} of {len(rows)} raters flagged")
    return "\n".join(lines)


def number(value: float | None, digits: int, style: str = "f") -> str:
    """Return a figure for the table, "-" when there is none."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}{style}}"
