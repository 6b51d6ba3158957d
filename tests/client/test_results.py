"""The client's results calls against a live server on a rated campaign: every leaderboard option, length-controlled
win rates, agreement with the consistency gate, raters excluded from results and counted again, exports with their
options and manifest, and the server's refusals of options that do not go together as ValidationError."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from evalplatform_client import Campaign, ValidationError
from tests.client.test_client import client_for
from tests.results.conftest import Rated, rated

__all__ = ["rated"]  # the rated campaign of tests/results: alice, expert_1 and gpt-judge (both orders)

pytestmark = pytest.mark.django_db(transaction=True)
# gpt-judge decides comparisons 0, 5 and 10 (of 12) differently in its two orders.
INCONSISTENT = 3


def through_the_client(live_server: Any, researcher: User, rated: Rated) -> Campaign:
    return client_for(live_server, researcher).campaign(rated.campaign.slug)


def api_get(user: User, url: str) -> dict[str, Any]:
    client = APIClient()
    client.force_authenticate(user)
    response = client.get(url)
    assert response.status_code == 200, response.content
    body: dict[str, Any] = response.json()
    return body


def test_leaderboard_options_reach_the_server(live_server: Any, researcher: User, rated: Rated) -> None:
    campaign = through_the_client(live_server, researcher, rated)

    plain = campaign.leaderboard(raters="humans", bootstrap=20, seed=3)
    style = campaign.leaderboard(style_control=True, style_reg=0.0)
    rater_model = campaign.leaderboard(rater_model=True, cluster="rater")
    by_prompt = campaign.leaderboard(cluster="prompt")
    gated = campaign.leaderboard(consistent=True)
    fragile = campaign.leaderboard(influence=True)
    downsampled = campaign.leaderboard(downsample=True)
    combined = campaign.leaderboard(combine="ppi")

    url = f"/api/v1/research/campaigns/{rated.campaign.slug}/leaderboard/"
    assert plain["ratings"] == api_get(researcher, url + "?raters=humans&bootstrap=20&seed=3")["ratings"]
    assert (plain["raters"], plain["n_battles"]) == ("humans", 2 * len(rated.comparisons))
    assert style["style_control"] is True
    assert style["ratings"] == api_get(researcher, url + "?style_control=true&style_reg=0")["ratings"]
    assert {row["rater"] for row in rater_model["rater_model"]["raters"]} >= {"expert_1", "gpt-judge"}
    assert rater_model["manifest"]["options"]["cluster"] == "rater"
    assert by_prompt["manifest"]["options"]["cluster"] == "prompt"
    assert gated["inconsistent_pairs"] == INCONSISTENT
    assert all("n_votes_to_flip" in row for row in fragile["ratings"])
    assert "downsampling" in downsampled
    assert combined["ratings"] == api_get(researcher, url + "?combine=ppi")["ratings"]


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"cluster": "rater", "bootstrap": 10}, "bootstrap"),
        ({"rater_model": True, "cluster": "prompt"}, "cluster"),
        ({"style_control": True, "consistent": True}, "style_control"),
        ({"style_reg": -1.0, "style_control": True}, "style_reg"),
        ({"category": "nope"}, "category"),
        ({"exclude_raters": ["nobody*"], "raters": "nobody"}, "raters"),
    ],
)
def test_options_that_do_not_go_together_are_a_validation_error_naming_the_field(
    live_server: Any, researcher: User, rated: Rated, options: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        through_the_client(live_server, researcher, rated).leaderboard(**options)
    assert field in refused.value.errors, refused.value.errors


def test_length_controlled_win_rates_and_agreement_through_the_client(
    live_server: Any, researcher: User, rated: Rated
) -> None:
    campaign = through_the_client(live_server, researcher, rated)

    lc = campaign.length_controlled("model-z", difficulty="none", raters="humans")
    agreement = campaign.agreement(raters="all", bootstrap=0, consistent=True)

    url = f"/api/v1/research/campaigns/{rated.campaign.slug}/length-controlled/?baseline=model-z&difficulty=none"
    assert lc == api_get(researcher, url + "&raters=humans")
    assert lc["models"]
    assert {row["model"] for row in lc["models"]} <= {"model-x", "model-y", "model-z"}
    assert agreement["inconsistent_pairs"] == INCONSISTENT
    with pytest.raises(ValidationError) as unknown:
        campaign.length_controlled("no-such-model")
    assert "baseline" in unknown.value.errors


def test_a_rater_excluded_from_results_is_left_out_until_counted_again(
    live_server: Any, researcher: User, rated: Rated, tmp_path: Path
) -> None:
    campaign = through_the_client(live_server, researcher, rated)
    n = len(rated.comparisons)

    campaign.rater_action("expert_1", "exclude", "ties everything")
    left_out = campaign.leaderboard(raters="humans")
    counted = campaign.leaderboard(raters="humans", include_excluded=True)
    ratings = list(campaign.ratings(raters="humans", page_size=5))
    every_rating = list(campaign.ratings(raters="humans", include_excluded=True))
    categories = campaign.categories(exclude_raters=["gpt-*", "nobody"])
    report = campaign.raters()

    assert (left_out["n_battles"], left_out["manifest"]["selection"]["excluded_raters"]) == (n, ["expert_1"])
    assert (counted["n_battles"], counted["manifest"]["selection"]["excluded_raters"]) == (2 * n, [])
    assert "expert_1" in left_out["raters"]
    assert (len(ratings), len(every_rating)) == (n, 2 * n)
    assert categories["raters"] == "all -gpt-* -nobody (excluded from results: expert_1)"
    assert next(row for row in report["raters"] if row["rater"] == "expert_1")["excluded"] is True
    assert report["actions"][0] | {"created_at": ""} == {
        "rater": "expert_1", "action": "exclude", "reason": "ties everything", "actor": researcher.username,
        "created_at": "",
    }  # fmt: skip


def test_export_options_and_their_manifest_through_the_client(
    live_server: Any, researcher: User, rated: Rated, tmp_path: Path
) -> None:
    campaign = through_the_client(live_server, researcher, rated)

    every = campaign.export("ratings", tmp_path / "all.jsonl", raters="judges")
    gated = campaign.export("ratings", tmp_path / "gated.jsonl", raters="judges", consistent=True, manifest=True)
    posterior = campaign.export("dpo", tmp_path / "dpo.jsonl", aggregate="posterior", min_confidence=0.99)

    rows = [json.loads(line) for line in Path(gated.path).read_text().splitlines()]
    assert len(Path(every.path).read_text().splitlines()) == len(rows) == 2 * len(rated.comparisons)
    assert sum(1 for row in rows if row.get("inconsistent")) == 2 * INCONSISTENT
    assert gated.manifest_path is not None
    manifest = json.loads(Path(gated.manifest_path).read_text())
    assert manifest["options"]["consistent"] is True
    assert campaign.reproduce(manifest)["identical"] is True
    assert posterior.skipped_rows > 0
    with pytest.raises(ValidationError) as refused:
        campaign.export("dpo", tmp_path / "bad.jsonl", aggregate="majority", min_confidence=0.5)
    assert "min_confidence" in refused.value.errors
