"""Campaign leaderboards with vote influence and Chatbot Arena's high-frequency downsampling."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client

from annotation.models import Campaign, Prompt
from annotation.prompt_hygiene import tag_campaign_duplicates
from evalplatform.exceptions import DomainError
from results.leaderboards import compute_leaderboard
from results.prompt_downsampling import downsampled_counts
from results.raters import RaterSelection
from results.reproduce import check_options
from tests import factories
from tests.results.conftest import Rated, rate


def _hot_prompt_campaign(researcher: User) -> Campaign:
    """Ten prompts model-a wins once each, and one prompt model-b wins with twelve raters."""
    campaign = factories.CampaignFactory.create(owner=researcher)
    comparisons = factories.populate_campaign(campaign, prompts=11, models=["model-a", "model-b"])
    raters = [factories.RaterFactory.create() for _ in range(12)]
    for comparison in comparisons[:10]:
        rate(comparison, raters[0], "model-a")
    for rater in raters:
        rate(comparisons[10], rater, "model-b")
    return campaign


def test_downsampling_caps_the_ratings_of_a_prompt_rated_far_more_than_the_others(researcher: User) -> None:
    campaign = _hot_prompt_campaign(researcher)
    found = downsampled_counts(campaign, RaterSelection(), percentile=0.5)
    assert found is not None
    counts, summary = found
    assert (summary.prompts, summary.high_frequency_prompts, summary.kept_per_prompt) == (11, 1, 1)
    assert summary.votes_dropped == 11
    index = {name: k for k, name in enumerate(counts.models)}
    assert counts.wins[index["model-a"], index["model-b"]] == 10
    assert counts.wins[index["model-b"], index["model-a"]] == 1


def test_compute_leaderboard_with_downsampling_and_influence(researcher: User) -> None:
    campaign = _hot_prompt_campaign(researcher)
    plain = compute_leaderboard(campaign, RaterSelection(), influence=True)
    assert plain["models"] == ["model-b", "model-a"]  # 12 votes of one prompt outweigh 10 prompts
    assert plain["ratings"][0]["n_votes_to_flip"] == 3  # 12 against 10: at 10-10 they tie, at 9-10 they swap
    down = compute_leaderboard(campaign, RaterSelection(), downsample=True)
    # 1,001+ prompts would be needed for the 99.9th percentile to cap here: with 11 the cutoff is near the top.
    assert down["downsampling"]["percentile"] == 0.999
    assert down["n_battles"] == 22 - down["downsampling"]["votes_dropped"]


def test_leaderboard_api_takes_influence_and_downsample_and_refuses_bad_values(
    rated: Rated, researcher: User, api_client_for: object
) -> None:
    client = api_client_for(researcher)  # type: ignore[operator]
    base = f"/api/v1/research/campaigns/{rated.campaign.slug}/leaderboard/"
    board = client.get(base, {"raters": "humans", "influence": "1"}).json()
    assert "influence" in board
    assert all("n_votes_to_flip" in row and "fragile" in row for row in board["ratings"])
    assert board["manifest"]["options"]["influence"] is True
    down = client.get(base, {"downsample": "1"}).json()
    assert down["downsampling"]["votes_before"] == down["n_battles"] + down["downsampling"]["votes_dropped"]
    assert client.get(base, {"downsample": "maybe"}).status_code == 400
    refused = client.get(base, {"downsample": "1", "consistent": "1"})
    assert refused.status_code == 400
    assert "downsample" in json.dumps(refused.json())
    refused = client.get(base, {"influence": "1", "combine": "ppi"})
    assert refused.status_code == 400
    assert "influence" in json.dumps(refused.json())


def test_leaderboard_command_prints_the_swap_counts_and_the_downsampling(rated: Rated) -> None:
    out = StringIO()
    call_command("leaderboard", rated.campaign.slug, "--influence", "--downsample-high-freq", stdout=out)
    text = out.getvalue()
    assert "swap model-x / model-y:" in text
    assert "downsampled: " in text


@pytest.mark.parametrize("flag", ["influence", "downsample"])
def test_reproduce_refuses_a_manifest_whose_new_option_is_not_a_boolean(flag: str) -> None:
    options = {"bootstrap": 0, "seed": 0, "combine": None, "with_elo": True, flag: "yes"}
    with pytest.raises(DomainError, match=f"options.{flag} must be true or false"):
        check_options("leaderboard", options)
    check_options("leaderboard", {**options, flag: True})


def test_the_leaderboard_page_shows_the_swap_column_and_the_prompt_hygiene_line(
    rated: Rated, researcher: User, client: Client
) -> None:
    client.force_login(researcher)
    page = f"/results/{rated.campaign.slug}/"
    plain = client.get(page).content.decode()
    assert "How many votes would swap each pair?" in plain
    assert "Votes to swap with next" not in plain
    shown = client.get(page, {"influence": "1"}).content.decode()
    assert "Votes to swap with next" in shown
    assert client.get(page, {"influence": "maybe"}).status_code == 400
    Prompt.objects.filter(id=rated.comparisons[0].prompt_id).update(text="Hello, world!")
    Prompt.objects.filter(id=rated.comparisons[-1].prompt_id).update(text="hello world")
    tag_campaign_duplicates(campaign=rated.campaign)
    assert "Prompt hygiene: 2 prompts in 1 groups of duplicates" in client.get(page).content.decode()
