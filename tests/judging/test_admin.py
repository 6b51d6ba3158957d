"""The admin: judges, starting and watching runs, cancelling and resuming, verdict filters."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from annotation.models import Campaign, Rater
from judging import services
from judging.models import JudgeConfig, JudgeRun, JudgeVerdict, ModelFamily
from tests import factories
from tests.judging.conftest import LocalLLM, judge_form

MakeJudge = Callable[..., JudgeConfig]


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    monkeypatch.setattr(services, "enqueue_verdicts", lambda ids, countdown=None: calls.extend(ids))
    return calls


def test_adding_a_judge_in_the_admin_creates_its_judge_rater(admin_client: Client) -> None:
    response = admin_client.post(reverse("admin:judging_judgeconfig_add"), judge_form())
    assert response.status_code == 302
    judge = JudgeConfig.objects.get(name="admin-judge")
    assert (judge.rater.name, judge.rater.kind) == ("admin-judge", Rater.Kind.JUDGE)


def test_renaming_a_judge_in_the_admin_renames_its_rater(admin_client: Client, make_judge: MakeJudge) -> None:
    judge = make_judge("old-name")
    url = reverse("admin:judging_judgeconfig_change", args=[judge.pk])
    response = admin_client.post(url, judge_form(name="new-name"))
    assert response.status_code == 302
    judge.refresh_from_db()
    assert (judge.name, judge.rater.name, judge.template) == ("new-name", "new-name", "arena_hard")


def test_custom_template_without_answers_is_refused_on_its_field(admin_client: Client) -> None:
    form = judge_form(template="custom", custom_template="{question} only", verdict_pattern=r"\[\[(A|B)\]\]")
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


# --- the judge action on the campaign list, run scoping, the run page's buttons ------------------------------------


@pytest.fixture
def judging_researcher(researcher: User) -> User:
    """The campaign owner, also allowed to judge (the demo's Researchers group has the judging permissions)."""
    researcher.user_permissions.add(*Permission.objects.filter(content_type__app_label="judging"))
    return User.objects.get(pk=researcher.pk)  # fresh: permissions are cached per instance


def test_judge_action_on_campaigns_asks_for_a_judge_then_starts_a_run_and_opens_its_page(
    client: Client, judging_researcher: User, campaign: Campaign, make_judge: MakeJudge, sent: list[int],
    django_capture_on_commit_callbacks: Any,
) -> None:  # fmt: skip
    judge = make_judge()
    client.force_login(judging_researcher)
    changelist = reverse("admin:annotation_campaign_changelist")
    action = {"action": "judge_campaigns", "_selected_action": [campaign.pk]}

    form_page = client.post(changelist, action)
    assert form_page.status_code == 200
    page = form_page.content.decode()
    assert "Start judging" in page
    assert f'<option value="{judge.pk}">local-judge</option>' in page
    assert campaign.name in page
    assert not JudgeRun.objects.exists()

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(changelist, {**action, "judge": judge.pk, "limit": "2", "orders": "one"}, follow=True)

    run = JudgeRun.objects.get()
    assert (run.judge, run.campaign, run.limit, run.requested_by) == (judge, campaign, 2, judging_researcher)
    assert response.redirect_chain == [(reverse("admin:judging_judgerun_change", args=[run.pk]), 302)]
    assert f"Started run #{run.pk}: local-judge on {campaign}, 2 verdicts." in response.content.decode()
    assert len(sent) == 2  # one order per comparison, sent after commit


def test_judge_action_form_refuses_a_missing_judge_and_a_bad_limit(
    admin_client: Client, campaign: Campaign, make_judge: MakeJudge
) -> None:
    make_judge()
    changelist = reverse("admin:annotation_campaign_changelist")
    form = {"action": "judge_campaigns", "_selected_action": [campaign.pk], "judge": "", "limit": "0"}
    response = admin_client.post(changelist, form)
    assert response.status_code == 200
    assert set(response.context["form"].errors) == {"judge", "limit"}
    assert not JudgeRun.objects.exists()


def test_judge_action_on_several_campaigns_starts_one_run_each_and_reports_the_one_that_cannot_start(
    admin_client: Client, campaign: Campaign, researcher: User, make_judge: MakeJudge, sent: list[int]
) -> None:
    judge = make_judge()
    second = factories.CampaignFactory.create(owner=researcher, name="Second")
    factories.populate_campaign(second, prompts=1, models=["m1", "m2"])
    empty = factories.CampaignFactory.create(owner=researcher, name="Empty")
    changelist = reverse("admin:annotation_campaign_changelist")
    selected = [campaign.pk, second.pk, empty.pk]

    response = admin_client.post(
        changelist, {"action": "judge_campaigns", "_selected_action": selected, "judge": judge.pk}, follow=True
    )

    runs = JudgeRun.objects.order_by("id")
    assert {run.campaign for run in runs} == {campaign, second}
    page = response.content.decode()
    assert "has no comparisons to judge" in page
    assert response.context["cl"].result_count == 2  # the runs just started, listed together
    assert response.redirect_chain[0][0].endswith(f"?id__in={runs[0].pk},{runs[1].pk}")


def test_judge_action_is_offered_only_to_users_who_may_start_runs(
    client: Client, researcher: User, campaign: Campaign
) -> None:
    client.force_login(researcher)  # annotation permissions only
    changelist = reverse("admin:annotation_campaign_changelist")
    offered = dict(client.get(changelist).context["action_form"].fields["action"].choices)
    assert "open_campaigns" in offered
    assert "judge_campaigns" not in offered
    response = client.post(changelist, {"action": "judge_campaigns", "_selected_action": [campaign.pk]})
    assert response.status_code == 302  # "no action selected": nothing happens
    assert not JudgeRun.objects.exists()


def test_researchers_see_and_start_runs_only_on_their_own_campaigns(
    client: Client, judging_researcher: User, campaign: Campaign, make_judge: MakeJudge, sent: list[int]
) -> None:
    judge = make_judge()
    foreign = factories.CampaignFactory.create(slug="foreign")
    factories.populate_campaign(foreign, prompts=1, models=["m1", "m2"])
    mine = services.start_run(campaign=campaign, judge=judge, limit=1)
    theirs = services.start_run(campaign=foreign, judge=judge)
    client.force_login(judging_researcher)

    listing = client.get(reverse("admin:judging_judgerun_changelist"))
    assert [run.pk for run in listing.context["cl"].result_list] == [mine.pk]
    assert client.get(reverse("admin:judging_judgerun_change", args=[theirs.pk])).status_code == 404
    assert client.post(reverse("admin:judging_judgerun_cancel", args=[theirs.pk])).status_code == 404
    add_page = client.get(reverse("admin:judging_judgerun_add")).content.decode()
    assert campaign.name in add_page
    assert foreign.name not in add_page
    picker = client.post(
        reverse("admin:judging_judgeconfig_changelist"), {"action": "judge_a_campaign", "_selected_action": [judge.pk]}
    ).content.decode()
    assert campaign.name in picker
    assert foreign.name not in picker
    theirs.refresh_from_db()
    assert theirs.status == JudgeRun.Status.RUNNING


def test_run_page_buttons_cancel_and_resume_the_run(
    admin_client: Client, campaign: Campaign, make_judge: MakeJudge, local_llm: LocalLLM, sent: list[int]
) -> None:
    url, _ = local_llm()
    run = services.start_run(campaign=campaign, judge=make_judge(base_url=url), limit=1)
    page_url = reverse("admin:judging_judgerun_change", args=[run.pk])
    cancel_url = reverse("admin:judging_judgerun_cancel", args=[run.pk])
    resume_url = reverse("admin:judging_judgerun_resume", args=[run.pk])
    page = admin_client.get(page_url).content.decode()
    assert cancel_url in page
    assert resume_url in page

    assert admin_client.get(cancel_url).status_code == 405  # buttons post
    assert admin_client.post(cancel_url).status_code == 302
    run.refresh_from_db()
    assert run.status == JudgeRun.Status.CANCELLED
    assert cancel_url not in admin_client.get(page_url).content.decode()

    admin_client.post(resume_url)
    run.refresh_from_db()
    assert run.status == JudgeRun.Status.RUNNING
    for verdict_id in run.verdicts.values_list("pk", flat=True):
        services.judge_verdict(verdict_id=verdict_id, worker="test")
    response = admin_client.post(resume_url, follow=True)
    assert "has nothing left to judge" in response.content.decode()
    run.refresh_from_db()
    assert run.status == JudgeRun.Status.COMPLETED


def test_run_page_shows_errors_and_claims_whose_worker_died_while_it_runs(
    admin_client: Client, campaign: Campaign, make_judge: MakeJudge, sent: list[int]
) -> None:
    run = services.start_run(campaign=campaign, judge=make_judge(), limit=2)
    first, second, third, _ = run.verdicts.order_by("id")
    JudgeVerdict.objects.filter(pk__in=[first.pk, second.pk]).update(
        state=JudgeVerdict.State.FAILED, reason="HTTP 401: invalid API key"
    )
    JudgeVerdict.objects.filter(pk=third.pk).update(
        state=JudgeVerdict.State.CLAIMED, claimed_by="dead", claimed_until=timezone.now() - timedelta(seconds=5)
    )
    page = admin_client.get(reverse("admin:judging_judgerun_change", args=[run.pk])).content.decode()
    listing = admin_client.get(reverse("admin:judging_judgerun_changelist")).content.decode()
    assert "2/4" in listing  # two failed verdicts finished; the others pending or claimed
    assert "2 x HTTP 401: invalid API key" in page
    assert "1 verdict(s) claimed by a worker whose lease ended" in page
    assert 'http-equiv="refresh"' in page


def test_model_families_are_changed_by_superusers_and_seen_by_researchers(
    admin_client: Client, researcher: User, client: Client
) -> None:
    response = admin_client.post(
        reverse("admin:judging_modelfamily_add"), {"name": "gpt", "patterns": "gpt-4*\nchatgpt-*"}
    )
    assert response.status_code == 302
    family = ModelFamily.objects.get(name="gpt")
    researcher.user_permissions.add(*Permission.objects.filter(codename__endswith="_modelfamily"))
    client.force_login(researcher)
    assert client.get(reverse("admin:judging_modelfamily_changelist")).status_code == 200
    assert client.get(reverse("admin:judging_modelfamily_add")).status_code == 403
    url = reverse("admin:judging_modelfamily_change", args=[family.pk])
    client.post(url, {"name": "renamed", "patterns": "x"})
    family.refresh_from_db()
    assert family.name == "gpt"


def test_a_judge_gets_its_family_in_the_admin(admin_client: Client) -> None:
    family = ModelFamily.objects.create(name="local", patterns="local-*")
    response = admin_client.post(reverse("admin:judging_judgeconfig_add"), judge_form(family=str(family.pk)))
    assert response.status_code == 302
    assert JudgeConfig.objects.get(name="admin-judge").family == family
