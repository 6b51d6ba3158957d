"""A panel run end to end with a real Celery worker, a real broker and three judges on local servers: the members'
runs, the finishing task, and a worker killed in the middle (as tests/judging/test_worker.py does for runs)."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from annotation.models import Campaign, Rating
from judging import panels, services
from judging.models import JudgeVerdict, PanelRun, PanelVerdict
from tests.judging.conftest import LocalLLM
from tests.judging.test_worker import LIVENESS_SECONDS, big_campaign, broker_env, start_worker  # noqa: F401

pytestmark = [pytest.mark.worker, pytest.mark.slow]


def wait_for_panel_run(run: PanelRun, until: Callable[[PanelRun], bool]) -> PanelRun:
    deadline = time.monotonic() + LIVENESS_SECONDS
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if until(run):
            return run
        time.sleep(0.2)
    raise AssertionError(f"panel run #{run.pk} did not get there: {run.status}, {panels.panel_progress(run)}")


@pytest.mark.django_db(transaction=True)
def test_a_panel_run_completes_in_the_workers_even_when_one_is_killed_mid_run(
    big_campaign: Campaign,  # noqa: F811
    local_llm: LocalLLM,
    start_worker: Callable[..., Any],  # noqa: F811
) -> None:
    members = []
    for i, bias in enumerate((0.0, 1.0, 0.5)):
        url, _ = local_llm(latency_ms=30, position_bias=bias, seed=i)
        judge, _ = services.save_judge(
            name=f"member-{i}", base_url=url, model="local-judge", timeout_seconds=2.0, max_concurrency=4,
            requests_per_minute=60_000, price_input_per_million=Decimal(1),
        )  # fmt: skip
        members.append(judge)
    panel = panels.create_panel(name="trio", members=members)
    worker = start_worker(concurrency=4)
    run = panels.start_panel_run(campaign=big_campaign, panel=panel)
    member_verdicts = JudgeVerdict.objects.filter(run__in=run.member_runs.all())

    wait_for_panel_run(run, lambda r: member_verdicts.filter(state=JudgeVerdict.State.DONE).count() >= 30)
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait(timeout=10)
    start_worker(concurrency=4)
    panels.resume_panel_run(run=run)  # what judge --panel --wait does when claims outlive their lease
    run = wait_for_panel_run(run, lambda r: r.status != PanelRun.Status.RUNNING)

    assert run.status == PanelRun.Status.COMPLETED
    assert run.n_verdicts == 2 * big_campaign.comparisons.count() == 60
    assert Rating.objects.filter(rater=panel.rater).count() == 60
    votes: dict[tuple[int, str], list[str]] = {}
    for verdict in member_verdicts.filter(state=JudgeVerdict.State.DONE):
        assert verdict.parsed is not None
        votes.setdefault((verdict.comparison_id, verdict.order), []).append(verdict.parsed["outcome"])
    for panel_verdict in PanelVerdict.objects.filter(run=run):
        given = votes[(panel_verdict.comparison_id, panel_verdict.order)]
        outcome, n = Counter(given).most_common(1)[0]
        assert panel_verdict.outcome == (outcome if 2 * n > len(given) else "tie")
    assert run.tokens_in == sum(v.tokens_in for v in member_verdicts)
    assert run.cost == sum((v.cost for v in member_verdicts), Decimal(0)) > 0
