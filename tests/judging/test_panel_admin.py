"""The panel admin, scoped as the judge admin: rita owns campaign A, judge A and panel A; bea owns campaign B and
judge B; both have the demo's researcher permissions; root is a superuser; the operator's panel has no owner."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse

from annotation.models import Campaign
from judging import panels, services
from judging.models import JudgeConfig, JudgePanel, PanelRun
from tests import factories


def client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def researcher_with_permissions(username: str) -> User:
    user = factories.UserFactory.create(username=username, is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label__in=["annotation", "judging", "results"])
    )
    return user


class Teams:
    def __init__(self, campaign: Campaign, rita: User) -> None:
        rita.user_permissions.add(*Permission.objects.filter(content_type__app_label__in=["judging", "results"]))
        self.rita, self.campaign_a = rita, campaign
        self.bea = researcher_with_permissions("bea")
        self.campaign_b = factories.CampaignFactory.create(owner=self.bea, status="active", name="Bravo campaign")
        factories.populate_campaign(self.campaign_b, prompts=2, models=["model-x", "model-y"])
        self.root = factories.UserFactory.create(username="root", is_staff=True, is_superuser=True)
        base: dict[str, Any] = {"base_url": "http://127.0.0.1:9/v1", "model": "m", "timeout_seconds": 2.0}
        self.judge_a = services.create_judge(name="alpha-secret-judge", owner=rita, **base)
        self.judge_b = services.create_judge(name="bravo-judge", owner=self.bea, **base)
        self.operator_1 = services.create_judge(name="operator-1", **base)
        self.operator_2 = services.create_judge(name="operator-2", **base)
        self.panel_a = panels.create_panel(
            name="alpha-secret-panel", members=[self.judge_a, self.operator_1], owner=rita
        )
        self.operators = panels.create_panel(name="operators-panel", members=[self.operator_1, self.operator_2])


@pytest.fixture
def teams(campaign: Campaign, researcher: User) -> Teams:
    return Teams(campaign, researcher)


def members(*judges: JudgeConfig) -> list[str]:
    return [str(j.pk) for j in judges]


def test_researcher_b_sees_their_own_and_the_operators_panels_only(teams: Teams) -> None:
    bea = client_for(teams.bea)
    page = bea.get(reverse("admin:judging_judgepanel_changelist")).content.decode()

    assert "operators-panel" in page
    assert "alpha-secret-panel" not in page
    for view in ("change", "history"):
        assert bea.get(reverse(f"admin:judging_judgepanel_{view}", args=[teams.panel_a.pk])).status_code == 404
    assert bea.get(reverse("admin:judging_judgepanel_change", args=[teams.operators.pk])).status_code == 200
    changed = bea.post(
        reverse("admin:judging_judgepanel_change", args=[teams.operators.pk]),
        {"members": members(teams.operator_1, teams.judge_b), "aggregation": "majority"},
    )
    assert changed.status_code == 403
    assert set(teams.operators.members.all()) == {teams.operator_1, teams.operator_2}


def test_a_panel_made_in_the_admin_is_its_makers_and_holds_judges_they_may_use(teams: Teams) -> None:
    bea = client_for(teams.bea)
    add = reverse("admin:judging_judgepanel_add")
    form = bea.get(add).context["adminform"].form

    assert set(form.fields["members"].queryset) == {teams.judge_b, teams.operator_1, teams.operator_2}
    refused = bea.post(add, {"name": "bp", "members": members(teams.judge_b, teams.judge_a), "aggregation": "majority"})
    assert refused.status_code == 200
    assert "members" in refused.context["adminform"].form.errors
    mean = bea.post(add, {"name": "bp", "members": members(teams.judge_b, teams.operator_1),
                          "aggregation": "mean_probability"})  # fmt: skip
    assert "mean_probability needs a probability" in str(mean.context["adminform"].form.errors)
    made = bea.post(add, {"name": "bp", "members": members(teams.judge_b, teams.operator_1), "aggregation": "majority"})
    assert made.status_code == 302
    panel = JudgePanel.objects.get(name="bp")
    assert (panel.owner, panel.rater.name, panel.rater.kind) == (teams.bea, "bp", "judge")


def test_only_a_superuser_makes_an_operators_panel(teams: Teams) -> None:
    add = reverse("admin:judging_judgepanel_add")
    data = {"name": "ops", "members": members(teams.operator_1, teams.operator_2), "aggregation": "majority"}

    assert client_for(teams.root).post(add, {**data, "owner": ""}).status_code == 302
    assert JudgePanel.objects.get(name="ops").owner is None
    client_for(teams.bea).post(add, {**data, "name": "ops2", "owner": ""})
    assert JudgePanel.objects.get(name="ops2").owner == teams.bea


def test_researcher_b_cannot_run_panel_a_or_see_its_runs(teams: Teams, sent: list[Any]) -> None:
    run_a = panels.start_panel_run(campaign=teams.campaign_a, panel=teams.panel_a, limit=1, requested_by=teams.rita)
    bea = client_for(teams.bea)
    add = reverse("admin:judging_panelrun_add")

    form = bea.get(add).context["adminform"].form
    assert set(form.fields["panel"].queryset) == {teams.operators}
    assert set(form.fields["campaign"].queryset) == {teams.campaign_b}
    refused = bea.post(add, {"campaign": teams.campaign_b.pk, "panel": teams.panel_a.pk})
    assert "panel" in refused.context["adminform"].form.errors
    assert bea.get(reverse("admin:judging_panelrun_change", args=[run_a.pk])).status_code == 404
    assert "alpha-secret-panel" not in bea.get(reverse("admin:judging_panelrun_changelist")).content.decode()
    started = bea.post(add, {"campaign": teams.campaign_b.pk, "panel": teams.operators.pk, "limit": "1"})
    assert started.status_code == 302
    run_b = PanelRun.objects.get(campaign=teams.campaign_b)
    assert run_b.member_runs.count() == 2
    assert bea.get(reverse("admin:judging_panelrun_change", args=[run_b.pk])).status_code == 200
    bad = bea.post(add, {"campaign": teams.campaign_b.pk, "panel": teams.operators.pk, "limit": "0"})
    assert bad.status_code == 200
    assert PanelRun.objects.filter(campaign=teams.campaign_b).count() == 1
