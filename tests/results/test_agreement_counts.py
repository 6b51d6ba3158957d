"""The agreement report's figures counted on numpy columns (results.agreement_counts) equal rating-by-rating counts
over RatingRow objects and the RatingRow judge report, on 35 humans and two judges."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from statistics import median
from typing import Any

import numpy as np
import pytest

from annotation.models import Campaign, Rater
from results.agreement import collapse, compute_agreement, judge_report, strict_mode
from results.raters import parse_raters
from results.selectors import RatingRow, inconsistent_judge_pairs, rating_rows
from tests import factories


@pytest.fixture
def crowd(campaign: Campaign) -> Campaign:
    """35 humans and two judges (both orders) rate the campaign at random; a third of the comparisons have gold."""
    rng = np.random.default_rng(5)
    comparisons = list(campaign.comparisons.select_related("output_a", "output_b").order_by("id"))
    for comparison in comparisons[::3]:
        comparison.gold_verdict, comparison.gold_winner = "win", comparison.output_a
        comparison.save(update_fields=["gold_verdict", "gold_winner"])
    raters = [factories.RaterFactory.create(name=f"crowd-{i:02d}") for i in range(35)]
    judges = [factories.RaterFactory.create(name=f"judge-{i}", kind=Rater.Kind.JUDGE) for i in range(2)]
    for comparison in comparisons:
        a, b = comparison.output_a, comparison.output_b
        choices = [("win", a), ("win", b), ("tie", None), ("both_bad", None)]
        for k in rng.choice(len(raters), size=int(rng.integers(2, 30)), replace=False):
            rater = raters[int(k)]
            verdict, winner = choices[int(rng.choice(4, p=[0.5, 0.3, 0.1, 0.1]))]
            left = a if rng.random() < 0.5 else b
            time_ms = None if rng.random() < 0.2 else int(rng.integers(1, 9)) * 1000
            factories.make_rating(comparison, rater, winner=winner, verdict=verdict, left_output=left, time_ms=time_ms)
        for judge in judges:
            for left in (a, b):
                verdict, winner = choices[int(rng.choice(4, p=[0.6, 0.3, 0.1, 0.0]))]
                factories.make_rating(comparison, judge, winner=winner, verdict=verdict, left_output=left)
    return campaign


def reference_annotators(rows: list[RatingRow]) -> dict[str, dict[str, Any]]:
    """Return per rater the annotator figures, counted naively one rating at a time."""
    triples = collapse(rows)
    out = {}
    for name in sorted({r.rater for r in rows}):
        own = [r for r in rows if r.rater == name]
        compared = agree = 0
        for unit, rater, value in triples:
            if rater == name:
                others = [v for u, o, v in triples if u == unit and o != name]
                mode = strict_mode(others) if others else None
                compared += mode is not None
                agree += mode == value
        gold = [r.value == r.gold for r in own if r.gold is not None]
        times = [r.time_ms for r in own if r.time_ms is not None]
        decisive = [r for r in own if r.value in ("a", "b")]
        out[name] = {
            "n_ratings": len(own),
            "consensus": (agree, compared),
            "gold": (sum(gold), len(gold)),
            "median_time_ms": median(times) if times else None,
            "left": (sum((r.value == "a") == r.a_left for r in decisive), len(decisive)),
        }
    return out


def test_annotator_figures_equal_a_rating_by_rating_count(crowd: Campaign) -> None:
    rows = rating_rows(crowd, parse_raters("all"))
    expected = reference_annotators(rows)

    report = compute_agreement(crowd, parse_raters("all"), bootstrap=0)

    got = {
        a["rater"]: {
            "n_ratings": a["n_ratings"],
            "consensus": (a["agreement_with_consensus"]["agree"], a["agreement_with_consensus"]["n"]),
            "gold": (a["gold_accuracy"]["agree"], a["gold_accuracy"]["n"]),
            "median_time_ms": a["median_time_ms"],
            "left": (a["left_share"]["left"], a["left_share"]["n"]),
        }
        for a in report["annotators"]
    }
    assert got == expected
    assert any(a["gold_accuracy"]["n"] for a in report["annotators"])
    assert any(isinstance(a["median_time_ms"], float) for a in report["annotators"])  # an even count: a mean


def test_the_heatmap_keeps_the_30_most_active_raters_with_pair_counts_of_a_naive_loop(crowd: Campaign) -> None:
    triples = collapse(rating_rows(crowd, parse_raters("all")))
    activity = Counter(rater for _, rater, _ in triples)
    kept = sorted(name for name, _ in activity.most_common(30))

    heatmap = compute_agreement(crowd, parse_raters("all"), bootstrap=0)["rater_heatmap"]

    assert heatmap["raters"] == kept
    assert len(activity) > 30
    for i, x in enumerate(kept):
        for j, y in enumerate(kept):
            units_x = {u: v for u, r, v in triples if r == x}
            units_y = {u: v for u, r, v in triples if r == y}
            shared = [u for u in units_x if u in units_y] if i != j else []
            assert heatmap["shared"][i][j] == len(shared)
            agree = sum(units_x[u] == units_y[u] for u in shared)
            assert heatmap["matrix"][i][j] == (round(agree / len(shared), 4) if shared else None)


@pytest.mark.parametrize("consistent", [False, True])
def test_judge_sections_equal_the_rating_row_judge_report(crowd: Campaign, consistent: bool) -> None:
    rows = rating_rows(crowd, parse_raters("all"))
    humans = [r for r in rows if r.kind == "human"]
    pairs = {(p.rater_id, p.comparison_id) for p in inconsistent_judge_pairs(crowd, parse_raters("all"))}
    gated = [
        replace(r, value="tie") if consistent and (r.rater_id, r.comparison_id) in pairs else r
        for r in rows
        if not consistent or r.a_left or (r.rater_id, r.comparison_id) not in pairs
    ]

    report = compute_agreement(crowd, parse_raters("all"), bootstrap=20, consistent=consistent)

    expected = [
        judge_report(
            name,
            [r for r in gated if r.rater == name],
            humans,
            bootstrap=20,
            seed=0,
            given=[r for r in rows if r.rater == name],
        )
        for name in ("judge-0", "judge-1")
    ]
    assert report["judges"] == expected
    assert report.get("inconsistent_pairs", len(pairs)) == len(pairs) > 0


@pytest.mark.parametrize("consistent", [False, True])
def test_a_selection_without_ratings_is_a_report_without_raters(crowd: Campaign, consistent: bool) -> None:
    nobody = parse_raters("all", ["*"])  # as when the researchers excluded every rater from results

    report = compute_agreement(crowd, nobody, bootstrap=0, consistent=consistent)

    assert (report["n_ratings"], report["annotators"], report["judges"]) == (0, [], [])
