from __future__ import annotations

import json
from typing import Any

import pytest
from django.core.management import CommandError, call_command

import scoring
from annotation.models import Output, Rating
from results.counts import battle_tally
from results.leaderboards import campaign_leaderboard, compute_leaderboard, elo_battles, win_rate_matrix
from results.models import BattleCountSnapshot
from results.raters import parse_raters
from tests import factories
from tests.results.conftest import Rated, rate


def leaderboard_json(rated: Rated, *args: str, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    call_command("leaderboard", rated.campaign.slug, "--json", *args)
    board: dict[str, Any] = json.loads(capsys.readouterr().out)
    return board


def test_battle_tally_turns_ratings_into_arena_battles_by_shown_side(rated: Rated) -> None:
    tally = battle_tally(rated.campaign, parse_raters("alice"))

    # alice saw the worse model on the left and always chose the better one (model-x < model-y < model-z).
    assert tally.counts == {
        ("model-y", "model-x", "model_b"): 4,
        ("model-z", "model-x", "model_b"): 4,
        ("model-z", "model-y", "model_b"): 4,
    }
    assert tally.skipped_unnamed == 0


def test_leaderboard_ranks_models_with_intervals_counts_and_elo(
    rated: Rated, capsys: pytest.CaptureFixture[str]
) -> None:
    board = leaderboard_json(rated, "--raters", "humans", "--bootstrap", "50", capsys=capsys)

    assert [row["model"] for row in board["ratings"]] == ["model-x", "model-y", "model-z"]
    top = board["ratings"][0]
    assert top["lower"] <= top["rating"] <= top["upper"]
    assert top["rank"] == 1
    assert top["votes"] == 16  # 8 comparisons with model-x, rated by alice and the expert
    assert top["wins"] + top["losses"] + top["ties"] == top["votes"]
    assert top["elo"] > 1000 > board["ratings"][-1]["elo"]
    assert board["n_battles"] == 24
    assert board["bootstrap"] == 50
    assert len(board["win_probability"]["matrix"]) == 3


def test_leaderboard_reports_ratings_of_outputs_without_model_names(rated: Rated) -> None:
    comparison = rated.comparisons[0]
    unnamed = Output.objects.create(prompt=comparison.prompt, model_name=None, text="anonymous answer")
    pair = factories.make_comparison(comparison.prompt, comparison.output_a, unnamed)
    rate(pair, rated.expert, "tie")

    board = compute_leaderboard(rated.campaign, parse_raters("humans"))

    assert board["skipped_unnamed"] == 1
    assert board["n_battles"] == 24


def test_leaderboard_is_recomputed_when_a_rating_arrives(rated: Rated) -> None:
    before = campaign_leaderboard(rated.campaign, parse_raters("humans"), with_elo=False)
    again = campaign_leaderboard(rated.campaign, parse_raters("humans"), with_elo=False)
    rate(rated.comparisons[1], factories.RaterFactory.create(name="late"), "tie")
    after = campaign_leaderboard(rated.campaign, parse_raters("humans"), with_elo=False)

    assert again == before
    assert after["n_battles"] == before["n_battles"] + 1


def test_side_by_side_ranks_humans_and_each_judge_with_rank_correlation(
    rated: Rated, capsys: pytest.CaptureFixture[str]
) -> None:
    board = leaderboard_json(rated, "--side-by-side", capsys=capsys)

    side = board["side_by_side"]
    assert side["groups"] == ["humans", "gpt-judge"]
    corr = side["correlation_with_humans"]["gpt-judge"]
    assert corr["n_models"] == 3
    assert corr["spearman"] == pytest.approx(1.0)
    assert corr["kendall"] == pytest.approx(1.0)


def test_leaderboard_table_and_errors(rated: Rated, capsys: pytest.CaptureFixture[str]) -> None:
    call_command("leaderboard", rated.campaign.slug, "--raters", "judges")
    out = capsys.readouterr().out
    assert "model-x" in out
    assert "raters judges" in out
    assert "raters: judges, 0 humans and 1 judge" in out
    board = leaderboard_json(rated, capsys=capsys)
    mix = {"raters": "all", "default": True, "humans": 2, "judges": 1, "mixed": True, "excluded": []}
    assert board["rater_mix"] == mix
    with pytest.raises(CommandError, match="no campaign 'nope'"):
        call_command("leaderboard", "nope")
    with pytest.raises(CommandError, match="no rater named ghost"):
        call_command("leaderboard", rated.campaign.slug, "--raters", "gpt-judge,ghost")


def test_battle_counts_are_brought_up_to_date_incrementally(rated: Rated) -> None:
    before = battle_tally(rated.campaign, parse_raters("humans"))
    snapshot = BattleCountSnapshot.objects.get(campaign=rated.campaign)
    rate(rated.comparisons[0], rated.expert, "model-y", left="model-y")  # second order by the expert
    after = battle_tally(rated.campaign, parse_raters("humans"))

    assert after.n_battles == before.n_battles + 1
    assert (
        after.counts[("model-y", "model-x", "model_a")] == before.counts.get(("model-y", "model-x", "model_a"), 0) + 1
    )
    snapshot.refresh_from_db()
    assert snapshot.max_rating_id == Rating.objects.latest("id").pk
    assert battle_tally(rated.campaign, parse_raters("humans"), full=True).counts == after.counts


def test_observed_win_rates_follow_the_leaderboards_rank_order() -> None:
    # alpha beat beta 3 of 4, tied gamma once in 2; gamma beat beta twice; the ranks put gamma first.
    counts = scoring.BattleCounts.from_arrays(
        ["alpha", "beta", "gamma"],
        wins=[[0, 3, 1], [1, 0, 0], [0, 2, 0]],
        ties=[[0, 0, 1], [0, 0, 0], [1, 0, 0]],
    )

    observed = win_rate_matrix(counts, order=["gamma", "alpha", "beta"])

    assert observed["models"] == ["gamma", "alpha", "beta"]
    assert observed["matrix"] == [[None, 0.25, 1.0], [0.75, None, 0.75], [0.0, 0.25, None]]
    assert observed["battles"] == [[0, 2, 2], [2, 0, 4], [2, 4, 0]]
    assert win_rate_matrix(counts)["models"] == ["alpha", "beta", "gamma"]


def ties(counts: dict[tuple[str, str, str], int]) -> dict[tuple[str, str, str], int]:
    return {key: n for key, n in counts.items() if key[2] == "tie"}


def test_consistency_gate_counts_a_judge_comparison_decided_differently_in_its_two_orders_as_one_tie(
    rated: Rated,
) -> None:
    # The judge picks the output shown on the left in both orders of comparisons 0, 5 and 10: two opposite votes.
    plain = battle_tally(rated.campaign, parse_raters("judges"))
    gated = battle_tally(rated.campaign, parse_raters("judges"), consistent=True)

    flipped = [rated.comparisons[i] for i in (0, 5, 10)]
    assert ties(plain.counts) == {}
    assert ties(gated.counts) == {(c.output_a.model_name, c.output_b.model_name, "tie"): 1 for c in flipped}
    assert gated.inconsistent_pairs == 3
    assert gated.n_battles == plain.n_battles - 3
    # The comparisons decided the same way in both orders keep both their votes.
    decided = {key: n for key, n in gated.counts.items() if key[2] != "tie"}
    assert sum(decided.values()) == plain.n_battles - 6
    assert all(plain.counts[key] >= n for key, n in decided.items())


def test_consistency_gate_leaves_humans_who_rated_both_orders_untouched(rated: Rated) -> None:
    comparison = rated.comparisons[1]
    _better, worse = sorted(o.model_name or "" for o in (comparison.output_a, comparison.output_b))
    rate(comparison, rated.expert, worse, left=worse)  # the expert chose better with it on the left, now worse

    assert battle_tally(rated.campaign, parse_raters("humans"), consistent=True).counts == (
        battle_tally(rated.campaign, parse_raters("humans")).counts
    )


def test_leaderboard_command_applies_the_consistency_gate_to_bradley_terry_and_elo(
    rated: Rated, capsys: pytest.CaptureFixture[str]
) -> None:
    plain = leaderboard_json(rated, "--raters", "judges", capsys=capsys)
    gated = leaderboard_json(rated, "--raters", "judges", "--consistent", capsys=capsys)

    assert "consistent" not in plain
    assert (gated["consistent"], gated["inconsistent_pairs"]) == (True, 3)
    assert gated["n_battles"] == plain["n_battles"] - 3
    assert sum(row["ties"] for row in gated["ratings"]) == 2 * 3  # each tie is counted for both its models
    assert sum(row["ties"] for row in plain["ratings"]) == 0
    assert gated["manifest"]["options"]["consistent"] is True
    elo = list(elo_battles(rated.campaign, parse_raters("judges"), consistent=True))
    assert len(elo) == gated["n_battles"]
    assert sum(winner == "tie" for _, _, winner in elo) == 3
    call_command("leaderboard", rated.campaign.slug, "--raters", "judges", "--consistent")
    assert "consistency gate: 3 judge comparisons" in capsys.readouterr().out
    with pytest.raises(CommandError, match="consistent applies"):
        call_command("leaderboard", rated.campaign.slug, "--consistent", "--combine", "ppi")
