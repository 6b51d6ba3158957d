"""manage.py add_judge, judge and serve_local_llm."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction
from django.utils import timezone

from annotation.models import Campaign
from judging import services
from judging.management.commands import judge as judge_command
from judging.models import JudgeConfig, JudgeRun, JudgeVerdict, ModelFamily
from tests.judging.conftest import LocalLLM


def _call(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_add_judge_creates_then_updates_the_same_judge(db: None, settings: Any) -> None:
    settings.EVALPLATFORM_JUDGE_KEY_ENVS = ["GPT_KEY"]
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
    family = ModelFamily.objects.create(name="local", patterns="local-*")
    _call("add_judge", "gpt", "--family", "local")
    assert JudgeConfig.objects.get(name="gpt").family == family
    _call("add_judge", "gpt", "--family", "")
    assert JudgeConfig.objects.get(name="gpt").family is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["new"], "--base-url and --model are required"),
        (["new", "--base-url", "http://x/v1", "--model", "m", "--temperature", "hot"], "--temperature: not a valid"),
        (["new", "--base-url", "http://x/v1", "--model", "m", "--temperature", "5"], "temperature: must be between"),
        (["new", "--base-url", "http://x/v1", "--model", "m", "--custom-template-file", "/nonexistent"], "cannot read"),
        (["new", "--base-url", "http://x/v1", "--model", "m", "--family", "gpt"], "no model family named 'gpt'"),
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
    assert "6/6 100% ok 6 unparseable 0 failed 0 in flight 0" in out
    assert "completed: 6 judged, 0 unparseable, 0 failed" in out
    assert "position consistency" in out
    assert JudgeRun.objects.get().status == JudgeRun.Status.COMPLETED


Enqueue = Callable[[list[int], float | None], None]


@pytest.fixture
def workers(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Return a setter of what happens to sent tasks, in order: judge, die, lose or cancel them (then judge).

    Tasks due later (a countdown) are judged when the command sleeps between polls once they are due, as a worker
    would judge them meanwhile; the rest at once.
    """
    later: list[tuple[float, list[int]]] = []
    real_sleep = time.sleep

    def judge_now(verdict_ids: list[int]) -> None:  # stands in for a live worker
        for verdict_id in verdict_ids:
            while (step := services.judge_verdict(verdict_id=verdict_id, worker="inline")).retry_in is not None:
                real_sleep(step.retry_in)

    def judge(verdict_ids: list[int], countdown: float | None) -> None:
        if countdown:
            later.append((time.monotonic() + countdown, verdict_ids))
        else:
            judge_now(verdict_ids)

    def die(verdict_ids: list[int], countdown: float | None) -> None:  # claims the batch and is killed
        gone = timezone.now() - timedelta(seconds=1)
        JudgeVerdict.objects.filter(pk__in=verdict_ids).update(state="claimed", claimed_by="dead", claimed_until=gone)

    def die_mid_call(verdict_ids: list[int], countdown: float | None) -> None:  # some leases end a little later
        die(verdict_ids, countdown)
        soon = timezone.now() + timedelta(seconds=1)
        JudgeVerdict.objects.filter(pk__in=verdict_ids[::2]).update(claimed_until=soon)

    def cancel(verdict_ids: list[int], countdown: float | None) -> None:  # someone cancels the run meanwhile
        services.cancel_run(run=JudgeRun.objects.get(verdicts=verdict_ids[0]))

    behaviours = {
        "judge": judge, "die": die, "die_mid_call": die_mid_call, "lose": lambda ids, countdown: None,
        "cancel": cancel,
    }  # fmt: skip

    def sleep(seconds: float) -> None:
        real_sleep(seconds)
        for due in [task for task in later if task[0] <= time.monotonic()]:
            later.remove(due)
            judge_now(due[1])

    def use(*steps: str) -> None:
        queue = list(steps)

        def enqueue(verdict_ids: list[int], countdown: float | None = None) -> None:
            behaviours[queue.pop(0) if queue else "judge"](list(verdict_ids), countdown)

        monkeypatch.setattr(services, "enqueue_verdicts", enqueue)
        monkeypatch.setattr(judge_command, "sleep", sleep)

    # The test's transaction never commits: run after-commit work at once, as a committed run would.
    monkeypatch.setattr(transaction, "on_commit", lambda callback, *args, **kwargs: callback())
    return use


@pytest.fixture
def local_judge(local_llm: LocalLLM, db: None) -> JudgeConfig:
    url, _ = local_llm()
    judge, _ = services.save_judge(name="local", base_url=url, model="local-judge", template="arena_hard")
    return judge


def test_wait_resumes_a_run_whose_worker_died_and_completes(
    campaign: Campaign, local_judge: JudgeConfig, workers: Callable[..., None]
) -> None:
    workers("die")
    out = _call("judge", campaign.slug, "--judge", "local", "--limit", "3", "--wait", "--poll", "0.01")
    run = JudgeRun.objects.get()
    assert f"resumed run #{run.pk}: 6 claimed verdict(s) outlived their lease (a worker died?)" in out
    assert "completed: 6 judged" in out
    assert run.status == JudgeRun.Status.COMPLETED


def test_wait_resumes_once_for_claims_whose_leases_end_one_after_the_other(
    campaign: Campaign, local_judge: JudgeConfig, workers: Callable[..., None]
) -> None:
    workers("die_mid_call")
    out = _call("judge", campaign.slug, "--judge", "local", "--limit", "2", "--wait", "--poll", "0.01")
    # The resume re-sent the claims still live for when their leases end: no second resume for them.
    assert out.count("resumed run") == 1
    assert "2 claimed verdict(s) outlived their lease" in out
    assert "completed: 4 judged" in out


def test_wait_resumes_when_nothing_moves_and_nothing_is_in_flight(
    campaign: Campaign, local_judge: JudgeConfig, workers: Callable[..., None]
) -> None:
    workers("lose")
    out = _call("judge", campaign.slug, "--judge", "local", "--limit", "2", "--wait", "--poll", "0.01",
                "--stall-seconds", "0.05")  # fmt: skip
    assert "with 4 verdict(s) due and none in flight (lost tasks, or is no worker running?)" in out
    assert "completed: 4 judged" in out


def test_wait_without_auto_resume_only_reports_the_stall_once(
    campaign: Campaign, local_judge: JudgeConfig, workers: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    workers("die")
    monkeypatch.setattr(judge_command, "sleep", interrupt_after(polls=3))
    out = StringIO()
    with pytest.raises(CommandError, match="stopped watching"):
        call_command("judge", campaign.slug, "--judge", "local", "--limit", "1", "--wait", "--no-auto-resume",
                     stdout=out)  # fmt: skip
    run = JudgeRun.objects.get()
    assert out.getvalue().count("stalled: 2 claimed verdict(s) outlived their lease") == 1
    assert f"--resume {run.pk} --wait" in out.getvalue()
    assert run.verdicts.filter(state="claimed").count() == 2  # left as they were


def interrupt_after(*, polls: int) -> Callable[[float], None]:
    """Return a time.sleep that returns `polls` times, then acts as if Ctrl-C was pressed."""
    left = iter(range(polls))

    def sleep(seconds: float) -> None:
        if next(left, None) is None:
            raise KeyboardInterrupt

    return sleep


def test_ctrl_c_leaves_the_run_running_and_says_how_to_watch_cancel_or_resume_it(
    campaign: Campaign, local_judge: JudgeConfig, workers: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    workers("lose")
    monkeypatch.setattr(judge_command, "sleep", interrupt_after(polls=0))
    out = StringIO()
    with pytest.raises(CommandError, match=r"stopped watching run #[0-9]+; it is still running") as stopped:
        call_command("judge", campaign.slug, "--judge", "local", "--limit", "1", "--wait", stdout=out)
    run = JudgeRun.objects.get()
    assert stopped.value.returncode == 130
    assert run.status == JudgeRun.Status.RUNNING
    text = out.getvalue()
    assert "keeps running in the workers" in text
    for option in (f"--watch {run.pk}", f"--cancel {run.pk}", f"--resume {run.pk} --wait"):
        assert f"manage.py judge {campaign.slug} {option}" in text


def test_wait_exits_non_zero_with_a_summary_when_the_run_is_cancelled(
    campaign: Campaign, local_judge: JudgeConfig, workers: Callable[..., None]
) -> None:
    workers("cancel")
    out = StringIO()
    with pytest.raises(CommandError, match="was cancelled with 4 verdict\\(s\\) pending; resume it with") as ended:
        call_command("judge", campaign.slug, "--judge", "local", "--limit", "2", "--wait", "--poll", "0.01", stdout=out)
    assert ended.value.returncode == 1
    assert "cancelled: 0 judged, 0 unparseable, 0 failed, 4 pending" in out.getvalue()


def test_wait_exits_non_zero_with_the_reasons_when_every_call_fails(
    campaign: Campaign, workers: Callable[..., None]
) -> None:
    services.save_judge(name="nowhere", base_url="http://127.0.0.1:9/v1", model="m", max_attempts=1, timeout_seconds=1)
    workers("judge")
    out = StringIO()
    with pytest.raises(CommandError, match="failed"):
        call_command("judge", campaign.slug, "--judge", "nowhere", "--limit", "1", "--wait", "--poll", "0.01",
                     stdout=out)  # fmt: skip
    text = out.getvalue()
    assert "failed: 0 judged, 0 unparseable, 2 failed" in text
    assert "error: every call failed; first reason:" in text
    assert "  2 x " in text  # the reasons, counted
    assert JudgeRun.objects.get().status == JudgeRun.Status.FAILED


def test_cancel_and_watch_act_on_an_existing_run(
    campaign: Campaign, local_judge: JudgeConfig, workers: Callable[..., None]
) -> None:
    workers("lose")
    _call("judge", campaign.slug, "--judge", "local", "--limit", "1")
    run = JudgeRun.objects.get()
    assert f"run #{run.pk} cancelled: 0 of 2 verdicts finished" in _call(
        "judge", campaign.slug, "--cancel", str(run.pk)
    )
    with pytest.raises(CommandError, match="is cancelled, not running"):
        _call("judge", campaign.slug, "--cancel", str(run.pk))
    with pytest.raises(CommandError, match="no run #0 on"):
        _call("judge", campaign.slug, "--watch", "0")
    workers("judge")
    _call("judge", campaign.slug, "--resume", str(run.pk))
    assert f"run #{run.pk} completed: 2 judged" in _call("judge", campaign.slug, "--watch", str(run.pk))
    with pytest.raises(CommandError, match="has nothing left to judge"):
        _call("judge", campaign.slug, "--resume", str(run.pk))


def test_starting_a_run_needs_a_judge(campaign: Campaign) -> None:
    with pytest.raises(CommandError, match="--judge: required to start a run"):
        _call("judge", campaign.slug)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--fault-rate", "2"], "--fault-rate: must be between 0 and 1"),
        (["--faults", "flood"], "unknown kind"),
        (["--flip-rate", "-0.1"], "--flip-rate: must be between 0 and 1"),
        (["--self-preference", "nan"], "--self-preference: must be between 0 and 1"),
        (["--length-bias", "50"], "--length-bias: must be between -20 and 20"),
        (["--self-marker", ""], "--self-marker: must not be empty"),
    ],
)
def test_serve_local_llm_refuses_bad_settings(args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        _call("serve_local_llm", *args)


def test_judge_repeat_starts_stability_runs_with_their_seeds_and_refuses_bad_counts(
    campaign: Campaign, make_judge: Callable[..., JudgeConfig], sent: list[Any]
) -> None:
    make_judge("local", temperature=0.7)
    out = _call("judge", campaign.slug, "--judge", "local", "--limit", "2", "--repeat", "2", "--seed", "40")
    runs = list(JudgeRun.objects.order_by("pk"))
    assert [(r.repeat, r.seed, r.temperature) for r in runs] == [(1, 40, 0.7), (2, 41, 0.7)]
    assert "repeat 1 of local" in out
    assert "seed 41" in out
    assert "cache bypassed" in out
    assert JudgeVerdict.objects.filter(repeat=2).count() == 4
    with pytest.raises(CommandError, match="--repeat: must be between 1 and 20"):
        _call("judge", campaign.slug, "--judge", "local", "--repeat", "0")
    with pytest.raises(CommandError, match="--judge: required with --repeat"):
        _call("judge", campaign.slug, "--repeat", "1")
