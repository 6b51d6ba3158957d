"""``python -m scoring rank FILE --cluster rater|prompt`` and ``--rater-model``: intervals clustered by rater or
prompt, and the rater-aware Bradley-Terry fit, on a Chatbot Arena battle log.

A battle's rater is its ``judge`` and its prompt its ``question_id``; ``model_a`` was shown on the left (Arena's
convention). The log is parsed record by record in Python (the compiled counter reads only the battle's own keys).
"""

from __future__ import annotations

import argparse
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scoring import bt_fit
from scoring.battles import Battle, aggregate_battles
from scoring.bradley_terry import Leaderboard, bradley_terry_from_counts
from scoring.elo import elo
from scoring.loaders import BattleFilter, InputError, _filtered_battle, _records
from scoring.rater_bt import RaterCells, RaterLeaderboard, rater_bradley_terry

KEYS = {"rater": "judge", "prompt": "question_id"}
OUTCOME = {"model_a": 1, "model_b": 2, "tie": 0, "tie (bothbad)": 0}
SIDE = {"model_a": "left", "model_b": "right", "tie": "tie", "tie (bothbad)": "tie"}


@dataclass(frozen=True)
class KeyedBattles:
    """Battles in file order with the value of one record key each (the rater or the prompt)."""

    battles: list[Battle]
    keys: list[str]


def read_keyed_battles(path: str | Path, key: str, option: str, filters: BattleFilter) -> KeyedBattles:
    """Read the battles that pass ``filters`` with each one's ``key``; a battle without it is an error naming
    its line and the ``option`` that reads it."""
    battles: list[Battle] = []
    keys: list[str] = []
    try:
        for line, record in _records(path):
            try:
                battle = _filtered_battle(record, filters)
            except ValueError as exc:
                raise InputError(f"line {line}: {exc}") from None
            if battle is None:
                continue
            value = record.get(key)
            if value is None or value == "" or isinstance(value, dict | list):
                raise InputError(f"line {line}: no '{key}' (read by {option})")
            battles.append(battle)
            keys.append(str(value))
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    keep = _kept(battles, filters)
    battles = [battle for battle, ok in zip(battles, keep, strict=True) if ok]
    keys = [value for value, ok in zip(keys, keep, strict=True) if ok]
    if not battles:
        raise InputError("no battles pass the filters" if filters.active else "no battles in the file")
    return KeyedBattles(battles, keys)


def _kept(battles: list[Battle], filters: BattleFilter) -> list[bool]:
    """Return which battles survive ``exclude_ties`` and ``min_votes`` (as ``BattleFilter.apply_to_battles``)."""
    keep = [not (filters.exclude_ties and battle[2].startswith("tie")) for battle in battles]
    if filters.min_votes > 0:
        votes = Counter(name for battle, ok in zip(battles, keep, strict=True) if ok for name in battle[:2])
        keep = [ok and min(votes[b[0]], votes[b[1]]) >= filters.min_votes for b, ok in zip(battles, keep, strict=True)]
    return keep


def refused_options(args: argparse.Namespace) -> list[str]:
    """Return the ``rank`` options given that ``--cluster`` / ``--rater-model`` do not take."""
    given = [
        name
        for name, on in (
            ("--bootstrap", bool(args.bootstrap)),
            ("--reweight", bool(args.reweight)),
            ("--combine", bool(args.combine)),
            ("--style-control", bool(getattr(args, "style_control", False))),
            ("--categories", bool(getattr(args, "categories", None))),
            ("--influence", bool(getattr(args, "influence", False))),
            ("--downsample-high-freq", bool(getattr(args, "downsample_high_freq", False))),
        )
        if on
    ]
    if args.rater_model and args.ties != "half":
        given.append("--ties davidson (the rater model counts ties as halves)")
    if args.rater_model and args.cluster == "prompt":
        given.append("--cluster prompt (the rater model clusters by rater only)")
    return given


def run_rank_raters(args: argparse.Namespace) -> str:
    """Return the leaderboard of ``rank --cluster`` / ``--rater-model`` as JSON or a table."""
    from scoring.cli import _json_with_matrix, _table, battle_filter

    refused = refused_options(args)
    if refused:
        what = "--rater-model" if args.rater_model else "--cluster"
        raise ValueError(f"{what} does not take {', '.join(refused)}")
    filters = battle_filter(args)
    by = "rater" if args.rater_model else args.cluster
    option = "--rater-model" if args.rater_model else f"--cluster {by}"
    try:
        data = read_keyed_battles(args.file, KEYS[by], option, filters)
    except InputError as exc:
        message = str(exc)
        raise InputError(message if message.startswith("cannot read") else f"{args.file}: {message}") from None
    result = rater_board(
        data, by=by, rater_model=args.rater_model, cluster=args.cluster, ties=args.ties, anchor=args.anchor
    )
    board = result.board if isinstance(result, RaterLeaderboard) else result
    payload = result.to_dict()
    payload["seed"] = args.seed
    if filters.active:
        payload["filters"] = filters.as_dict()
    if args.elo:
        ratings = elo(data.battles).as_dict()
        for row in payload["ratings"]:
            row["elo"] = ratings[row["model"]]
    if args.format == "table":
        text = _table(board, payload)
        return text if not isinstance(result, RaterLeaderboard) else text + "\n" + rater_table(result)
    return _json_with_matrix(payload, ("win_probability", "matrix"))


def rater_board(
    data: KeyedBattles,
    *,
    by: str,
    rater_model: bool,
    cluster: str | None,
    ties: Any,
    anchor: tuple[str, float] | None,
) -> Leaderboard | RaterLeaderboard:
    """Fit the plain leaderboard with clustered intervals, or the rater-aware one."""
    counts = aggregate_battles(data.battles)
    if rater_model:
        cells = RaterCells.from_votes(
            (rater, a, b, SIDE[winner]) for rater, (a, b, winner) in zip(data.keys, data.battles, strict=True)
        )
        return rater_bradley_terry(cells, counts=counts, anchor=anchor, cluster="rater" if cluster else None)
    index = {name: i for i, name in enumerate(counts.models)}
    cells_by = bt_fit.cluster_cells(
        by,
        data.keys,
        [index[a] for a, _, _ in data.battles],
        [index[b] for _, b, _ in data.battles],
        [OUTCOME[winner] for _, _, winner in data.battles],
    )
    return bradley_terry_from_counts(counts, ties=ties, anchor=anchor, clusters=cells_by)


def rater_table(result: RaterLeaderboard) -> str:
    """Render each rater's reliability and left bias, least reliable first."""
    width = max([len(row.rater) for row in result.raters] + [5])
    lines = [f"{'rater':<{width}}  {'votes':>6}  {'reliability':>11}  {'left_bias':>9}"]
    for row in result.raters:
        lines.append(f"{row.rater:<{width}}  {row.votes:>6}  {row.reliability:>11.3f}  {row.left_bias:>+9.2f}")
    return "\n".join(lines)
