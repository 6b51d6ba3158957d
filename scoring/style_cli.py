"""``python -m scoring rank FILE --style-control``: ratings with answer style held fixed (Chatbot Arena's)."""

from __future__ import annotations

import argparse
import json

import numpy as np

from scoring.cli import _finite, battle_filter
from scoring.loaders import InputError, read_style_battles
from scoring.style import StyleLeaderboard, style_leaderboard


def unsupported_options(args: argparse.Namespace) -> list[str]:
    """Return the ``rank`` options given that ``--style-control`` does not take."""
    given = []
    if args.elo:
        given.append("--elo")
    if args.ties != "half":
        given.append("--ties davidson")
    if args.anchor is not None:
        given.append("--anchor")
    if args.combine:
        given.append("--combine")
    if args.reweight:
        given.append("--reweight")
    return given


def run_rank_style(args: argparse.Namespace) -> str:
    """Return the rendered style-controlled leaderboard for ``rank --style-control``."""
    refused = unsupported_options(args)
    if refused:
        raise ValueError(f"--style-control does not take {', '.join(refused)}")
    filters = battle_filter(args)
    try:
        battles = read_style_battles(args.file, filters)
    except InputError as exc:
        message = str(exc)
        raise InputError(message if message.startswith("cannot read") else f"{args.file}: {message}") from None
    board = style_leaderboard(
        battles, reg=args.style_reg, bootstrap=args.bootstrap, rng=np.random.default_rng(args.seed)
    )
    payload = board.to_dict()
    payload["seed"] = args.seed
    if filters.active:
        payload["filters"] = filters.as_dict()
    if args.format == "table":
        return style_table(board)
    return json.dumps(_finite(payload), indent=1)


def style_table(board: StyleLeaderboard) -> str:
    """Render the style-controlled leaderboard and the style coefficients for people."""
    width = max([len(row.model) for row in board.ratings] + [5])
    head = f"{'rank':>4} {'spread':>9}  {'model':<{width}}  {'rating':>8}  {'95% CI':>18}  {'votes':>7}"
    lines = [head, "-" * len(head)]
    for row in board.ratings:
        spread = f"{row.rank_lower}-{row.rank_upper}"
        lines.append(
            f"{row.rank:>4} {spread:>9}  {row.model:<{width}}  {row.rating:8.1f}  "
            f"[{row.lower:7.1f}, {row.upper:7.1f}]  {row.votes:>7}"
        )
    lines.append("")
    lines.append(f"{'style feature':<14} {'coefficient':>11}  {'95% CI':>20}")
    for item in board.style:
        lines.append(f"{item.feature:<14} {item.coefficient:11.4f}  [{item.lower:8.4f}, {item.upper:8.4f}]")
    interval = f"bootstrap ({board.bootstrap} rounds)" if board.bootstrap else "none (use --bootstrap N)"
    lines.append(f"{board.n_battles} battles, style control, reg={board.reg:g}, interval={interval}")
    lines.extend(f"warning: {text}" for text in board.warnings)
    return "\n".join(lines)
