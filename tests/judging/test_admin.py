"""The admin: judges, starting and watching runs, cancelling and resuming, verdict filters."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from annotation.models import Campaign, Rater
from judging import services
from judging.models import JudgeConfig, JudgeRun, JudgeVerdict
from tests.judging.conftest import LocalLLM

MakeJudge = Callable[..., JudgeConfig]


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    monkeypatch.setattr(services, "enqueue_verdicts", lambda ids, countdown=None: calls.extend(ids))
    return calls


def _judge_form(**changes: str) -> dict[str, str]:
    data = {
        "name": "admin-judge", "base_url": "http://127.0.0.1:8001/v1", "model": "local-judge", "api_key_env": "",
        "template": "arena_hard", "system_prompt": "", "custom_template": "", "verdict_format": "pattern",
        "verdict_pattern": "", "temperature": "0", "max_tokens": "512", "both_orders": "on", "max_concurrency": "8",
        "requests_per_minute": "600", "timeout_seconds": "30", "max_attempts": "5", "price_input_per_million": "0",
        "price_output_per_million": "0",
    }  # fmt: skip
    data.update(changes)
    return data


def test_adding_a_judge_in_the_admin_creates_its_judge_rater(admin_client: Client) -> None:
    response = admin_client.post(reverse("admin:judging_judgeconfig_add"), _judge_form())
    assert response.status_code == 302
    judge = JudgeConfig.objects.get(name="admin-judge")
    assert (judge.rater.name, judge.rater.kind) == ("admin-judge", Rater.Kind.JUDGE)


def test_renaming_a_judge_in_the_admin_renames_its_rater(admin_client: Client, make_judge: MakeJudge) -> None:
    judge = make_judge("old-name")
    url = reverse("admin:judging_judgeconfig_change", args=[judge.pk])
    response = admin_client.post(url, _judge_form(name="new-name"))
    assert response.status_code == 302
    judge.refresh_from_db()
    assert (judge.name, judge.rater.name, judge.template) == ("new-name", "new-name", "arena_hard")


def test_custom_template_without_answers_is_refused_on_its_field(admin_client: Client) -> None:
    form = _judge_form(template="custom", custom_template="{question} only", verdict_pattern=r"\[\[(A|B)\]\]")
    response = admin_client.post(reverse("admin:judging_judgeconfig_add"), form)
    assert response.status_code == 200
    assert "must contain {answer_a} and {answer_b}" in response.content.decode()
    assert not JudgeConfig.objects.exists()


def test_starting_a_run_from_the_admin_creates_its_verdicts_and_enqueues_them(
    admin_client: Client, campaign: Campaign, make_judge: MakeJudge, sent: list[int],
    django_capture_on_commit_callbacks: Any,
) -> None:  # fmt: skip
    judge = make_judge()
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:judging_judgerun_add"), {"campaign": campaign.pk, "judge": judge.pk, "limit": "2"}
        )
    assert response.status_code == 302
    run = JudgeRun.objects.get()
    assert sorted(sent) == sorted(run.verdicts.values_list("pk", flat=True))
    assert len(sent) == 4


def test_a_run_that_cannot_start_shows_why(admin_client: Client, campaign: Campaign, make_judge: MakeJudge) -> None:
    judge = make_judge(template="mt_bench_reference")
    response = admin_client.post(reverse("admin:judging_judgerun_add"), {"campaign": campaign.pk, "judge": judge.pk})
    assert response.status_code == 200
    assert "needs reference answers" in response.content.decode()
    assert not JudgeRun.objects.exists()


def test_run_pages_show_progress_failures_tokens_and_consistency(
    admin_client: Client, campaign: Campaign, make_judge: MakeJudge, local_llm: LocalLLM, sent: list[int]
) -> None:
    url, _ = local_llm(fault_rate=0.5, faults=("malformed",), seed=2)
    run = services.start_run(campaign=campaign, judge=make_judge(base_url=url), limit=4)
    for verdict_id in run.verdicts.values_list("pk", flat=True):
        services.judge_verdict(verdict_id=verdict_id, worker="test")
    parse_failed = run.verdicts.filter(state=JudgeVerdict.State.PARSE_FAILED).count()
    assert parse_failed > 0
    listing = admin_client.get(reverse("admin:judging_judgerun_changelist")).content.decode()
    assert "8/8" in listing
    page = admin_client.get(reverse("admin:judging_judgerun_change", args=[run.pk])).content.decode()
    assert f"{8 - parse_failed} judged, {parse_failed} unparseable, 0 failed" in page
    assert "comparisons agree across orders" in page or "no comparison judged in both orders" in page
    assert 'http-equiv="refresh"' not in page  # the run has ended


def test_cancel_and_resume_actions(
    admin_client: Client, campaign: Campaign, make_judge: MakeJudge, sent: list[int],
    django_capture_on_commit_callbacks: Any,
) -> None:  # fmt: skip
    run = services.start_run(campaign=campaign, judge=make_judge(), limit=1)
    changelist = reverse("admin:judging_judgerun_changelist")
    admin_client.post(changelist, {"action": "cancel_runs", "_selected_action": [run.pk]})
    run.refresh_from_db()
    assert run.status == JudgeRun.Status.CANCELLED
    page = admin_client.get(reverse("admin:judging_judgerun_change", args=[run.pk])).content.decode()
    assert 'http-equiv="refresh"' not in page
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(changelist, {"action": "resume_runs", "_selected_action": [run.pk]})
    run.refresh_from_db()
    assert run.status == JudgeRun.Status.RUNNING
    assert len(sent) == 2
    page = admin_client.get(reverse("admin:judging_judgerun_change", args=[run.pk])).content.decode()
    assert 'http-equiv="refresh"' in page


def test_judge_a_campaign_action_asks_for_the_campaign_then_starts_a_run(
    admin_client: Client, campaign: Campaign, make_judge: MakeJudge, sent: list[int]
) -> None:
    judge = make_judge()
    changelist = reverse("admin:judging_judgeconfig_changelist")
    form = {"action": "judge_a_campaign", "_selected_action": [judge.pk]}
    page = admin_client.post(changelist, form)
    assert page.status_code == 200
    assert "Start judging" in page.content.decode()
    response = admin_client.post(changelist, {**form, "campaign": campaign.pk, "limit": "3"})
    assert response.status_code == 302
    run = JudgeRun.objects.get()
    assert (run.judge, run.campaign, run.limit) == (judge, campaign, 3)


def test_verdict_list_filters_comparisons_whose_orders_disagree(
    admin_client: Client, campaign: Campaign, make_judge: MakeJudge, local_llm: LocalLLM, sent: list[int]
) -> None:
    url, _ = local_llm(position_bias=1.0)
    run = services.start_run(campaign=campaign, judge=make_judge(base_url=url), limit=2)
    for verdict_id in run.verdicts.values_list("pk", flat=True):
        services.judge_verdict(verdict_id=verdict_id, worker="test")
    response = admin_client.get(reverse("admin:judging_judgeverdict_changelist") + "?inconsistent=yes")
    assert response.status_code == 200
    assert response.context["cl"].result_count == 4
