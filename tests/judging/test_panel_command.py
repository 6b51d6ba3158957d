from __future__ import annotations

import io
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from annotation.models import Campaign
from judging import panels, services
from judging.management.commands import _panels as panel_command
from judging.models import JudgeConfig, JudgePanel, JudgeVerdict, PanelRun
from tests.judging.conftest import LocalLLM

MakeJudge = Callable[..., JudgeConfig]


@pytest.fixture
def panel(make_judge: MakeJudge, local_llm: LocalLLM) -> JudgePanel:
    judges = []
    for i, bias in enumerate((0.0, 1.0, 0.5)):
        url, _ = local_llm(position_bias=bias, seed=i)
        judges.append(make_judge(f"member-{i}", base_url=url, price_input_per_million=Decimal(1)))
    return panels.create_panel(name="trio", members=judges)


def worker(seconds: float) -> None:
    """Stand in for the workers between polls: judge every member verdict still pending."""
    for verdict_id in JudgeVerdict.objects.filter(state=JudgeVerdict.State.PENDING).values_list("pk", flat=True):
        services.judge_verdict(verdict_id=verdict_id, worker="test")


def run_command(*args: str) -> str:
    out = io.StringIO()
    call_command("judge", *args, stdout=out)
    return out.getvalue()


def test_judge_panel_wait_runs_the_members_and_writes_the_panels_verdicts(
    campaign: Campaign, panel: JudgePanel, sent: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(panel_command, "sleep", worker)

    out = run_command(campaign.slug, "--panel", "trio", "--limit", "2", "--wait", "--poll", "0")

    run = PanelRun.objects.get()
    assert run.status == PanelRun.Status.COMPLETED
    assert f"panel run #{run.pk}: trio on {campaign.slug} (majority); member runs #" in out
    assert "12/12 member verdicts" in out
    assert f"panel run #{run.pk} completed: 4 panel verdicts; members' tokens {run.tokens_in} in" in out
    assert run.tokens_in > 0


def test_judge_panel_refuses_another_teams_panel_and_judge_options(
    campaign: Campaign, panel: JudgePanel, outsider: User, researcher: User
) -> None:
    with pytest.raises(CommandError, match="no judge panel named 'nobody'"):
        run_command(campaign.slug, "--panel", "nobody")
    with pytest.raises(CommandError, match="--judge, --repeat and --seed do not apply"):
        run_command(campaign.slug, "--panel", "trio", "--judge", "member-0")
    with pytest.raises(CommandError, match="--watch: no panel run #999"):
        run_command(campaign.slug, "--panel", "trio", "--watch", "999")
    with pytest.raises(CommandError, match="limit: must be at least 1"):
        run_command(campaign.slug, "--panel", "trio", "--limit", "0")
    mine = panels.create_panel(name="mine", members=list(panel.members.all()), owner=researcher)
    with pytest.raises(CommandError, match="is not a researcher"):
        run_command(campaign.slug, "--panel", mine.name, "--requested-by", outsider.username)


def test_judge_panel_cancel_then_resume_completes(
    campaign: Campaign, panel: JudgePanel, sent: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(panel_command, "sleep", worker)
    run_command(campaign.slug, "--panel", "trio", "--limit", "1")
    run = PanelRun.objects.get()

    assert "cancelled" in run_command(campaign.slug, "--panel", "trio", "--cancel", str(run.pk))
    with pytest.raises(CommandError, match="not running"):
        run_command(campaign.slug, "--panel", "trio", "--cancel", str(run.pk))
    out = run_command(campaign.slug, "--panel", "trio", "--resume", str(run.pk), "--wait", "--poll", "0")
    assert f"panel run #{run.pk} completed: 2 panel verdicts" in out
