"""Objects of another team never leak through this week's routes: judge reports, judge panels and panel runs, the
rater report and the actions on raters, model families (issues 13, 16 and 17).

The route matrix (`test_route_matrix.py`) sends every persona to team A's objects; these cases are the ones it does
not reach: an operator's judge that rated both teams' campaigns, team B naming team A's objects from inside its own
campaign, and an annotator both teams share.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client

from annotation.models import AnnotatorStatus, Rater, RaterAction
from evalplatform.exceptions import DomainError
from judging.models import JudgeConfig, JudgePanel, JudgeVerdict, ModelFamily, PanelRun
from judging.panels import create_panel
from tests import factories
from tests.security.world import MARKER, World, build_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def world() -> World:
    return build_world()


def _client(world: World, persona: str) -> Client:
    client = Client()
    user = world.users[persona]
    assert user is not None
    client.force_login(user)
    return client


def _post(client: Client, url: str, body: dict[str, Any]) -> Any:
    return client.post(url, json.dumps(body), content_type="application/json")


def _no_marker(response: Any) -> None:
    assert MARKER.encode() not in response.content.lower(), response.content[:500]


def _operator_judge(world: World) -> JudgeConfig:
    """An operator's judge (no owner) with a verdict and a rating in each team's campaign."""
    rater = Rater.objects.create(name="operator-judge", kind=Rater.Kind.JUDGE)
    judge = JudgeConfig.objects.create(
        name="operator-judge", rater=rater, model="operator-model", base_url="http://127.0.0.1:8001/v1"
    )
    for team in (world.a, world.b):
        comparison = team.comparisons[1]
        factories.make_rating(comparison, rater, winner=comparison.output_a)
        JudgeVerdict.objects.create(
            judge=judge,
            comparison=comparison,
            order=JudgeVerdict.Order.AB,
            state=JudgeVerdict.State.DONE,
            raw_response=f"{team.campaign.slug} reply [[A]]",
            parsed={"outcome": "A"},
            cost=Decimal(0),
        )
    return judge


# --- judge reports ----------------------------------------------------------------------------------------------


def test_the_report_of_an_operators_judge_covers_only_the_campaigns_the_reader_reads(world: World) -> None:
    judge = _operator_judge(world)
    bea = _client(world, "bea")
    response = bea.get(f"/api/v1/judges/{judge.name}/report/?bootstrap=0")
    assert response.status_code == 200
    assert response.json()["campaigns"] == ["bravo"]
    _no_marker(response)
    ada = _client(world, "ada").get(f"/api/v1/judges/{judge.pk}/report/?bootstrap=0")
    assert ada.json()["campaigns"] == ["alpha"]
    root = _client(world, "root").get(f"/api/v1/judges/{judge.pk}/report/?bootstrap=0")
    assert root.json()["campaigns"] == ["alpha", "bravo"]


def test_an_operators_judge_report_on_another_teams_campaign_is_a_404(world: World) -> None:
    judge = _operator_judge(world)
    bea = _client(world, "bea")
    api = bea.get(f"/api/v1/judges/{judge.name}/report/?campaign=alpha&bootstrap=0")
    assert api.status_code == 404
    _no_marker(api)
    page = bea.get(f"/results/alpha/judge-report/?judge={judge.name}")
    assert page.status_code == 404
    _no_marker(page)
    own = bea.get(f"/results/bravo/judge-report/?judge={judge.name}")
    assert own.status_code == 200
    _no_marker(own)


def test_another_teams_judge_is_a_404_in_the_words_of_a_judge_that_does_not_exist(world: World) -> None:
    assert world.a.judge is not None
    bea = _client(world, "bea")
    for named in (world.a.judge.name, str(world.a.judge.pk)):
        theirs = bea.get(f"/api/v1/judges/{named}/report/?campaign=bravo&bootstrap=0")
        nobody = bea.get("/api/v1/judges/nobody/report/?campaign=bravo&bootstrap=0")
        assert (theirs.status_code, nobody.status_code) == (404, 404)
        # the answer echoes the name asked for, and says no more than for a judge that does not exist
        assert theirs.json()["detail"] == nobody.json()["detail"].replace("'nobody'", repr(named))
        page = bea.get(f"/results/bravo/judge-report/?judge={named}")
        assert page.status_code == 404
        _no_marker(page)


def test_ones_own_judge_report_on_another_teams_campaign_is_a_404(world: World) -> None:
    assert world.b.judge is not None
    response = _client(world, "bea").get(f"/api/v1/judges/{world.b.judge.name}/report/?campaign=alpha")
    assert response.status_code == 404
    _no_marker(response)


def test_the_judge_report_page_lists_only_judges_the_reader_may_use(world: World) -> None:
    judge = _operator_judge(world)
    page = _client(world, "ada").get("/results/alpha/judge-report/")
    assert page.status_code == 200
    text = page.content.decode()
    assert judge.name in text
    assert "bravo-judge" not in text


# --- judge panels -----------------------------------------------------------------------------------------------


def test_the_panel_list_shows_no_other_teams_panel_nor_its_members(world: World) -> None:
    response = _client(world, "bea").get("/api/v1/judge-panels/")
    assert response.status_code == 200
    assert [panel["name"] for panel in response.json()] == ["bravo-panel"]
    _no_marker(response)


def test_another_teams_panel_cannot_run_on_ones_own_campaign(world: World) -> None:
    bea = _client(world, "bea")
    runs = PanelRun.objects.count()
    theirs = _post(bea, "/api/v1/research/campaigns/bravo/panel-runs/", {"panel": "ALPHA-SECRET-panel"})
    nobody = _post(bea, "/api/v1/research/campaigns/bravo/panel-runs/", {"panel": "no-such-panel"})
    assert (theirs.status_code, nobody.status_code) == (400, 400)
    assert theirs.json()["panel"][0] == nobody.json()["panel"][0].replace("no-such-panel", "ALPHA-SECRET-panel")
    assert PanelRun.objects.count() == runs


def test_a_panel_cannot_hold_another_teams_judge_through_the_service(world: World) -> None:
    assert world.a.judge is not None
    assert world.b.judge is not None
    panels = JudgePanel.objects.count()
    with pytest.raises(DomainError) as refused:
        create_panel(name="mixed", members=[world.b.judge, world.a.judge], owner=world.b.owner)
    assert refused.value.field == "members"
    assert JudgePanel.objects.count() == panels
    assert not Rater.objects.filter(name="mixed").exists()


def test_another_teams_panel_run_is_a_404_from_ones_own_campaign(world: World) -> None:
    run = PanelRun.objects.get(campaign=world.a.campaign)
    bea = _client(world, "bea")
    for method, suffix in [("get", ""), ("post", "cancel/"), ("post", "resume/")]:
        response = getattr(bea, method)(f"/api/v1/research/campaigns/bravo/panel-runs/{run.pk}/{suffix}")
        assert response.status_code == 404
        _no_marker(response)
    assert PanelRun.objects.get(pk=run.pk).status == run.status


# --- raters -----------------------------------------------------------------------------------------------------


def test_the_rater_report_of_ones_campaign_names_no_rater_of_another(world: World) -> None:
    response = _client(world, "bea").get("/api/v1/research/campaigns/bravo/raters/")
    assert response.status_code == 200
    _no_marker(response)
    page = _client(world, "bea").get("/results/bravo/raters/")
    assert page.status_code == 200
    _no_marker(page)


@pytest.mark.parametrize("via", ["api", "page"])
def test_an_action_on_another_campaigns_rater_from_ones_own_campaign_is_a_404_and_logs_nothing(
    world: World, via: str
) -> None:
    bea = _client(world, "bea")
    rater = world.a.ratings[0].rater
    before = (RaterAction.objects.count(), list(AnnotatorStatus.objects.values_list("id", "paused", "excluded")))
    for label in (rater.name, rater.pseudonym):
        body = {"rater": label, "action": "exclude", "reason": "probe"}
        nobody = {**body, "rater": "nobody"}
        if via == "api":
            response = _post(bea, "/api/v1/research/campaigns/bravo/raters/actions/", body)
            unknown = _post(bea, "/api/v1/research/campaigns/bravo/raters/actions/", nobody)
            assert response.status_code == unknown.status_code == 404
            assert response.json()["detail"] == unknown.json()["detail"].replace("'nobody'", repr(label))
        else:
            response = bea.post("/results/bravo/raters/", body, follow=True)
            unknown = bea.post("/results/bravo/raters/", nobody, follow=True)
            assert response.status_code == unknown.status_code
            _no_marker(response)
    after = (RaterAction.objects.count(), list(AnnotatorStatus.objects.values_list("id", "paused", "excluded")))
    assert after == before


def test_excluding_a_shared_annotator_in_one_campaign_leaves_her_standing_in_the_other(world: World) -> None:
    """alice annotates both teams' campaigns: bea's action on her in bravo is bravo's alone."""
    alice_rater = world.status.rater
    services_status = AnnotatorStatus.objects.get_or_create(campaign=world.b.campaign, rater=alice_rater)[0]
    bea = _client(world, "bea")
    for action in ("exclude", "pause"):
        response = _post(
            bea,
            "/api/v1/research/campaigns/bravo/raters/actions/",
            {"rater": alice_rater.pseudonym, "action": action, "reason": "probe"},
        )
        assert response.status_code == 200, response.content
        _no_marker(response)
    services_status.refresh_from_db()
    assert (services_status.paused, services_status.excluded) == (True, True)
    alpha = AnnotatorStatus.objects.get(pk=world.status.pk)
    assert (alpha.paused, alpha.excluded) == (world.status.paused, world.status.excluded)
    assert not RaterAction.objects.filter(campaign=world.a.campaign).exists()


def test_an_admin_action_on_ones_own_status_does_not_reach_the_same_rater_in_another_campaign(world: World) -> None:
    alice_rater = world.status.rater
    own = AnnotatorStatus.objects.get_or_create(campaign=world.b.campaign, rater=alice_rater)[0]
    bea = _client(world, "bea")
    response = bea.post(
        "/admin/annotation/annotatorstatus/",
        {"action": "exclude_from_results", "_selected_action": [str(own.pk), str(world.status.pk)], "index": "0"},
    )
    assert response.status_code == 302
    own.refresh_from_db()
    assert own.excluded
    alpha = AnnotatorStatus.objects.get(pk=world.status.pk)
    assert not alpha.excluded
    assert not RaterAction.objects.filter(campaign=world.a.campaign).exists()


# --- model families ---------------------------------------------------------------------------------------------


def test_a_researcher_reads_model_families_but_neither_adds_changes_nor_deletes_them(world: World) -> None:
    family = ModelFamily.objects.create(name="shared", patterns="gpt-*")
    bea = _client(world, "bea")
    assert bea.get("/admin/judging/modelfamily/").status_code == 200
    assert bea.get(f"/admin/judging/modelfamily/{family.pk}/change/").status_code == 200
    added = bea.post("/admin/judging/modelfamily/add/", {"name": "mine", "patterns": "bravo-*"})
    changed = bea.post(f"/admin/judging/modelfamily/{family.pk}/change/", {"name": "renamed", "patterns": "*"})
    deleted = bea.post(f"/admin/judging/modelfamily/{family.pk}/delete/", {"post": "yes"})
    assert (added.status_code, changed.status_code, deleted.status_code) == (403, 403, 403)
    assert list(ModelFamily.objects.values_list("name", "patterns")) == [("shared", "gpt-*")]
