"""Say which raters a report or export counts: the selection, whether it is the default, and how many humans and
judges it holds, so that a selection mixing both says so."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from annotation.models import Campaign
from results.raters import RaterSelection
from results.selectors import fetch_all, ratings_from

DEFAULT = RaterSelection()  # --raters all: every human and every judge


def rater_mix(campaign: Campaign, selection: RaterSelection) -> dict[str, Any]:
    """Return the selection's key, whether it is the default, its numbers of humans and judges, and whether it mixes
    them (``{"raters": "all", "default": True, "humans": 2, "judges": 1, "mixed": True}``)."""
    source, params = ratings_from(campaign, selection, rater=False)
    counts = dict(fetch_all(f"SELECT r.rater_kind, count(DISTINCT r.rater_id) {source} GROUP BY r.rater_kind", params))
    humans, judges = int(counts.get("human", 0)), int(counts.get("judge", 0))
    return {
        "raters": selection.key,
        "default": replace(selection, left_out=()) == DEFAULT,
        "humans": humans,
        "judges": judges,
        "mixed": bool(humans and judges),
        "excluded": sorted(label for _, label in selection.left_out),
    }


def mix_note(mix: dict[str, Any]) -> str:
    """Return one line stating a rater mix: ``raters: all (the default), 2 humans and 1 judge: humans and judges
    mixed``."""
    default = " (the default)" if mix["default"] else ""
    counts = f"{plural(mix['humans'], 'human')} and {plural(mix['judges'], 'judge')}"
    mixed = ": humans and judges mixed" if mix["mixed"] else ""
    excluded = mix.get("excluded") or []
    left_out = f"; {plural(len(excluded), 'rater')} excluded from results by the researchers" if excluded else ""
    return f"raters: {mix['raters']}{default}, {counts}{mixed}{left_out}"


def plural(n: int, noun: str) -> str:
    """Return ``1 judge``, ``2 judges``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"
