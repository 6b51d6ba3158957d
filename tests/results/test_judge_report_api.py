"""GET /api/v1/judges/<judge>/report/: the judge report for researchers, scoped to their judges and campaigns."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from annotation.models import Campaign
from annotation.rater_actions import act_on_rater
from judging import services
from judging.models import JudgeConfig
from tests import factories
from tests.results.conftest import Rated

Client = Callable[[User | None], APIClient]


@pytest.fixture
def judge(rated: Rated, settings: Any) -> JudgeConfig:
    """The operator's judge whose rater rated the campaign (the fixture's gpt-judge ratings)."""
    settings.EVALPLATFORM_JUDGE_ALLOWED_ENDPOINTS = ["http://127.0.0.1:8001/v1"]
    judge, _ = services.save_judge(name="gpt-judge", base_url="http://127.0.0.1:8001/v1", model="gpt-4")
    return judge


def test_researcher_gets_the_report_by_name_or_id(
    campaign: Campaign, judge: JudgeConfig, researcher: User, api_client_for: Client
) -> None:
    client = api_client_for(researcher)
    by_name = client.get(f"/api/v1/judges/{judge.name}/report/?campaign={campaign.slug}&bootstrap=20")
    by_id = client.get(f"/api/v1/judges/{judge.pk}/report/?bootstrap=0")
    assert by_name.status_code == by_id.status_code == 200
    assert by_name.json()["campaigns"] == by_id.json()["campaigns"] == [campaign.slug]
    (version,) = by_name.json()["versions"]
    assert version["version"] == "unversioned"  # ratings made without a run
    assert version["humans"]["n_with_human_majority"] > 0


@pytest.mark.parametrize("query", ["bootstrap=-1", "bootstrap=x", "bootstrap=99999", "seed=-3", "campaign=a%20b"])
def test_bad_parameters_are_a_400(judge: JudgeConfig, researcher: User, api_client_for: Client, query: str) -> None:
    response = api_client_for(researcher).get(f"/api/v1/judges/{judge.pk}/report/?{query}")
    assert response.status_code == 400


def test_another_teams_judge_and_campaign_are_not_found(
    campaign: Campaign, judge: JudgeConfig, api_client_for: Client
) -> None:
    other = factories.UserFactory.create(username="other-researcher")
    factories.CampaignFactory.create(owner=other, slug="theirs")
    own_judge, _ = services.save_judge(name="private", base_url="http://127.0.0.1:8001/v1", model="m")
    services.set_judge_owner(judge=own_judge, owner=factories.UserFactory.create(username="owner-of-private"))
    client = api_client_for(other)
    assert client.get(f"/api/v1/judges/{judge.pk}/report/?campaign={campaign.slug}").status_code == 404
    assert client.get("/api/v1/judges/private/report/?campaign=theirs").status_code == 404
    assert client.get(f"/api/v1/judges/{judge.pk}/report/").json()["campaigns"] == []


def test_raters_excluded_from_results_are_left_out_but_the_judge_is_reported(
    campaign: Campaign, rated: Rated, judge: JudgeConfig, researcher: User, api_client_for: Client
) -> None:
    url = f"/api/v1/judges/{judge.pk}/report/?campaign={campaign.slug}&bootstrap=0"
    client = api_client_for(researcher)
    before = client.get(url).json()["n_human_ratings"]
    act_on_rater(campaign=campaign, rater=rated.expert, action="exclude", reason="spam", actor=researcher)
    act_on_rater(campaign=campaign, rater=rated.judge, action="exclude", reason="audit", actor=researcher)
    after = client.get(url).json()
    assert after["n_human_ratings"] == before - len(rated.comparisons)  # the expert rated each comparison once
    assert after["versions"][0]["n_ratings"] == 2 * len(rated.comparisons)
