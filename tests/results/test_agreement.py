from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from statistics import median
from typing import Any

import numpy as np
import pytest
from django.core.management import call_command

from annotation.models import Campaign, Rater
from results.agreement import collapse, compute_agreement, judge_report, strict_mode
from results.raters import parse_raters
from results.selectors import RatingRow, inconsistent_judge_pairs, rating_rows
from tests import factories
from tests.results.conftest import Rated, rate


def agreement_json(rated: Rated, *args: str, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    call_command("agreement", rated.campaign.slug, "--json", "--bootstrap", "50", *args)
    report: dict[str, Any] = json.loads(capsys.readouterr().out)
    return report


def test_agreement_report_holds_every_metric_with_its_interval(
    rated: Rated, capsys: pytest.CaptureFixture[str]
) -> None:
    report = agreement_json(rated, capsys=capsys)

    # Humans: alice always prefers the better model; the expert agrees except for ties on 3 of the 12 comparisons.
    assert (report["n_units"], report["n_raters"], report["n_ratings"]) == (12, 2, 24)
    assert report["mtbench_agreement"]["with_ties"] == {
        **report["mtbench_agreement"]["with_ties"],
        "agree": 9,
        "pairs": 12,
    }
    assert report["mtbench_agreement"]["with_ties"]["value"] == pytest.approx(0.75)
    assert report["mtbench_agreement"]["without_ties"]["value"] == pytest.approx(1.0)
    assert report["mtbench_agreement"]["without_ties"]["pairs"] == 9
    assert report["percent_agreement"]["value"] == pytest.approx(0.75)
    assert report["loo_mode_agreement"]["value"] == pytest.approx(0.75)
    for item in (
        report["krippendorff_alpha"]["nominal"],
        report["krippendorff_alpha"]["ordinal"],
        report["fleiss_kappa"],
        report["percent_agreement"],
        report["mtbench_agreement"]["with_ties"],
        report["loo_mode_agreement"],
    ):
        low, high = item["ci"]
        assert low <= item["value"] <= high


def test_ordinal_alpha_uses_the_canonical_order_not_the_shown_side(
    rated: Rated, capsys: pytest.CaptureFixture[str]
) -> None:
    # alice saw the worse model on the left, the expert the better one: the same choice on opposite sides.
    report = agreement_json(rated, "--raters", "alice,expert_1", capsys=capsys)

    assert report["percent_agreement"]["value"] == pytest.approx(0.75)  # would be 0 if sides were compared
    assert report["krippendorff_alpha"]["ordinal"]["n_units"] == 12


def test_judge_is_compared_with_the_human_majority_and_the_human_ceiling(
    rated: Rated, capsys: pytest.CaptureFixture[str]
) -> None:
    judge = agreement_json(rated, capsys=capsys)["judges"][0]

    assert judge["judge"] == "gpt-judge"
    # The humans have a strict majority only where they agree (9 comparisons). The judge contradicts itself
    # (counted as a tie) on 3 comparisons, 2 of them among those 9.
    assert judge["n_with_human_majority"] == 9
    assert judge["agreement_with_human_majority"]["with_ties"] == {"agree": 7, "n": 9, "value": pytest.approx(7 / 9)}
    assert judge["agreement_with_human_majority"]["without_ties"]["value"] == pytest.approx(1.0)
    assert judge["position_consistency"] == {"agree": 9, "n": 12, "value": 0.75}
    assert judge["human_ceiling"]["mtbench_agreement"]["with_ties"]["value"] == pytest.approx(0.75)
    assert "value" in judge["cohen_kappa"]


def test_per_rater_figures_give_consensus_gold_time_and_left_share(
    rated: Rated, capsys: pytest.CaptureFixture[str]
) -> None:
    comparison = rated.comparisons[1]
    comparison.gold_verdict = "win"
    comparison.gold_winner = rated.output(comparison, "model-x")
    comparison.save()

    rows = {row["rater"]: row for row in agreement_json(rated, capsys=capsys)["annotators"]}

    alice = rows[rated.alice.pseudonym]
    assert "alice" not in rows
    assert alice["gold_accuracy"] == {"agree": 1, "n": 1, "value": 1.0}
    assert alice["median_time_ms"] == pytest.approx(1005.5)
    assert alice["left_share"] == {"left": 0, "n": 12, "value": 0.0}
    assert rows["expert_1"]["left_share"]["value"] == 1.0
    assert rows["gpt-judge"]["kind"] == "judge"


def test_exclude_raters_leaves_out_names_matching_a_glob(rated: Rated, capsys: pytest.CaptureFixture[str]) -> None:
    rate(rated.comparisons[0], factories.RaterFactory.create(name="author_0"), "model-y")

    with_author = agreement_json(rated, capsys=capsys)
    without = agreement_json(rated, "--exclude-raters", "author_*", capsys=capsys)

    assert with_author["n_raters"] == 3
    assert without["n_raters"] == 2
    assert without["mtbench_agreement"]["with_ties"]["pairs"] == 12


def test_rater_heatmap_gives_pairwise_agreement_on_shared_comparisons(
    rated: Rated, capsys: pytest.CaptureFixture[str]
) -> None:
    heat = agreement_json(rated, capsys=capsys)["rater_heatmap"]

    i, j = heat["raters"].index("expert_1"), heat["raters"].index(rated.alice.pseudonym)
    assert heat["matrix"][i][j] == pytest.approx(0.75)
    assert heat["shared"][i][j] == 12
    assert heat["matrix"][i][i] is None


def test_agreement_summary_is_readable(rated: Rated, capsys: pytest.CaptureFixture[str]) -> None:
    call_command("agreement", rated.campaign.slug, "--bootstrap", "0")
    out = capsys.readouterr().out

    assert "MT-Bench agreement with ties: 0.7500 (9/12)" in out
    assert "judge gpt-judge" in out


def test_consistency_gate_makes_a_judges_two_opposite_orders_one_tie_in_the_agreement_report(
    rated: Rated, capsys: pytest.CaptureFixture[str]
) -> None:
    # The judge picks the output shown on the left in both orders of comparisons 0, 5 and 10.
    plain = agreement_json(rated, capsys=capsys)
    gated = agreement_json(rated, "--consistent", capsys=capsys)

    judge = {row["rater"]: row for row in gated["annotators"]}["gpt-judge"]
    before = {row["rater"]: row for row in plain["annotators"]}["gpt-judge"]
    assert "consistent" not in plain
    assert (gated["consistent"], gated["inconsistent_pairs"]) == (True, 3)
    assert (before["n_ratings"], judge["n_ratings"]) == (24, 21)
    # Nine consistent comparisons give one left and one right vote each; the three pairs gave two left votes.
    assert (before["left_share"]["left"], before["left_share"]["n"]) == (15, 24)
    assert (judge["left_share"]["left"], judge["left_share"]["n"]) == (9, 18)
    # Position consistency measures what the gate hides, so it is taken on the ratings as given.
    assert gated["judges"][0]["position_consistency"] == plain["judges"][0]["position_consistency"]
    assert gated["judges"][0]["position_consistency"]["agree"] == 9
    # A contradicting judge already counted once, as a tie, in the unit-level figures; humans are untouched.
    assert gated["judges"][0]["agreement_with_human_majority"] == plain["judges"][0]["agreement_with_human_majority"]
    assert gated["mtbench_agreement"] == plain["mtbench_agreement"]
    assert gated["manifest"]["options"]["consistent"] is True
    call_command("agreement", rated.campaign.slug, "--bootstrap", "0", "--consistent")
    assert "consistency gate: 3 judge comparisons" in capsys.readouterr().out


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
