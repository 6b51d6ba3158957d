"""Raters excluded from results: left out of every leaderboard, agreement report, rating list and export by default,
stated in each, counted again on request, and reproduced as recorded."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from annotation.models import AnnotatorStatus
from annotation.rater_actions import act_on_rater
from evalplatform.exceptions import DomainError
from results.leaderboards import campaign_leaderboard
from results.rater_exclusions import parse_include_excluded, recorded_exclusions, with_exclusions
from results.raters import RaterSelection
from results.tasks import refresh_leaderboards
from tests import factories
from tests.results.conftest import Rated, rate, streamed

ClientFor = Callable[[User | None], APIClient]


@pytest.fixture
def troll(rated: Rated, researcher: User) -> Rated:
    """Add a rater who always picks the worse model, and exclude them from the campaign's results."""
    rater = factories.RaterFactory.create(name="troll")
    for comparison in rated.comparisons:
        better, worse = sorted(o.model_name or "" for o in (comparison.output_a, comparison.output_b))
        rate(comparison, rater, worse, left=better)
    act_on_rater(campaign=rated.campaign, rater=rater, action="exclude", reason="inverted", actor=researcher)
    cache.clear()
    return rated


def url(rated: Rated, tail: str = "") -> str:
    return f"/api/v1/research/campaigns/{rated.campaign.slug}/{tail}"


def board_json(rated: Rated, capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    call_command("leaderboard", rated.campaign.slug, "--json", *args)
    board: dict[str, Any] = json.loads(capsys.readouterr().out)
    return board


def test_the_leaderboard_command_leaves_an_excluded_rater_out_and_says_so(
    troll: Rated, capsys: pytest.CaptureFixture[str]
) -> None:
    default = board_json(troll, capsys)
    everyone = board_json(troll, capsys, "--include-excluded")

    assert default["raters"] == "all (excluded from results: troll)"
    assert default["rater_mix"]["excluded"] == ["troll"]
    assert default["rater_mix"]["default"] is True
    assert everyone["raters"] == "all"
    assert everyone["n_battles"] - default["n_battles"] == len(troll.comparisons)


def test_a_leaderboard_computed_before_an_exclusion_is_not_served_after_it(rated: Rated, researcher: User) -> None:
    cache.clear()
    before = campaign_leaderboard(rated.campaign, with_exclusions(RaterSelection(), rated.campaign))

    act_on_rater(campaign=rated.campaign, rater=rated.judge, action="exclude", reason="biased", actor=researcher)
    after = campaign_leaderboard(rated.campaign, with_exclusions(RaterSelection(), rated.campaign))

    assert after["n_battles"] == before["n_battles"] - 2 * len(rated.comparisons)  # the judge's two orders
    assert after["raters"] == "all (excluded from results: gpt-judge)"


def test_the_leaderboard_after_a_background_refresh_leaves_the_excluded_rater_out(troll: Rated) -> None:
    refresh_leaderboards(troll.campaign.pk)

    warm = campaign_leaderboard(troll.campaign, with_exclusions(RaterSelection(), troll.campaign))

    assert warm["raters"] == "all (excluded from results: troll)"
    assert warm["n_battles"] == 4 * len(troll.comparisons)  # alice, expert and the judge's two orders


def test_the_agreement_command_leaves_the_excluded_rater_out(troll: Rated, capsys: pytest.CaptureFixture[str]) -> None:
    call_command("agreement", troll.campaign.slug, "--json")
    default = json.loads(capsys.readouterr().out)
    call_command("agreement", troll.campaign.slug, "--json", "--include-excluded")
    everyone = json.loads(capsys.readouterr().out)

    def raters(report: dict[str, Any]) -> set[str]:
        return {row["rater"] for row in report["rater_model"]["raters"]}

    assert "troll" not in raters(default)
    assert "troll" in raters(everyone)


def test_the_api_leaves_the_excluded_rater_out_of_ratings_leaderboard_and_exports(
    troll: Rated, researcher: User, api_client_for: ClientFor
) -> None:
    client = api_client_for(researcher)

    ratings = client.get(url(troll, "ratings/"), {"limit": 500}).json()
    board = client.get(url(troll, "leaderboard/")).json()
    export = client.get(url(troll, "export/ratings.jsonl"))
    everyone = client.get(url(troll, "export/ratings.jsonl"), {"include_excluded": "1"})

    assert "troll" not in {row["rater"] for row in ratings["results"]}
    assert board["raters"] == "all (excluded from results: troll)"
    assert export["X-Export-Raters"] == (
        "raters: all (excluded from results: troll) (the default), 2 humans and 1 judge: humans and judges mixed; "
        "1 rater excluded from results by the researchers"
    )
    assert b'"troll"' not in streamed(export)
    assert b'"troll"' in streamed(everyone)
    assert client.get(url(troll, "leaderboard/"), {"include_excluded": "maybe"}).status_code == 400


def test_the_results_page_states_the_exclusion(troll: Rated, researcher: User) -> None:
    client = APIClient()
    client.force_login(researcher)

    page = client.get(f"/results/{troll.campaign.slug}/").content.decode()
    everyone = client.get(f"/results/{troll.campaign.slug}/", {"include_excluded": "1"}).content.decode()

    assert "raters: all (excluded from results: troll)" in page
    assert "excluded from results: troll" not in everyone


def test_an_excluded_rater_included_again_counts_again(
    troll: Rated, researcher: User, capsys: pytest.CaptureFixture[str]
) -> None:
    status = AnnotatorStatus.objects.get(rater__name="troll")
    act_on_rater(campaign=troll.campaign, rater=status.rater, action="include", reason="checked", actor=researcher)

    assert board_json(troll, capsys)["raters"] == "all"


def test_a_manifest_is_reproduced_with_the_raters_it_left_out_even_after_they_are_included_again(
    troll: Rated, researcher: User, capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    manifest = tmp_path / "manifest.json"
    call_command("leaderboard", troll.campaign.slug, "--json", "--manifest", str(manifest))
    capsys.readouterr()
    assert json.loads(manifest.read_text())["selection"]["excluded_raters"] == ["troll"]
    status = AnnotatorStatus.objects.get(rater__name="troll")
    act_on_rater(campaign=troll.campaign, rater=status.rater, action="include", reason="checked", actor=researcher)

    call_command("reproduce", str(manifest), "--json")
    report = json.loads(capsys.readouterr().out)

    assert report["identical"], report["differences"]


def test_recorded_exclusions_refuse_what_is_not_a_list_of_names(rated: Rated) -> None:
    with pytest.raises(DomainError, match="excluded_raters must be a list"):
        recorded_exclusions(RaterSelection(), rated.campaign, "troll")
    with pytest.raises(DomainError):
        recorded_exclusions(RaterSelection(), rated.campaign, ["a\x00"])
    assert recorded_exclusions(RaterSelection(), rated.campaign, ["gone"]).left_out == ()


@pytest.mark.parametrize(("value", "expected"), [(None, False), ("0", False), ("1", True), ("true", True)])
def test_include_excluded_takes_one_or_zero(value: str | None, expected: bool) -> None:
    assert parse_include_excluded(value) is expected


def test_a_bad_include_excluded_is_refused_on_the_command_line_as_well_as_the_api(troll: Rated) -> None:
    with pytest.raises(DomainError, match="include_excluded"):
        parse_include_excluded("2")
    with pytest.raises(CommandError):
        call_command("leaderboard", troll.campaign.slug, "--include-excluded=yes")
