"""Writes across teams: every admin form's object choices, the API bodies that name objects, and the lean path.

A forged POST names any id it likes; what stops it is the form field's queryset (or the service's access check),
so these tests look there: every foreign key and many-to-many field of every admin add and change form, built for
researcher B, must offer none of team A's objects, and every API body field that names an object must refuse
team A's.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

import pytest
from django import forms
from django.contrib import admin
from django.contrib.auth.models import User
from django.db import models
from django.test import Client, RequestFactory
from rest_framework.authtoken.models import Token

from annotation.models import Assignment, Campaign, Comparison, Output, Prompt, Rater, Rating
from judging.models import JudgeConfig, JudgeRun, JudgeVerdict
from tests.security.world import MARKER, World, build_world

pytestmark = pytest.mark.django_db


def team_a_only(world: World) -> dict[type[models.Model], set[Any]]:
    """The primary keys of the objects that belong to team A alone, by model."""
    a = world.a
    assert a.judge is not None
    assert a.run is not None
    assert a.verdict is not None
    campaign = a.campaign
    return {
        Campaign: {campaign.pk},
        Prompt: set(Prompt.objects.filter(campaign=campaign).values_list("pk", flat=True)),
        Output: set(Output.objects.filter(prompt__campaign=campaign).values_list("pk", flat=True)),
        Comparison: set(Comparison.objects.filter(campaign=campaign).values_list("pk", flat=True)),
        Rating: set(Rating.objects.filter(comparison__campaign=campaign).values_list("pk", flat=True)),
        Assignment: set(Assignment.objects.filter(comparison__campaign=campaign).values_list("pk", flat=True)),
        # The imported rater and the judge rated only in A; remy was only ever A's annotator.
        Rater: {a.ratings[0].rater_id, a.judge.rater_id, world.assignments["remy"].rater_id},
        JudgeConfig: {a.judge.pk},
        JudgeRun: {a.run.pk},
        JudgeVerdict: {a.verdict.pk},
        User: {a.owner.pk, world.remy.pk},
    }


def _request_as(user: User, path: str = "/admin/") -> Any:
    request = RequestFactory().get(path)
    request.user = user
    return request


def choice_fields(form: forms.BaseForm) -> Iterable[tuple[str, forms.ModelChoiceField[Any]]]:
    for name, field in form.fields.items():
        if isinstance(field, forms.ModelChoiceField):
            yield name, field


def admin_forms_for(model_admin: admin.ModelAdmin[Any], request: Any, own: models.Model | None) -> list[Any]:
    """Return the admin's add form and, for an object of the user's own team, its change form."""
    built = []
    if model_admin.has_add_permission(request):
        built.append(("add", model_admin.get_form(request, None, change=False)()))
    if own is not None and model_admin.has_change_permission(request, own):
        built.append(("change", model_admin.get_form(request, own, change=True)(instance=own)))
    return built


def own_objects(world: World) -> dict[type[models.Model], models.Model]:
    """One object of team B's for each model, to open its change form."""
    b = world.b
    return {
        Campaign: b.campaign,
        Prompt: b.prompts[0],
        Output: b.outputs[0],
        Comparison: b.comparisons[0],
        JudgeConfig: b.judge,  # type: ignore[dict-item]
        JudgeRun: b.run,  # type: ignore[dict-item]
    }


def test_no_admin_form_offers_researcher_b_any_object_of_team_a() -> None:
    world = build_world()
    bea = world.users["bea"]
    assert bea is not None
    forbidden = team_a_only(world)
    request = _request_as(bea)
    offered: list[str] = []
    checked = 0
    for model, model_admin in admin.site._registry.items():
        if model._meta.app_label in {"auth", "authtoken"}:
            continue  # superusers only: the matrix checks researchers are refused
        for kind, form in admin_forms_for(model_admin, request, own_objects(world).get(model)):
            for name, field in choice_fields(form):
                target = field.queryset.model  # type: ignore[union-attr]
                leaked = forbidden.get(target, set()) & set(field.queryset.values_list("pk", flat=True))  # type: ignore[union-attr]
                checked += 1
                if leaked:
                    offered.append(f"{model.__name__} {kind} form, field {name}: {target.__name__} {sorted(leaked)}")
    assert checked >= 5, "the admin forms have foreign keys to check"
    assert not offered, "team A's objects offered to researcher B:\n" + "\n".join(offered)


@pytest.mark.parametrize("forged", ["prompt", "output", "annotatorstatus", "rater"])
def test_the_issue_s_forged_admin_posts_write_nothing(forged: str) -> None:
    """The writes issue 12 saw answered 302: each now a form error or a refusal, and nothing written."""
    world = build_world()
    client = Client()
    bea = world.users["bea"]
    assert bea is not None
    client.force_login(bea)
    a = world.a
    posts: dict[str, Callable[[], Any]] = {
        "prompt": lambda: client.post(
            "/admin/annotation/prompt/add/",
            {
                "campaign": a.campaign.pk,
                "external_id": "inj",
                "text": "injected",
                "reference_answer": "",
                "metadata": "{}",
            },
        ),
        "output": lambda: client.post(
            "/admin/annotation/output/add/",
            {"prompt": a.prompts[0].pk, "model_name": "injected-model-by-bea", "text": "hi", "metadata": "{}"},
        ),
        "annotatorstatus": lambda: client.post(
            "/admin/annotation/annotatorstatus/add/",
            {
                "campaign": a.campaign.pk,
                "rater": world.assignments["alice"].rater_id,
                "rated_count": 0,
                "gold_answered": 0,
                "gold_correct": 0,
            },
        ),
        "rater": lambda: client.post(
            f"/admin/annotation/rater/{a.ratings[0].rater_id}/change/",
            {"name": "renamed-by-bea", "kind": "human"},
        ),
    }
    statuses = a.campaign.annotator_statuses.count()
    before = (Prompt.objects.count(), Output.objects.count(), list(Rater.objects.values_list("pk", "name")))
    response = posts[forged]()
    assert response.status_code in {200, 302, 403, 404}
    if response.status_code == 302:
        assert "/add/" not in response["Location"]
        assert response["Location"] in {"/admin/", "/admin/annotation/rater/"} or "change" not in response["Location"]
    after = (Prompt.objects.count(), Output.objects.count(), list(Rater.objects.values_list("pk", "name")))
    assert after == before
    assert not Output.objects.filter(model_name="injected-model-by-bea").exists()
    assert a.campaign.annotator_statuses.count() == statuses


@pytest.mark.parametrize("judge_as", ["id", "name"])
def test_researcher_b_cannot_start_a_run_with_team_a_s_judge(judge_as: str) -> None:
    world = build_world()
    bea = world.users["bea"]
    assert bea is not None
    assert world.a.judge is not None
    token = Token.objects.create(user=bea).key
    judge = world.a.judge.pk if judge_as == "id" else world.a.judge.name
    runs = JudgeRun.objects.count()
    response = Client().post(
        f"/api/v1/research/campaigns/{world.b.campaign.slug}/judge-runs/",
        json.dumps({"judge": judge}),
        content_type="application/json",
        headers={"Authorization": f"Token {token}"},
    )
    assert response.status_code in {400, 403, 404}, response.content
    if judge_as == "id":  # a name given is echoed in the error, which says nothing of whether it exists
        assert MARKER.encode() not in response.content.lower()
    assert JudgeRun.objects.count() == runs


def test_researcher_b_cannot_start_a_run_with_team_a_s_judge_in_the_admin() -> None:
    world = build_world()
    bea = world.users["bea"]
    assert bea is not None
    assert world.a.judge is not None
    client = Client()
    client.force_login(bea)
    runs = JudgeRun.objects.count()
    response = client.post(
        "/admin/judging/judgerun/add/", {"campaign": world.b.campaign.pk, "judge": world.a.judge.pk, "limit": ""}
    )
    assert response.status_code == 200  # the form again, with its error
    assert JudgeRun.objects.count() == runs
    assert MARKER.encode() not in response.content.lower()


def _lean(path: str, body: Any, token: str) -> tuple[int, bytes]:
    """POST through the production WSGI stack, so token `next` and `rating` take the lean path."""
    import io

    from django.core import signals
    from django.core.wsgi import get_wsgi_application
    from django.db import close_old_connections

    from annotation.fastpath import AnnotatorFastPath

    raw = json.dumps(body).encode()
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "HTTP_HOST": "testserver",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(raw),
        "wsgi.errors": io.StringIO(),
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(raw)),
        "HTTP_AUTHORIZATION": f"Token {token}",
        "HTTP_ACCEPT": "application/json",
        "REMOTE_ADDR": "127.0.0.1",
    }
    status: list[str] = []
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        chunks = AnnotatorFastPath(get_wsgi_application())(environ, lambda s, h, *a: status.append(s))
        body_bytes = b"".join(chunks)
        getattr(chunks, "close", lambda: None)()
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)
    return int(status[0].split()[0]), body_bytes


@pytest.mark.parametrize("persona", ["remy", "bea"])
def test_the_lean_path_refuses_what_django_refuses(persona: str) -> None:
    """Token `next` and `rating` on team A's campaign and leases: removed annotator and other team alike."""
    world = build_world()
    token = world.token(persona)
    assert token is not None
    assignment = world.assignments["remy" if persona == "remy" else "alice"]
    states = list(Assignment.objects.order_by("pk").values_list("pk", "state"))
    ratings = Rating.objects.count()
    rated = _lean(f"/api/v1/assignments/{assignment.pk}/rating/", {"choice": "left"}, token)
    shown = _lean(f"/api/v1/campaigns/{world.a.campaign.pk}/next/", {}, token)
    assert rated[0] in {403, 404, 409}, rated
    assert shown[0] in {403, 404}, shown
    for _, body in (rated, shown):
        assert MARKER.encode() not in body.lower()
    assert Rating.objects.count() == ratings
    assert list(Assignment.objects.order_by("pk").values_list("pk", "state")) == states


def test_a_rater_selection_does_not_tell_whether_another_team_has_a_rater_by_that_name() -> None:
    """`?raters=NAME` answers alike for a name nobody has and a name only team A's raters have."""
    world = build_world()
    bea = world.users["bea"]
    assert bea is not None
    client = Client()
    client.force_login(bea)
    slug = world.b.campaign.slug
    answers = {}
    for name in ["ALPHA-SECRET-imported-rater", "nobody-at-all"]:
        api = client.get(f"/api/v1/research/campaigns/{slug}/leaderboard/", {"raters": name})
        page = client.get(f"/results/{slug}/", {"raters": name})
        answers[name] = (api.status_code, page.status_code)
        assert api.status_code == 400
        assert api.json()["raters"] == [f"raters: no rater named {name} has rated in this campaign"]
    assert answers["ALPHA-SECRET-imported-rater"] == answers["nobody-at-all"]
