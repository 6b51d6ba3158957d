"""The judge report page: linked from the campaign's results, lists its judges, shows one's report."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from annotation.models import Campaign
from judging import services
from judging.models import JudgeConfig
from tests.results.conftest import Rated


@pytest.fixture
def judge(rated: Rated, settings: Any) -> JudgeConfig:
    settings.EVALPLATFORM_JUDGE_ALLOWED_ENDPOINTS = ["http://127.0.0.1:8001/v1"]
    judge, _ = services.save_judge(name="gpt-judge", base_url="http://127.0.0.1:8001/v1", model="gpt-4")
    return judge


def test_page_shows_the_only_judge_report_and_the_results_link_to_it(
    campaign: Campaign, judge: JudgeConfig, researcher: User, client: Client
) -> None:
    client.force_login(researcher)
    results = client.get(f"/results/{campaign.slug}/")
    page = client.get(f"/results/{campaign.slug}/judge-report/")
    assert f"/results/{campaign.slug}/judge-report/" in results.content.decode()
    assert page.status_code == 200
    text = page.content.decode()
    assert "Version <code>unversioned</code>" in text
    assert "Agreement with the human majority" in text
    assert "Answer shown first preferred" in text


def test_annotators_are_refused_and_unknown_judges_are_404(
    campaign: Campaign, judge: JudgeConfig, annotator: User, researcher: User, client: Client
) -> None:
    client.force_login(annotator)
    assert client.get(f"/results/{campaign.slug}/judge-report/").status_code == 403
    client.force_login(researcher)
    assert client.get(f"/results/{campaign.slug}/judge-report/?judge=nobody").status_code == 404
