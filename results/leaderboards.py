"""Leaderboards of a campaign: Bradley-Terry with intervals, online Elo, win rates, and judges beside humans.

Freshness: a leaderboard is cached under the campaign, the rater selection, the options and the ratings version
(largest rating id plus PostgreSQL's update and delete counts, read in constant time). A request after new ratings
finds no entry for the new version and recomputes (the cost is one SQL aggregation plus a fit on per-pair
counts); ``results.refresh_leaderboards`` (a Celery task enqueued on commit by ``schedule_refresh``) recomputes in
the background so that pages find the entry warm, Elo included. Rating is never blocked: nothing here runs inside
the rating transaction.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import numpy as np
from django.core.cache import cache

import scoring
from annotation.models import Campaign
from evalplatform.db_router import heavy_read_alias
from evalplatform.exceptions import DomainError
from results.categories import category_source, min_battles, tags_version
from results.counts import BattleTally, battle_tally
from results.ppi import compute_ppi_leaderboard
from results.prompt_downsampling import downsampled_counts
from results.rater_model import check_rater_options, rater_options_board
from results.raters import RaterSelection
from results.selectors import (
    A_LEFT_SQL,
    OUTPUT_JOINS,
    VALUE_SQL,
    inconsistent_judge_pairs,
    judge_raters,
    ratings_from,
    ratings_version,
    stream_rows,
)
from results.style_leaderboard import check_style_options, compute_style_leaderboard
from scoring.battles import counts_from_tally
from scoring.influence import add_to_rows as add_influence_to_rows
from scoring.influence import leaderboard_influence
from scoring.style import DEFAULT_REG

CACHE_SECONDS = 24 * 3600
ELO_SYNC_LIMIT = 200_000


def cache_key(*parts: object) -> str:
    """Return a cache key for these parts (hashed: rater names may hold any character)."""
    return "results:" + hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()


def cached(key: str, compute: Any, *, force: bool = False) -> Any:
    """Return the cached value under key, computing and storing it when absent (or when forced)."""
    value = None if force else cache.get(key)
    if value is None:
        value = compute()
        cache.set(key, value, CACHE_SECONDS)
    return value


def campaign_leaderboard(
    campaign: Campaign,
    selection: RaterSelection,
    *,
    bootstrap: int = 0,
    seed: int = 0,
    with_elo: bool | None = None,
    force: bool = False,
    combine: str | None = None,
    consistent: bool = False,
    category: str | None = None,
    style_control: bool = False,
    style_reg: float = DEFAULT_REG,
    cluster: str | None = None,
    rater_model: bool = False,
    influence: bool = False,
    downsample: bool = False,
) -> dict[str, Any]:
    """Return the campaign's leaderboard under a rater selection, from the cache when the ratings are unchanged.

    Online Elo replays every rating in order, so by default (``with_elo=None``) a request computes it only for
    campaigns of at most ELO_SYNC_LIMIT ratings; for larger ones it is served when the background refresh has
    cached it, and left out otherwise. ``combine="ppi"`` ranks the selected humans and judges together by
    prediction-powered inference (``results/ppi.py``; sandwich intervals, no Elo, ``bootstrap`` must be 0).
    ``consistent`` applies the consistency gate (``results.counts.battle_tally``) to Bradley-Terry and Elo.
    ``category`` ranks the ratings on prompts with that tag only (``results/categories.py``; checked by the caller).
    ``style_control`` fits the ratings jointly with the outputs' style (``results/style_leaderboard.py``; L2
    regularisation ``style_reg``, 0 for the maximum likelihood; no Elo, and none of the options above).
    ``cluster`` (``rater``/``prompt``) clusters the sandwich intervals, ``rater_model`` fits the rater-aware
    Bradley-Terry (``results/rater_model.py``; no bootstrap). ``influence`` adds each adjacent pair's votes to
    flip (``scoring/influence.py``); ``downsample`` caps over-rated prompts (``results/prompt_downsampling.py``).
    """
    version = ratings_version()
    if downsample and (consistent or category is not None or cluster or rater_model or combine or style_control):
        raise DomainError(
            "downsample applies to the plain Bradley-Terry leaderboard (no consistent, category, cluster, "
            "rater_model, combine or style_control)",
            field="downsample",
        )
    if influence and (cluster or rater_model or combine or style_control):
        raise DomainError(
            "influence applies to the Bradley-Terry leaderboard (no cluster, rater_model, combine or style_control)",
            field="influence",
        )
    check_rater_options(
        cluster=cluster,
        rater_model=rater_model,
        bootstrap=bootstrap,
        consistent=consistent,
        combine=combine,
        style_control=style_control,
    )
    if style_control:
        if combine is not None or consistent or category is not None:
            raise DomainError("style_control takes none of combine, consistent and category", field="style_control")
        check_style_options(bootstrap=bootstrap, reg=style_reg)
        style_key = cache_key("leaderboard-style", campaign.pk, selection.key, bootstrap, seed, style_reg, version.key)
        return dict(
            cached(
                style_key,
                lambda: compute_style_leaderboard(campaign, selection, bootstrap=bootstrap, seed=seed, reg=style_reg),
                force=force,
            )
        )
    if combine is not None and category is not None:
        raise DomainError("category applies to the Bradley-Terry leaderboard, not to combine", field="category")
    if combine is not None and consistent:
        raise DomainError("consistent applies to the Bradley-Terry leaderboard, not to combine", field="consistent")
    if combine is not None:
        return _combined_leaderboard(campaign, selection, combine, bootstrap, version.key, force)

    def key(elo: bool | None) -> str:
        gate = ("consistent",) if consistent else ()  # ungated keys stay as they were
        subset = ("category", category, tags_version(campaign)) if category is not None else ()
        model = ("cluster", cluster, "rater_model", rater_model) if cluster or rater_model else ()
        hygiene = ("influence", influence, "downsample", downsample) if influence or downsample else ()
        return cache_key(
            "leaderboard",
            campaign.pk,
            selection.key,
            bootstrap,
            seed,
            elo,
            version.key,
            *gate,
            *subset,
            *model,
            *hygiene,
        )

    if with_elo is None and not force and (warm := cache.get(key(True))) is not None:
        return dict(warm)
    return dict(
        cached(
            key(with_elo),
            lambda: compute_leaderboard(
                campaign,
                selection,
                bootstrap=bootstrap,
                seed=seed,
                with_elo=with_elo,
                consistent=consistent,
                category=category,
                cluster=cluster,
                rater_model=rater_model,
                influence=influence,
                downsample=downsample,
            ),
            force=force,
        )
    )


def _combined_leaderboard(
    campaign: Campaign, selection: RaterSelection, combine: str, bootstrap: int, version: str, force: bool
) -> dict[str, Any]:
    """Return the human + judge leaderboard (cached like the others); raise DomainError on bad options."""
    if combine != "ppi":
        raise DomainError(f"combine: unknown method {combine!r} (expected ppi)", field="combine")
    if bootstrap:
        raise DomainError("combine=ppi gives analytic intervals: leave bootstrap at 0", field="bootstrap")
    key = cache_key("leaderboard-ppi", campaign.pk, selection.key, version)
    return dict(cached(key, lambda: compute_ppi_leaderboard(campaign, selection), force=force))


def compute_leaderboard(
    campaign: Campaign,
    selection: RaterSelection,
    *,
    bootstrap: int = 0,
    seed: int = 0,
    with_elo: bool | None = True,
    consistent: bool = False,
    category: str | None = None,
    cluster: str | None = None,
    rater_model: bool = False,
    influence: bool = False,
    downsample: bool = False,
) -> dict[str, Any]:
    """Fit Bradley-Terry (and online Elo) to the campaign's selected ratings; return a JSON-ready report.

    ``with_elo=None`` adds Elo when there are at most ELO_SYNC_LIMIT battles. ``consistent`` applies the
    consistency gate and reports ``inconsistent_pairs``, the judge comparisons it turned into one tie.
    """
    started = time.perf_counter()
    tally = battle_tally(campaign, selection, consistent=consistent, category=category)
    report: dict[str, Any] = {
        "campaign": campaign.slug,
        "raters": selection.key,
        "n_battles": tally.n_battles,
        "skipped_unnamed": tally.skipped_unnamed,
        "bootstrap": bootstrap,
        "ratings": [],
        "models": [],
        "warnings": [],
    }
    if consistent:
        report.update(consistent=True, inconsistent_pairs=tally.inconsistent_pairs)
    if category is not None:
        report.update(category=category, provisional=tally.n_battles < min_battles(), min_battles=min_battles())
    if not tally.counts:
        report["warnings"].append("no ratings between named models")
        return report
    counts = counts_from_tally(tally.counts)
    board = None
    if downsample:
        counts, board = _downsampled_board(campaign, selection, report, bootstrap=bootstrap, seed=seed)
        with_elo = False  # Elo replays every rating in order: it has no downsampled form
    elif cluster or rater_model:  # per-rater (or per-prompt) counts of their own SQL aggregation
        fitted = rater_options_board(
            campaign, selection, cluster=cluster, rater_model=rater_model, consistent=consistent, category=category
        )
        if fitted is None:
            report["warnings"].append("no ratings between named models")
            return report
        counts = fitted[0]
        report.update(fitted[1])
    else:
        board = scoring.bradley_terry_from_counts(counts, bootstrap=bootstrap, rng=np.random.default_rng(seed))
        report.update(board.to_dict())
    if influence and board is not None:
        pairs = leaderboard_influence(counts, board)
        add_influence_to_rows(report["ratings"], pairs)
        report["influence"] = [pair.to_dict() for pair in pairs]
    report.update(campaign=campaign.slug, raters=selection.key, skipped_unnamed=tally.skipped_unnamed)
    if consistent:
        report.update(consistent=True, inconsistent_pairs=tally.inconsistent_pairs)
    if category is not None:
        report.update(category=category, provisional=tally.n_battles < min_battles(), min_battles=min_battles())
    report["win_rate"] = win_rate_matrix(counts, order=[row["model"] for row in report["ratings"]])
    if with_elo or (with_elo is None and tally.n_battles <= ELO_SYNC_LIMIT):
        elo = scoring.elo(elo_battles(campaign, selection, consistent=consistent, category=category))
        ratings = elo.as_dict()
        for row in report["ratings"]:
            row["elo"] = ratings.get(row["model"])
    report["models"] = [row["model"] for row in report["ratings"]]
    report["seconds"] = round(time.perf_counter() - started, 4)
    return report


def _downsampled_board(
    campaign: Campaign, selection: RaterSelection, report: dict[str, Any], *, bootstrap: int, seed: int
) -> tuple[scoring.BattleCounts, scoring.Leaderboard]:
    """Fit the leaderboard to the downsampled ratings, recording the downsampling in ``report``."""
    found = downsampled_counts(campaign, selection, seed=seed)
    if found is None:
        raise DomainError("no ratings between named models to downsample", field="downsample")
    counts, summary = found
    board = scoring.bradley_terry_from_counts(counts, bootstrap=bootstrap, rng=np.random.default_rng(seed))
    report.update(board.to_dict())
    report["downsampling"] = summary.to_dict()
    return counts, board


def win_rate_matrix(counts: scoring.BattleCounts, *, order: list[str] | None = None) -> dict[str, Any]:
    """Return the observed win rate of each model against each other (ties count half).

    Rows and columns follow ``order`` (the leaderboard's ranks, as in the predicted-probability matrix beside
    it), else ``counts`` order.
    """
    index = [list(counts.models).index(model) for model in order] if order else list(range(len(counts.models)))
    totals = counts.totals.astype(float)[np.ix_(index, index)]
    score = (counts.wins + 0.5 * counts.all_ties)[np.ix_(index, index)]
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(totals > 0, score / np.where(totals > 0, totals, 1), np.nan)
    matrix = [[None if np.isnan(x) else round(float(x), 4) for x in row] for row in rate]
    models = [counts.models[i] for i in index]
    return {"models": models, "matrix": matrix, "battles": totals.astype(int).tolist()}


def elo_battles(
    campaign: Campaign, selection: RaterSelection, *, consistent: bool = False, category: str | None = None
) -> Iterator[tuple[str, str, str]]:
    """Yield the selected ratings as battles in the order they were given (online Elo depends on it).

    With ``consistent``, a judge's inconsistent pair yields one tie, at its second rating; with ``category``, only
    the ratings on prompts with that tag.
    """
    gated = (
        {(p.rater_id, p.comparison_id) for p in inconsistent_judge_pairs(campaign, selection)} if consistent else set()
    )
    first_seen: set[tuple[int, int]] = set()
    if category is not None:
        source, params = category_source(campaign, selection, category)
    else:
        source, params = ratings_from(campaign, selection, joins=OUTPUT_JOINS, rater=False)
    sql = f"""SELECT xa.model_name, xb.model_name, {A_LEFT_SQL}, {VALUE_SQL}, r.rater_id, r.comparison_id
              {source} AND xa.model_name IS NOT NULL AND xb.model_name IS NOT NULL ORDER BY r.created_at, r.id"""
    labels = {"tie": "tie", "both_bad": "tie (bothbad)"}
    for rows in stream_rows(sql, params, chunk=50_000, using=heavy_read_alias()):
        for model_a, model_b, a_left, value, rater_id, comparison_id in rows:
            if (rater_id, comparison_id) in gated:
                if (rater_id, comparison_id) in first_seen:
                    yield model_a, model_b, "tie"
                else:
                    first_seen.add((rater_id, comparison_id))
                continue
            winner = labels.get(value) or ("model_a" if (value == "a") == a_left else "model_b")
            yield (model_a, model_b, winner) if a_left else (model_b, model_a, winner)


def rater_groups(campaign: Campaign, selection: RaterSelection) -> list[tuple[str, RaterSelection]]:
    """Return the groups ranked side by side: humans, then each judge with ratings in the campaign."""
    base = RaterSelection(exclude=selection.exclude, left_out=selection.left_out)  # globs and excluded raters kept
    groups = [("humans", replace(base, kind="human"))]
    for _, name in judge_raters(campaign, replace(base, kind="judge")):
        groups.append((name, replace(base, names=(name,))))
    return groups


def side_by_side(campaign: Campaign, selection: RaterSelection, *, force: bool = False) -> dict[str, Any]:
    """Rank the campaign by humans and by each judge, with rank correlations of each judge against the humans.

    Only the selection's exclusion globs and excluded raters apply: the groups themselves are fixed.
    """
    version = ratings_version()
    key = cache_key("side_by_side", campaign.pk, selection.key, version.key)
    return dict(cached(key, lambda: compute_side_by_side(campaign, selection), force=force))


def compute_side_by_side(campaign: Campaign, selection: RaterSelection) -> dict[str, Any]:
    """Fit one leaderboard per rater group and correlate each group's ratings with the humans'."""
    boards: dict[str, dict[str, float]] = {}
    for label, group in rater_groups(campaign, selection):
        tally: BattleTally = battle_tally(campaign, group)
        if tally.counts:
            board = scoring.bradley_terry_from_counts(counts_from_tally(tally.counts))
            boards[label] = {row.model: row.rating for row in board.ratings}
    models = sorted(
        {m for ratings in boards.values() for m in ratings}, key=lambda m: -boards.get("humans", {}).get(m, 0)
    )
    human = boards.get("humans", {})
    correlations = {label: rank_correlation(human, ratings) for label, ratings in boards.items() if label != "humans"}
    return {"groups": list(boards), "models": models, "ratings": boards, "correlation_with_humans": correlations}


def rank_correlation(first: dict[str, float], second: dict[str, float]) -> dict[str, Any]:
    """Return Spearman's rho and Kendall's tau between two rating maps over their common models."""
    common = sorted(set(first) & set(second))
    result: dict[str, Any] = {"n_models": len(common), "spearman": None, "kendall": None}
    if len(common) >= 3:
        from scipy import stats  # imported here: scipy is large and only this function needs it

        x = [first[m] for m in common]
        y = [second[m] for m in common]
        result["spearman"] = finite(stats.spearmanr(x, y).statistic)
        result["kendall"] = finite(stats.kendalltau(x, y).statistic)
    return result


def finite(value: Any) -> float | None:
    """Return a float, or None for nan."""
    number = float(value)
    return None if np.isnan(number) else round(number, 4)
