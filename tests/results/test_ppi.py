"""The campaign's human + judge leaderboard (results/ppi.py): SQL pairing, command, API."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client

import scoring
from annotation.models import Campaign, Comparison, Output, Prompt, Rater
from results.leaderboards import campaign_leaderboard
from results.ppi import compute_ppi_leaderboard
from results.raters import parse_raters
from scoring import cli as scoring_cli
from tests import factories
from tests.results.conftest import rate

STRENGTH = {"model-x": 0.6, "model-y": 0.0, "model-z": -0.5}


@dataclass
class Mixed:
    campaign: Campaign
    labelled: list[tuple[str, str, float, float]]
    unlabelled: list[tuple[str, str, float]]


def score(comparison: Comparison, winner: str) -> float:
    """Return a verdict's score for output_a (1 win, 0 loss, 0.5 a tie or both bad)."""
    if winner in ("tie", "both_bad"):
        return 0.5
    return 1.0 if winner == comparison.output_a.model_name else 0.0


@pytest.fixture
def mixed(researcher: User) -> Mixed:
    """40 prompts x 3 models: humans rate the first 30 comparisons, a judge (90% in line with them) all 120."""
    campaign = factories.CampaignFactory.create(owner=researcher, status="active")
    comparisons = factories.populate_campaign(campaign, prompts=40, models=list(STRENGTH))
    humans = [factories.RaterFactory.create(name=f"human-{k}") for k in range(2)]
    judge = factories.RaterFactory.create(name="gpt-judge", kind=Rater.Kind.JUDGE)
    rng = np.random.default_rng(0)
    labelled, unlabelled = [], []
    for i, comparison in enumerate(comparisons):
        a, b = comparison.output_a.model_name or "", comparison.output_b.model_name or ""
        p = 1 / (1 + np.exp(STRENGTH[b] - STRENGTH[a]))
        human = a if rng.random() < p else b
        verdict = human if rng.random() < 0.9 else "tie"
        rate(comparison, judge, verdict, left=a)
        judge_scores = [score(comparison, verdict)]
        if i % 3 == 0:  # the judge also saw the other order and said the same
            rate(comparison, judge, verdict, left=b)
            judge_scores.append(score(comparison, verdict))
        if i < 30:
            rate(comparison, humans[0], human, left=b)
            human_scores = [score(comparison, human)]
            if i % 4 == 0:  # a second human who calls it both bad
                rate(comparison, humans[1], "both_bad")
                human_scores.append(0.5)
            labelled.append((a, b, float(np.mean(human_scores)), float(np.mean(judge_scores))))
        else:
            unlabelled.append((a, b, float(np.mean(judge_scores))))
    return Mixed(campaign, labelled, unlabelled)


def test_the_combined_leaderboard_is_scoring_ppi_on_the_paired_comparisons(mixed: Mixed) -> None:
    report = compute_ppi_leaderboard(mixed.campaign, parse_raters("all"))
    expected = scoring.ppi_bradley_terry(mixed.labelled, mixed.unlabelled)

    assert report["n_labelled"] == 30
    assert report["n_unlabelled"] == 90
    assert report["lambda"] == pytest.approx(expected.lam, abs=1e-12)
    assert report["models"] == list(expected.models)
    for got, want in zip(report["ratings"], expected.ratings, strict=True):
        assert got["rating"] == pytest.approx(want.rating, abs=1e-9)
        assert got["lower"] == pytest.approx(want.lower, abs=1e-9)
        assert got["se_human"] == pytest.approx(want.se_human, abs=1e-9)


def test_human_ratings_without_a_judge_are_counted_and_left_out(mixed: Mixed) -> None:
    extra = factories.RaterFactory.create(name="late-human")
    prompt = Prompt.objects.create(campaign=mixed.campaign, external_id="unjudged", text="Unjudged question.")
    x, y = (Output.objects.create(prompt=prompt, model_name=m, text=f"{m} answers.") for m in ("model-x", "model-y"))
    unjudged = factories.make_comparison(prompt, x, y)
    rate(unjudged, extra, "model-x")
    report = compute_ppi_leaderboard(mixed.campaign, parse_raters("all"))
    assert report["human_only_comparisons"] == 1
    assert any("by no judge are left out" in w for w in report["warnings"])
    assert report["n_labelled"] == 30


def test_a_campaign_without_judge_only_comparisons_gets_a_warning_not_an_error(mixed: Mixed) -> None:
    report = compute_ppi_leaderboard(mixed.campaign, parse_raters("humans"))
    assert report["ratings"] == []
    assert report["warnings"] == ["no comparisons rated by both humans and a judge between named models"]


def test_command_prints_json_and_a_table_and_refuses_bootstrap(
    mixed: Mixed, capsys: pytest.CaptureFixture[str]
) -> None:
    call_command("leaderboard", mixed.campaign.slug, "--combine", "ppi", "--json")
    board: dict[str, Any] = json.loads(capsys.readouterr().out)
    assert board["method"] == "bradley_terry_ppi"
    assert board["ratings"][0]["model"] == "model-x"
    call_command("leaderboard", mixed.campaign.slug, "--combine", "ppi")
    assert "humans only" in capsys.readouterr().out
    with pytest.raises(CommandError, match="leave bootstrap at 0"):
        call_command("leaderboard", mixed.campaign.slug, "--combine", "ppi", "--bootstrap", "10")


def test_combined_leaderboard_is_cached_separately_from_the_plain_one(mixed: Mixed) -> None:
    plain = campaign_leaderboard(mixed.campaign, parse_raters("all"))
    combined = campaign_leaderboard(mixed.campaign, parse_raters("all"), combine="ppi")
    assert "lambda" not in plain
    assert combined["combine"] == "ppi"


def test_api_takes_combine_ppi_and_validates_it(mixed: Mixed, researcher: User, api_client_for: Any) -> None:
    client = api_client_for(researcher)
    url = f"/api/v1/research/campaigns/{mixed.campaign.slug}/leaderboard/"
    board = client.get(url, {"combine": "ppi"})
    assert board.status_code == 200
    assert board.json()["n_labelled"] == 30
    assert client.get(url, {"combine": "mean"}).status_code == 400
    refused = client.get(url, {"combine": "ppi", "bootstrap": "5"})
    assert refused.status_code == 400
    assert "bootstrap" in json.dumps(refused.json())


def test_site_page_shows_the_combined_table_beside_the_humans_only_rating(mixed: Mixed, researcher: User) -> None:
    client = Client()
    client.force_login(researcher)
    response = client.get(f"/results/{mixed.campaign.slug}/combined/")
    page = response.content.decode()
    report = compute_ppi_leaderboard(mixed.campaign, parse_raters("all"))
    best = report["ratings"][0]

    assert response.status_code == 200
    assert "30 comparisons rated by humans and a judge" in page
    assert f"{best['rating']:.1f}" in page
    assert f"{best['rating_human']:.1f}" in page
    assert f"{round(100 * (1 - best['se'] / best['se_human']))}%" in page
    assert page.count("<svg") == 1
    assert 'aria-current="page">Humans + judges' in page


def test_site_page_refuses_strangers(mixed: Mixed, other_annotator: User) -> None:
    client = Client()
    client.force_login(other_annotator)
    assert client.get(f"/results/{mixed.campaign.slug}/combined/").status_code in (403, 404)


def test_the_arena_export_feeds_scoring_rank_combine_ppi(
    mixed: Mixed, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "battles.jsonl"
    call_command("export", mixed.campaign.slug, "--format", "arena", "--out", str(out))
    kinds = [json.loads(line)["rater_kind"] for line in out.read_text().splitlines()]
    assert kinds.count("human") == 30 + 8  # the first human on 30 comparisons, the second on every fourth
    assert kinds.count("llm") == 120 + 40  # the judge on all 120, in the other order on every third
    capsys.readouterr()

    assert scoring_cli.main(["rank", str(out), "--combine", "ppi", "--format", "json"]) == 0
    board = json.loads(capsys.readouterr().out)
    report = compute_ppi_leaderboard(mixed.campaign, parse_raters("all"))
    assert [row["model"] for row in board["ratings"]] == [row["model"] for row in report["ratings"]]
