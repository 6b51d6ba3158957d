"""Rater quality of a campaign: ``manage.py raters`` and the Dawid-Skene posterior on the agreement report."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from annotation.models import Campaign, Comparison
from annotation.rater_actions import act_on_rater
from results.agreement import compute_agreement
from results.raters import RaterSelection
from tests import factories
from tests.results.conftest import Rated, rate


def raters_json(rated: Rated, capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    call_command("raters", rated.campaign.slug, "--json", *args)
    report: dict[str, Any] = json.loads(capsys.readouterr().out)
    return report


def add_troll(rated: Rated) -> None:
    """Add a rater who always picks the worse model, shown on the left or the right in turn."""
    troll = factories.RaterFactory.create(name="troll")
    for i, comparison in enumerate(rated.comparisons):
        better, worse = sorted(o.model_name or "" for o in (comparison.output_a, comparison.output_b))
        rate(comparison, troll, worse, left=worse if i % 2 else better)
        rate(comparison, troll, worse, left=better if i % 2 else worse)


def test_raters_command_reports_every_rater_and_flags_one_who_votes_against_the_others(
    rated: Rated, capsys: pytest.CaptureFixture[str]
) -> None:
    add_troll(rated)

    report = raters_json(rated, capsys)

    by_name = {row["rater"]: row for row in report["raters"]}
    assert set(by_name) == {rated.alice.pseudonym, "expert_1", "gpt-judge", "troll"}
    assert report["n_votes"] == 6 * len(rated.comparisons)
    assert report["rater_mix"]["mixed"] is True
    assert report["raters"][0]["rater"] == "troll"
    assert by_name["troll"]["flagged"]
    assert "votes against the model's predictions" in by_name["troll"]["reasons"][0]
    # alice always chose the better model, always shown on the right: the model explains her 0% left share.
    assert by_name[rated.alice.pseudonym]["left_bias"] == 0.0
    assert not by_name[rated.alice.pseudonym]["flagged"]
    assert by_name["troll"]["competence"] < 0.5 < by_name["expert_1"]["competence"]


def test_raters_command_prints_a_table_with_its_rater_selection(
    rated: Rated, capsys: pytest.CaptureFixture[str]
) -> None:
    call_command("raters", rated.campaign.slug, "--raters", "humans", "--correction", "holm")
    out = capsys.readouterr().out

    assert "raters: humans, 2 humans and 0 judges" in out
    assert "expert_1" in out
    assert out.rstrip().endswith("of 2 raters flagged")
    with pytest.raises(CommandError, match="--alpha must be between 0 and 1"):
        call_command("raters", rated.campaign.slug, "--alpha", "2")


def test_agreement_report_carries_each_raters_competence_and_the_comparisons_posterior(rated: Rated) -> None:
    add_troll(rated)

    model = compute_agreement(rated.campaign, RaterSelection(), bootstrap=0)["rater_model"]

    competence = {row["rater"]: row["competence"] for row in model["raters"]}
    assert model["method"] == "dawid_skene"
    assert model["converged"]
    assert model["n_comparisons"] == len(rated.comparisons)
    assert competence["troll"] < 0.3 < 0.7 < competence[rated.alice.pseudonym]
    # one vote per rater and comparison: the judge's two orders are one
    assert {row["votes"] for row in model["raters"]} == {len(rated.comparisons)}
    least = model["least_certain"][0]
    assert set(least) == {"comparison_id", "verdict", "confidence"}
    assert 0.25 <= least["confidence"] <= 1.0
    assert model["n_confident"] <= model["n_comparisons"]


def test_raters_command_flags_a_rater_below_the_campaigns_gold_bar_with_its_count(
    rated: Rated, capsys: pytest.CaptureFixture[str]
) -> None:
    for comparison in rated.comparisons[:5]:  # the better model (first by name) is the known winner
        better = min((comparison.output_a, comparison.output_b), key=lambda o: o.model_name or "")
        Comparison.objects.filter(pk=comparison.pk).update(gold_verdict="win", gold_winner=better)
    Campaign.objects.filter(pk=rated.campaign.pk).update(gold_min_answered=5, gold_min_accuracy=0.9)
    rated.campaign.refresh_from_db()

    report = raters_json(rated, capsys)

    rows = {row["rater"]: row for row in report["raters"]}
    # the expert called comparisons 0 and 4 ties: 3 of 5; the judge's second order got comparison 0 wrong
    expert, judge = rows["expert_1"], rows["gpt-judge"]
    assert (expert["gold_answered"], expert["gold_correct"], expert["gold_accuracy"]) == (5, 3, 0.6)
    assert expert["flagged"]
    assert expert["reasons"] == ["gold accuracy 3/5 (60%) below the campaign's minimum of 90%"]
    assert (judge["gold_answered"], judge["gold_correct"]) == (10, 9)
    assert not judge["flagged"]  # 90%: at the bar
    assert rows[rated.alice.pseudonym]["gold_accuracy"] == 1.0
    assert (report["gold_min_answered"], report["gold_min_accuracy"]) == (5, 0.9)
    assert report["raters"][0]["rater"] == "expert_1"  # flagged raters first


def test_raters_command_table_shows_gold_and_standing(
    rated: Rated, researcher: User, capsys: pytest.CaptureFixture[str]
) -> None:
    act_on_rater(campaign=rated.campaign, rater=rated.expert, action="exclude", reason="x", actor=researcher)

    call_command("raters", rated.campaign.slug)
    lines = capsys.readouterr().out.splitlines()

    assert lines[1].split()[:2] == ["gold", "status"]
    expert = next(line for line in lines if "expert_1" in line)
    assert expert.split()[:2] == ["-", "excluded"]
