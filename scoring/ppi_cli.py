"""``python -m scoring rank FILE --combine ppi``: humans and LLM judges ranked together (prediction-powered)."""

from __future__ import annotations

import argparse
from typing import Any

from scoring.cli import _json_with_matrix, battle_filter
from scoring.loaders import InputError
from scoring.ppi import PPILeaderboard, ppi_bradley_terry
from scoring.ppi_votes import read_paired_votes


def unsupported_options(args: argparse.Namespace) -> list[str]:
    """Return the ``rank`` options given that ``--combine ppi`` does not take."""
    given = []
    if args.bootstrap:
        given.append("--bootstrap (the intervals are analytic)")
    if args.elo:
        given.append("--elo")
    if args.ties != "half":
        given.append("--ties davidson")
    if args.anchor is not None:
        given.append("--anchor")
    if battle_filter(args).active:
        given.append("the filters")
    return given


def run_rank_ppi(args: argparse.Namespace) -> str:
    """Return the rendered prediction-powered leaderboard for ``rank --combine ppi``."""
    refused = unsupported_options(args)
    if refused:
        raise ValueError(f"--combine ppi does not take {', '.join(refused)}")
    try:
        votes = read_paired_votes(args.file, judges=args.judge or ())
    except InputError as exc:
        message = str(exc)
        raise InputError(message if message.startswith("cannot read") else f"{args.file}: {message}") from None
    board = ppi_bradley_terry(votes.labelled, votes.unlabelled)
    payload = board.to_dict()
    payload.update(
        judges=votes.judges,
        human_votes=votes.human_votes,
        judge_votes=votes.judge_votes,
        human_only_comparisons=votes.human_only,
    )
    if votes.human_only:
        payload["warnings"].append(
            f"{votes.human_only} comparison(s) with human votes but no judge vote are left out "
            "(the correction needs the judge's verdict beside the humans')"
        )
    if args.format == "table":
        return _table(board, payload)
    return _json_with_matrix(payload, ("win_probability", "matrix"))


def _table(board: PPILeaderboard, payload: dict[str, Any]) -> str:
    """Render the leaderboard for people, with the human-only interval's width beside the combined one."""
    width = max([len(row.model) for row in board.ratings] + [5])
    head = f"{'rank':>4} {'ub':>3}  {'model':<{width}}  {'rating':>8}  {'95% CI':>18}  {'humans only':>11}  paired"
    lines = [head, "-" * (len(head) + 8)]
    for row in board.ratings:
        lines.append(
            f"{row.rank:>4} {row.rank_ub:>3}  {row.model:<{width}}  {row.rating:8.1f}  "
            f"[{row.lower:7.1f}, {row.upper:7.1f}]  {'+-':>3}{1.959963984540054 * row.se_human:6.1f} pt  "
            f"{row.labelled:>6}"
        )
    lines.append(
        f"{board.n_labelled} comparisons rated by humans and the judge, {board.n_unlabelled} by the judge alone; "
        f"lambda={board.lam:.3f}, interval=sandwich"
    )
    lines.extend(f"warning: {text}" for text in payload["warnings"])
    return "\n".join(lines)
