from __future__ import annotations

import json
from typing import Any

import pytest
from django.core.management import call_command

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
