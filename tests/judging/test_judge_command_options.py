"""manage.py judge names the option at fault: a service's refusal (--limit, --orders) and a bad --poll or
--stall-seconds (a negative --poll was a traceback from time.sleep after the run had started)."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest
from django.core.management import CommandError, call_command

from annotation.models import Campaign
from judging import panels
from judging.models import JudgeConfig, JudgeRun

MakeJudge = Callable[..., JudgeConfig]


def refusal(*args: str) -> str:
    with pytest.raises(CommandError) as refused:
        call_command("judge", *args, stdout=io.StringIO(), stderr=io.StringIO())
    return str(refused.value)


def test_a_refused_limit_names_the_option_for_a_judge_and_a_panel(campaign: Campaign, make_judge: MakeJudge) -> None:
    members = [make_judge(name) for name in ("j1", "j2")]
    panels.create_panel(name="duo", members=members)

    assert refusal(campaign.slug, "--judge", "j1", "--limit", "0") == "--limit: must be at least 1"
    assert refusal(campaign.slug, "--judge", "j1", "--repeat", "1", "--limit", "0") == "--limit: must be at least 1"
    assert refusal(campaign.slug, "--panel", "duo", "--limit", "0") == "--limit: must be at least 1"
    assert not JudgeRun.objects.exists()


@pytest.mark.parametrize(
    ("option", "value"),
    [("--poll", "-1"), ("--poll", "nan"), ("--poll", "inf"), ("--stall-seconds", "-5"), ("--stall-seconds", "1e9")],
)
def test_poll_and_stall_seconds_must_be_a_bounded_time(
    campaign: Campaign, make_judge: MakeJudge, option: str, value: str
) -> None:
    make_judge("j1")

    message = refusal(campaign.slug, "--judge", "j1", "--wait", option, value)

    assert message == f"Error: argument {option}: must be 0 to 86400 seconds, not {value}"
    assert not JudgeRun.objects.exists()  # refused before a run starts
