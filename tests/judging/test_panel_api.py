"""The judge panel API: creating panels, starting, watching, cancelling and resuming panel runs; who may."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from annotation.models import Campaign
from judging import panels, services
from judging.models import JudgeConfig, JudgePanel, JudgeVerdict, PanelRun
from tests.judging.conftest import LocalLLM

ClientFor = Callable[[User | None], APIClient]
MakeJudge = Callable[..., JudgeConfig]


def runs_url(campaign: Campaign, tail: str = "") -> str:
    return f"/api/v1/research/campaigns/{campaign.slug}/panel-runs/{tail}"


@pytest.fixture
def members(make_judge: MakeJudge, local_llm: LocalLLM) -> list[JudgeConfig]:
    judges = []
    for i, bias in enumerate((0.0, 1.0, 0.5)):
        url, _ = local_llm(position_bias=bias, seed=i)
        judges.append(make_judge(f"member-{i}", base_url=url, price_input_per_million=Decimal(2)))
    return judges


def test_a_researcher_creates_a_panel_of_judges_they_may_use_and_runs_it(
    campaign: Campaign, members: list[JudgeConfig], researcher: User, api_client_for: ClientFor
) -> None:
    client = api_client_for(researcher)
    created = client.post(
        "/api/v1/judge-panels/", {"name": "trio", "members": [j.name for j in members]}, format="json"
    )

    assert created.status_code == 201, created.json()
    assert created.json() | {"id": 0, "created_at": ""} == {
        "id": 0, "name": "trio", "owner": researcher.username, "aggregation": "majority",
        "members": ["member-0", "member-1", "member-2"], "created_at": "",
    }  # fmt: skip
    assert [p["name"] for p in client.get("/api/v1/judge-panels/").json()] == ["trio"]
    started = client.post(runs_url(campaign), {"panel": "trio", "limit": 2}, format="json")
    assert started.status_code == 201, started.json()
    body = started.json()
    assert (body["status"], body["total"], len(body["members"])) == ("running", 12, 3)
    run = PanelRun.objects.get(pk=body["id"])
    for verdict_id in JudgeVerdict.objects.filter(run__in=run.member_runs.all()).values_list("pk", flat=True):
        services.judge_verdict(verdict_id=verdict_id, worker="test")
    panels.finish_panel_run_if_done(run_id=run.pk)
    done = client.get(runs_url(campaign, f"{run.pk}/")).json()
    assert (done["status"], done["n_verdicts"], done["finished"]) == ("completed", 4, 12)
    assert done["tokens_in"] == done["verdict_tokens_in"] == sum(m["tokens_in"] for m in done["members"]) > 0
    assert Decimal(done["cost"]) == Decimal(done["verdict_cost"]) > 0
    assert client.get(runs_url(campaign)).json()["count"] == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "p", "members": ["member-0"]}, "members"),
        ({"name": "p", "members": ["member-0", "nobody"]}, "judge"),
        ({"name": "p", "members": ["member-0", "member-1"], "aggregation": "median"}, "aggregation"),
        ({"name": "p", "members": ["member-0", "member-1"], "aggregation": "mean_probability"}, "aggregation"),
        ({"name": "p", "members": ["member-0", "member-0"]}, "members"),
        ({"name": "", "members": ["member-0", "member-1"]}, "name"),
        ({"name": "p", "members": "member-0"}, "members"),
    ],
)
def test_a_bad_panel_is_a_400_naming_the_field(
    members: list[JudgeConfig], researcher: User, campaign: Campaign, api_client_for: ClientFor,
    body: dict[str, object], field: str,
) -> None:  # fmt: skip
    response = api_client_for(researcher).post("/api/v1/judge-panels/", body, format="json")

    assert response.status_code == 400
    assert field in response.json()
    assert not JudgePanel.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"panel": "nobody"}, "panel"),
        ({"panel": "trio", "limit": 0}, "limit"),
        ({"panel": "trio", "orders": "x"}, "orders"),
    ],
)
def test_a_bad_panel_run_is_a_400_naming_the_field(
    members: list[JudgeConfig], researcher: User, campaign: Campaign, api_client_for: ClientFor,
    body: dict[str, object], field: str,
) -> None:  # fmt: skip
    panels.create_panel(name="trio", members=members, owner=researcher)
    response = api_client_for(researcher).post(runs_url(campaign), body, format="json")

    assert response.status_code == 400
    assert field in response.json()
    assert not PanelRun.objects.exists()


def test_another_teams_panel_is_not_found_and_annotators_may_not_list_panels(
    members: list[JudgeConfig], researcher: User, campaign: Campaign, annotator: User, outsider: User,
    api_client_for: ClientFor,
) -> None:  # fmt: skip
    mine = panels.create_panel(name="mine", members=members, owner=researcher)
    operators = panels.create_panel(name="operators", members=members)
    other = Campaign.objects.create(slug="others", name="others", owner=outsider)

    assert api_client_for(annotator).get("/api/v1/judge-panels/").status_code == 403
    assert [p["name"] for p in api_client_for(outsider).get("/api/v1/judge-panels/").json()] == ["operators"]
    refused = api_client_for(outsider).post(runs_url(other), {"panel": mine.name}, format="json")
    assert refused.status_code == 400
    assert "no judge panel named 'mine'" in refused.json()["panel"][0]
    assert api_client_for(outsider).post(runs_url(campaign), {"panel": operators.name}).status_code == 404
    assert api_client_for(annotator).post(runs_url(campaign), {"panel": operators.name}).status_code == 403


def test_cancel_and_resume_a_panel_run(
    members: list[JudgeConfig], researcher: User, campaign: Campaign, api_client_for: ClientFor
) -> None:
    panels.create_panel(name="trio", members=members, owner=researcher)
    client = api_client_for(researcher)
    run = client.post(runs_url(campaign), {"panel": "trio", "limit": 1}, format="json").json()

    assert client.post(runs_url(campaign, f"{run['id']}/cancel/")).json()["status"] == "cancelled"
    assert client.post(runs_url(campaign, f"{run['id']}/cancel/")).status_code == 409
    resumed = client.post(runs_url(campaign, f"{run['id']}/resume/"), {"retry_failed": True}, format="json")
    assert resumed.json()["status"] == "running"
    assert client.post(runs_url(campaign, f"{run['id']}/resume/"), {"retry_failed": "maybe"}).status_code == 400
    assert client.get(runs_url(campaign, "999999/")).status_code == 404
