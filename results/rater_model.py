"""Leaderboard options that see the raters: intervals clustered by rater or prompt, and the rater-aware fit.

``cluster="rater"|"prompt"`` keeps the plain Bradley-Terry ratings and gives them sandwich intervals clustered by
rater (or prompt); ``rater_model`` fits the rater-aware Bradley-Terry (``scoring.rater_bt``: each rater's
reliability and left bias), with ``cluster="rater"`` for its rater-clustered intervals. The votes come from one SQL
aggregation per request: the selected ratings grouped by rater (or prompt), shown-left model, shown-right model and
outcome, never a Python object per rating.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

import scoring
from annotation.models import Rater
from evalplatform.exceptions import DomainError
from results.categories import category_source
from results.raters import RaterSelection
from results.selectors import (
    A_LEFT_SQL,
    OUTPUT_JOINS,
    VALUE_SQL,
    arena_battle,
    fetch_all,
    inconsistent_judge_pairs,
    ratings_from,
)
from scoring.battles import BattleCounts, counts_from_tally
from scoring.bt_fit import ClusterCells
from scoring.rater_bt import RaterCells, rater_bradley_terry

CLUSTERS = ("rater", "prompt")
GROUP_SQL = {"rater": "r.rater_id", "prompt": "c.prompt_id"}
# (group id, left model, right model, Arena winner label, count)
GroupRow = tuple[int, str, str, str, int]


def check_rater_options(
    *,
    cluster: str | None,
    rater_model: bool,
    bootstrap: int = 0,
    consistent: bool = False,
    combine: str | None = None,
    style_control: bool = False,
) -> None:
    """Raise DomainError (naming the field) unless the options make sense together."""
    if cluster is not None and cluster not in CLUSTERS:
        raise DomainError(f"cluster: expected rater or prompt, not {cluster!r}", field="cluster")
    if not (cluster or rater_model):
        return
    if bootstrap:
        raise DomainError("cluster and rater_model give sandwich intervals: leave bootstrap at 0", field="bootstrap")
    if combine is not None or style_control:
        raise DomainError("cluster and rater_model apply to the Bradley-Terry leaderboard only", field="cluster")
    if rater_model and cluster == "prompt":
        raise DomainError("rater_model clusters by rater only: use cluster=rater", field="cluster")
    if rater_model and consistent:
        raise DomainError(
            "rater_model reads each judge's two orders to estimate its left bias: leave consistent off",
            field="consistent",
        )
    if consistent and cluster == "prompt":
        raise DomainError("consistent combines with cluster=rater, not cluster=prompt", field="consistent")


def group_rows(
    campaign: Any, selection: RaterSelection, by: str, *, category: str | None, consistent: bool
) -> list[GroupRow]:
    """Return the selected ratings between named models counted per ``by`` group, shown models and outcome.

    With ``consistent`` (``by="rater"``), a judge's inconsistent pair counts as one tie, as in ``battle_tally``.
    """
    if category is not None:
        source, params = category_source(campaign, selection, category)
    else:
        source, params = ratings_from(campaign, selection, joins=OUTPUT_JOINS, rater=False)
    rows = fetch_all(
        f"""SELECT {GROUP_SQL[by]}, xa.model_name, xb.model_name, {A_LEFT_SQL}, {VALUE_SQL}, count(*)
            {source} AND xa.model_name IS NOT NULL AND xb.model_name IS NOT NULL GROUP BY 1, 2, 3, 4, 5""",
        params,
    )
    out = [(group, *arena_battle(a, b, a_left, value), n) for group, a, b, a_left, value, n in rows]
    if consistent:
        out += _consistency_rows(campaign, selection, category)
    return out  # type: ignore[return-value]


def _consistency_rows(campaign: Any, selection: RaterSelection, category: str | None) -> list[GroupRow]:
    """Return the rows that turn each selected judge's inconsistent pair into one tie (negative counts)."""
    pairs = inconsistent_judge_pairs(campaign, selection)
    if category is not None:
        from results.categories import comparisons_in_category

        inside = comparisons_in_category([pair.comparison_id for pair in pairs], category)
        pairs = [pair for pair in pairs if pair.comparison_id in inside]
    rows: list[GroupRow] = []
    for pair in pairs:
        if pair.model_a is None or pair.model_b is None:
            continue
        for a_left, value in pair.votes:
            left, right, winner = arena_battle(pair.model_a, pair.model_b, a_left, value)
            rows.append((pair.rater_id, str(left), str(right), winner, -1))
        rows.append((pair.rater_id, pair.model_a, pair.model_b, "tie", 1))
    return rows


def _counts(rows: Iterable[GroupRow]) -> BattleCounts:
    """Return the battle counts of the rows (groups dropped)."""
    tally: dict[tuple[str, str, str], int] = {}
    for _, left, right, winner, n in rows:
        tally[(left, right, winner)] = tally.get((left, right, winner), 0) + n
    return counts_from_tally({key: n for key, n in tally.items() if n})


def cluster_cells(rows: list[GroupRow], counts: BattleCounts, by: str) -> ClusterCells:
    """Return the rows as cluster cells over the models of ``counts``."""
    index = {name: i for i, name in enumerate(counts.models)}
    groups: dict[int, int] = {}
    cluster = np.array([groups.setdefault(row[0], len(groups)) for row in rows], dtype=np.int64)
    first = np.array([index[row[1]] for row in rows], dtype=np.int64)
    second = np.array([index[row[2]] for row in rows], dtype=np.int64)
    n = np.array([row[4] for row in rows], dtype=np.float64)
    winner = [row[3] for row in rows]
    won_first = np.array([w == "model_a" for w in winner])
    won_second = np.array([w == "model_b" for w in winner])
    return ClusterCells(
        by=by,
        n_clusters=len(groups),
        cluster=cluster,
        first=first,
        second=second,
        wins_first=np.where(won_first, n, 0.0),
        wins_second=np.where(won_second, n, 0.0),
        ties=np.where(~(won_first | won_second), n, 0.0),
    )


def rater_options_board(
    campaign: Any,
    selection: RaterSelection,
    *,
    cluster: str | None,
    rater_model: bool,
    consistent: bool = False,
    category: str | None = None,
) -> tuple[BattleCounts, dict[str, Any]] | None:
    """Return the counts and the leaderboard dict under the options, or None when no ratings count.

    The rater-aware fit adds ``rater_model.raters``: each rater's public name (an annotator's pseudonym, an
    imported rater's or judge's name), kind, votes, reliability and left bias.
    """
    by = "rater" if rater_model else str(cluster)
    rows = [row for row in group_rows(campaign, selection, by, category=category, consistent=consistent) if row[4]]
    if not rows:
        return None
    merged = _merge(rows)
    counts = _counts(merged)
    if not rater_model:
        board = scoring.bradley_terry_from_counts(counts, clusters=cluster_cells(merged, counts, by))
        return counts, board.to_dict()
    cells = RaterCells.from_rows(
        (
            rater_id,
            left,
            right,
            float(n * (w == "model_a")),
            float(n * (w == "model_b")),
            float(n * w.startswith("tie")),
        )
        for rater_id, left, right, w, n in merged
    )
    result = rater_bradley_terry(cells, counts=counts, cluster="rater" if cluster == "rater" else None)
    payload = result.to_dict()
    rows_out = payload["rater_model"]["raters"]
    labels = rater_labels(int(row["rater"]) for row in rows_out)
    for row in rows_out:
        row["rater"], row["kind"] = labels.get(int(row["rater"]), (str(row["rater"]), ""))
    return counts, payload


def _merge(rows: list[GroupRow]) -> list[GroupRow]:
    """Return the rows with equal keys summed and empty ones dropped (a consistency tie may cancel a count)."""
    total: dict[tuple[int, str, str, str], int] = {}
    for group, left, right, winner, n in rows:
        total[(group, left, right, winner)] = total.get((group, left, right, winner), 0) + n
    if any(n < 0 for n in total.values()):
        raise DomainError("the ratings changed while the leaderboard was computed; try again", field="cluster")
    return [(*key, n) for key, n in total.items() if n]


def rater_labels(ids: Iterable[int]) -> dict[int, tuple[str, str]]:
    """Return each rater's public label (pseudonym for annotators with an account, else the name) and kind."""
    rows = Rater.objects.filter(pk__in=list(ids)).values_list("pk", "name", "pseudonym", "user_id", "kind")
    return {pk: (pseudonym if user_id is not None else name, kind) for pk, name, pseudonym, user_id, kind in rows}


def rater_option_lines(board: dict[str, Any]) -> list[str]:
    """Return the text lines that say how the options shaped a leaderboard (none without them)."""
    lines = []
    if board.get("cluster"):
        lines.append(f"intervals: sandwich clustered by {board['cluster']} (CR1)")
    model = board.get("rater_model")
    if model:
        lines.append(
            f"rater-aware Bradley-Terry (reliability prior {model['reliability_prior']:g}, left bias sd "
            f"{model['bias_sd']:g}); raters, least reliable first:"
        )
        width = max([len(row["rater"]) for row in model["raters"]] + [5])
        lines.append(f"  {'rater':<{width}} {'kind':<5} {'votes':>6} {'reliability':>11} {'left_bias':>9}")
        for row in model["raters"]:
            lines.append(
                f"  {row['rater']:<{width}} {row.get('kind', ''):<5} {row['votes']:>6} {row['reliability']:>11.3f} "
                f"{row['left_bias']:>+9.2f}"
            )
    return lines
