"""manage.py add_judge, judge and serve_local_llm."""

from __future__ import annotations

import time
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction

from annotation.models import Campaign
from judging import services
from judging.models import JudgeConfig, JudgeRun
from tests.judging.conftest import LocalLLM


def _call(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_add_judge_creates_then_updates_the_same_judge(db: None) -> None:
    created = _call("add_judge", "gpt", "--base-url", "http://127.0.0.1:8001/v1", "--model", "local-judge",
                    "--template", "arena_hard", "--price-input", "2.5", "--one-order")  # fmt: skip
    assert created.startswith("created judge gpt")
    updated = _call("add_judge", "gpt", "--max-concurrency", "4", "--api-key-env", "GPT_KEY")
    assert updated.startswith("updated judge gpt")
    judge = JudgeConfig.objects.get(name="gpt")
    assert (judge.template, judge.max_concurrency, judge.api_key_env, judge.both_orders) == (
        "arena_hard",
        4,
        "GPT_KEY",
        False,
    )
    assert str(judge.price_input_per_million) == "2.5000"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["new"], "--base-url and --model are required"),
        (["new", "--base-url", "http://x/v1", "--model", "m", "--temperature", "hot"], "--temperature: not a valid"),
        (["new", "--base-url", "http://x/v1", "--model", "m", "--temperature", "5"], "temperature: must be between"),
        (["new", "--base-url", "http://x/v1", "--model", "m", "--custom-template-file", "/nonexistent"], "cannot read"),
    ],
)
def test_add_judge_names_the_problem_and_creates_nothing(db: None, args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        _call("add_judge", *args)
    assert not JudgeConfig.objects.exists()


def test_judge_refuses_unknown_campaign_and_judge(campaign: Campaign) -> None:
    with pytest.raises(CommandError, match="no campaign with slug 'nope'"):
        _call("judge", "nope", "--judge", "x")
    with pytest.raises(CommandError, match="no judge named 'x'"):
        _call("judge", campaign.slug, "--judge", "x")


def test_judge_wait_shows_progress_and_a_summary(
    campaign: Campaign, local_llm: LocalLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, _ = local_llm()
    services.save_judge(name="local", base_url=url, model="local-judge", template="arena_hard")

    def judge_now(verdict_ids: list[int], countdown: float | None = None) -> None:  # stands in for a worker
        for verdict_id in verdict_ids:
            while (step := services.judge_verdict(verdict_id=verdict_id, worker="inline")).retry_in is not None:
                time.sleep(step.retry_in)

    monkeypatch.setattr(services, "enqueue_verdicts", judge_now)
    # The test's transaction never commits: run after-commit work at once, as a committed run would.
    monkeypatch.setattr(transaction, "on_commit", lambda callback, *args, **kwargs: callback())
    out = _call("judge", campaign.slug, "--judge", "local", "--limit", "3", "--wait", "--poll", "0.01")
    assert "6 verdicts" in out
    assert "6/6 ok 6" in out
    assert "completed: 6 judged, 0 unparseable, 0 failed" in out
    assert "position consistency" in out
    assert JudgeRun.objects.get().status == JudgeRun.Status.COMPLETED


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--fault-rate", "2"], "--fault-rate: must be between 0 and 1"), (["--faults", "flood"], "unknown kind")],
)
def test_serve_local_llm_refuses_bad_settings(args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        _call("serve_local_llm", *args)
