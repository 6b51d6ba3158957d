"""What `manage.py leaderboard` prints for people: the columns explained, and what is missing when nothing is."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from annotation.models import Campaign
from tests import factories
from tests.results.conftest import Rated, rate


def test_the_table_explains_the_ub_column(rated: Rated, capsys: pytest.CaptureFixture[str]) -> None:
    call_command("leaderboard", rated.campaign.slug)

    out = capsys.readouterr().out
    assert " ub " in out.splitlines()[1]
    assert "ub: the best rank the 95% intervals allow" in out


def test_judges_on_a_campaign_no_judge_rated_say_no_judge_has_rated_it(
    campaign: Campaign, capsys: pytest.CaptureFixture[str]
) -> None:
    human = factories.RaterFactory.create(name="expert_1")
    for comparison in campaign.comparisons.select_related("output_a", "output_b")[:3]:
        rate(comparison, human, comparison.output_a.model_name)

    call_command("leaderboard", campaign.slug, "--raters", "judges")

    out = capsys.readouterr().out
    assert f"warning: no judge has rated {campaign.slug} yet: run manage.py judge {campaign.slug}" in out
    assert "no ratings between named models" not in out
    assert "ub: the best rank" not in out  # no table, nothing to explain


def test_a_campaign_without_ratings_says_so(campaign: Campaign, capsys: pytest.CaptureFixture[str]) -> None:
    call_command("leaderboard", campaign.slug)

    assert f"warning: {campaign.slug} has no ratings yet" in capsys.readouterr().out
