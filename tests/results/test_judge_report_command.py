"""What `manage.py judge_report` prints when a figure cannot be computed, and for a panel's name."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from annotation.models import Campaign, Output, Prompt
from judging import panels, services
from judging.models import JudgeConfig
from tests import factories


def _judge(name: str) -> JudgeConfig:
    judge, _ = services.save_judge(name=name, base_url="http://127.0.0.1:8001/v1", model=name, timeout_seconds=2.0)
    return judge


@pytest.fixture
def longer_wins(researcher: User) -> Campaign:
    """A campaign whose judge always picks the longer answer (in both orders) and whose human picks at random."""
    campaign = factories.CampaignFactory.create(owner=researcher, slug="longer-wins")
    judge, human = _judge("length-lover"), factories.RaterFactory.create(name="expert_1")
    for i in range(8):
        prompt = Prompt.objects.create(campaign=campaign, external_id=f"q{i}", text=f"Question {i}?")
        short = Output.objects.create(prompt=prompt, model_name="terse", text="word " * (1 + i))
        long = Output.objects.create(prompt=prompt, model_name="verbose", text="word " * (20 + 5 * i))
        comparison = factories.make_comparison(prompt, short, long)
        for left in (short, long):
            factories.make_rating(comparison, judge.rater, winner=long, left_output=left)
        factories.make_rating(comparison, human, winner=short if i % 2 else long)
    return campaign


@pytest.mark.django_db
def test_a_slope_that_does_not_exist_says_why_instead_of_na_alone(longer_wins: Campaign) -> None:
    out = StringIO()

    call_command("judge_report", "length-lover", "--campaign", "longer-wins", "--bootstrap", "0", stdout=out)

    line = next(line for line in out.getvalue().splitlines() if "length slope" in line)
    assert line.startswith(
        "  length slope: judge n/a (16 decisive ratings but no finite slope: the longer (or shorter) answer always "
        "wins, every verdict goes one way, or the lengths do not vary), humans "
    )
    assert "(p n/a)" not in line


@pytest.mark.django_db
def test_a_panels_name_is_told_apart_from_an_unknown_judge() -> None:
    members = [_judge(name) for name in ("j1", "j2")]
    panels.create_panel(name="duo", members=members, owner=None, aggregation="majority")

    with pytest.raises(CommandError) as refused:
        call_command("judge_report", "duo")

    assert str(refused.value).startswith("judge: 'duo' is a judge panel; the report covers one judge: run it for each")
    assert "(j1, j2)" in str(refused.value)
    with pytest.raises(CommandError, match="no judge named 'nobody'"):
        call_command("judge_report", "nobody")
