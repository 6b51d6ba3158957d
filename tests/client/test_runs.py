"""Panel runs through the client against a live server without a worker: started, listed, cancelled, resumed, and
followed by `wait` until the panel's verdicts are written (the member verdicts judged in the test's process by the
local OpenAI-compatible server, as a worker would)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User

from evalplatform_client import Conflict, PanelRun, Progress, ValidationError, WaitTimeout
from judging import panels
from judging import services as judging_services
from judging.localllm.server import LocalLLMServer, ServerConfig
from judging.models import JudgeVerdict
from judging.models import PanelRun as PanelRunRow
from tests.client.test_client import client_for, set_up

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def duo(settings: Any) -> Iterator[str]:
    """Start the local OpenAI-compatible server and two judges of it; return the name of their panel."""
    server = LocalLLMServer(ServerConfig(port=0))
    with server.running_in_thread() as url:
        settings.EVALPLATFORM_JUDGE_ALLOWED_ENDPOINTS = [url]
        settings.EVALPLATFORM_JUDGE_KEY_ENVS = []
        settings.EVALPLATFORM_JUDGE_PRIVATE_NETWORKS = []
        judges = [
            judging_services.save_judge(name=f"member-{i}", base_url=url, model="local-judge", template="arena_hard")[0]
            for i in range(2)
        ]
        panels.create_panel(name="duo", members=judges, owner=None, aggregation="majority")
        yield "duo"


def judge_members(run_id: int) -> None:
    """Judge the member runs' verdicts and finish the panel run, as the worker's tasks do."""
    row = PanelRunRow.objects.get(pk=run_id)
    for verdict_id in JudgeVerdict.objects.filter(run__in=row.member_runs.all()).values_list("pk", flat=True):
        judging_services.judge_verdict(verdict_id=verdict_id, worker="test")
    panels.finish_panel_run_if_done(run_id=run_id)


def test_a_panel_run_started_cancelled_resumed_and_listed_through_the_client(
    live_server: Any, researcher: User, duo: str, tmp_path: Path
) -> None:
    campaign = set_up(client_for(live_server, researcher), tmp_path)

    run = campaign.judge_panel(duo, limit=2, orders="one")

    assert isinstance(run, PanelRun)
    assert (run.status, run.data["total"]) == ("running", 4)  # 2 comparisons, one order, 2 members
    assert [member["judge"] for member in run.members] == ["member-0", "member-1"]
    assert run.cancel().status == "cancelled"
    assert {member["status"] for member in campaign.panel_run(run.id).members} == {"cancelled"}
    with pytest.raises(Conflict):
        run.cancel()
    assert run.resume().status == "running"
    assert campaign.panel_run(run.id).refresh().status == "running"
    assert [r.id for r in campaign.panel_runs(page_size=1)] == [run.id]
    with pytest.raises(ValidationError) as unknown:
        campaign.judge_panel("no-such-panel")
    assert "panel" in unknown.value.errors
    with pytest.raises(ValidationError) as bad_limit:
        campaign.judge_panel(duo, limit=0)
    assert "limit" in bad_limit.value.errors


def test_wait_follows_a_panel_run_until_its_verdicts_are_written(
    live_server: Any, researcher: User, duo: str, tmp_path: Path
) -> None:
    steps: list[Progress] = []
    polls: list[int] = []

    def worker_between_polls(seconds: float) -> None:
        polls.append(1)
        if len(polls) == 2:
            judge_members(run.id)

    client = client_for(live_server, researcher, progress=steps.append, poll_interval=0.01, sleep=worker_between_polls)
    campaign = set_up(client, tmp_path)
    run = campaign.judge_panel(duo, orders="both")
    with pytest.raises(WaitTimeout):
        run.wait(timeout=0)

    ended = run.wait(timeout=60)

    assert (ended.status, ended.data["n_verdicts"], ended.data["finished"]) == ("completed", 6, 12)
    assert ended.data["tokens_in"] == sum(member["tokens_in"] for member in ended.members) > 0
    assert [(s.what, s.total, s.finished) for s in steps[-1:]] == [(f"panel run #{run.id}", 12, True)]
    assert steps[-1].done == 12
    assert campaign.leaderboard(raters="duo")["n_battles"] == ended.data["n_verdicts"]  # the panel's ratings count
