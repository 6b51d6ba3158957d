"""Every route and admin view, tried by every persona, with session and token auth: the expected status and no
other team's data in the body.

The routes come from the URL configuration and the admin's registry, so a new route or a newly registered model
without an entry here fails `test_every_route_has_an_entry`. Each persona's sweep runs in its own world (see
`tests.security.world`): team A's texts all carry a marker, and a response to a persona who may not read team A
must not contain it. Writes that must be refused (POSTs of admin buttons, actions and deletes, annotator requests
on a lease whose right has ended) are tried too, and team A's data must be as it was afterwards.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from annotation.models import Assignment, Campaign, ImportJob, Rating
from judging.models import JudgeConfig, JudgePanel, JudgeRun, PanelRun
from tests.security.world import MARKER, World, build_world

pytestmark = pytest.mark.django_db

PERSONAS = ["anonymous", "alice", "remy", "bea", "ada", "root"]
READERS_OF_A = {"ada", "root"}  # may read team A's research data
STAFF = {"bea", "ada", "root"}
ANNOTATORS = {"alice", "remy"}

# What a refusal may look like. The admin answers an object it does not show with a redirect to its index.
LOGIN_REDIRECT = frozenset({302})
API_REFUSED_ANONYMOUS = frozenset({401, 403})
FORBIDDEN = frozenset({403})
NOT_FOUND = frozenset({404})
ADMIN_HIDDEN = frozenset({302, 403, 404})
LEASE_GONE = frozenset({403, 404, 409})
OK = frozenset({200})


@dataclass(frozen=True)
class Expect:
    """The statuses a persona may get, and whether the body may contain team A's marker."""

    statuses: frozenset[int]
    may_see_a: bool = False
    to_login: bool = False  # a 302 must go to a sign-in page


TO_LOGIN = Expect(LOGIN_REDIRECT, to_login=True)


@dataclass(frozen=True)
class Probe:
    route: str  # route name (or pattern for unnamed routes) of the URL configuration
    method: str
    url: str
    expect: Callable[[str], Expect]
    data: dict[str, Any] | None = None
    api: bool = False  # also tried with token authentication
    write: bool = False  # tried only by the personas it must refuse; team A's data must not change


# --- the URL configuration ------------------------------------------------------------------------------------


def _walk(patterns: Iterable[Any], prefix: str = "", namespace: str | None = None) -> Iterator[tuple[str, str]]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            ns = f"{namespace}:{pattern.namespace}" if namespace and pattern.namespace else pattern.namespace
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern), ns or namespace)
        elif isinstance(pattern, URLPattern):
            route = prefix + str(pattern.pattern)
            name = f"{namespace}:{pattern.name}" if namespace and pattern.name else pattern.name
            yield route, name or route


def all_routes() -> dict[str, str]:
    """Return {route name (or pattern when unnamed): pattern} for every route of the site."""
    return {key: route for route, key in _walk(get_resolver().url_patterns)}


# --- expectations ---------------------------------------------------------------------------------------------


def research_page(persona: str) -> Expect:
    """A page or API of team A's research results: its owner and superusers; refused to everyone else."""
    return {
        "anonymous": TO_LOGIN,
        "alice": Expect(FORBIDDEN),
        "remy": Expect(FORBIDDEN | NOT_FOUND),
        "bea": Expect(NOT_FOUND),
    }.get(persona, Expect(OK, may_see_a=True))


def research_api(persona: str) -> Expect:
    if persona == "anonymous":
        return Expect(API_REFUSED_ANONYMOUS)
    return research_page(persona)


def research_api_post(persona: str) -> Expect:
    """A write on team A's research API (cancel, resume a run): owner and superuser only."""
    if persona in READERS_OF_A:
        return Expect(frozenset({200, 409}), may_see_a=True)
    return research_api(persona)


def research_api_check(persona: str) -> Expect:
    """A POST on team A's research API that changes nothing (reproduce: an empty body is no manifest, 400)."""
    if persona in READERS_OF_A:
        return Expect(frozenset({400}), may_see_a=True)
    return research_api(persona)


def admin_list(persona: str) -> Expect:
    """A list, add form or index of the admin: every researcher, showing only their own team's data."""
    return {
        "anonymous": TO_LOGIN,
        "alice": Expect(FORBIDDEN),
        "remy": Expect(FORBIDDEN),
        "bea": Expect(OK),
    }.get(persona, Expect(OK, may_see_a=True))


def admin_object(persona: str) -> Expect:
    """A view of one of team A's objects in the admin (403 for the owner too where the admin offers it to nobody,
    as deleting a judge run's history)."""
    return {
        "anonymous": TO_LOGIN,
        "alice": Expect(FORBIDDEN),
        "remy": Expect(FORBIDDEN),
        "bea": Expect(ADMIN_HIDDEN),
    }.get(persona, Expect(OK | FORBIDDEN, may_see_a=True))


def admin_add(persona: str) -> Expect:
    """An add form: researchers may add to their own campaigns only (403 where the admin lets nobody add)."""
    expect = admin_list(persona)
    return Expect(expect.statuses | FORBIDDEN, expect.may_see_a) if persona in STAFF else expect


def admin_superuser_only(persona: str) -> Expect:
    """Accounts, groups and tokens: superusers only (the Researchers group has no auth permissions)."""
    if persona == "root":
        return Expect(OK, may_see_a=True)
    if persona in STAFF:
        return Expect(FORBIDDEN | NOT_FOUND)  # the app's index is a 404 to a user with no permission in it
    return admin_object(persona)


def admin_shared(persona: str) -> Expect:
    """A view of an object every team shares (a model family): researchers may look, superusers change."""
    if persona in STAFF:
        return Expect(OK | FORBIDDEN, may_see_a=persona in READERS_OF_A)
    return admin_object(persona)


def admin_refused(persona: str) -> Expect:
    """A view nobody has (adding an LLM call by hand, say)."""
    if persona in STAFF:
        return Expect(FORBIDDEN)
    return admin_object(persona)


def admin_write(persona: str) -> Expect:
    """A POST on team A's objects by someone who may not make it."""
    return admin_object(persona)


def annotator_post(persona: str) -> Expect:
    """A POST on alice's lease in campaign A (remy posts on his own, whose right ended with his removal)."""
    return {
        "anonymous": Expect(API_REFUSED_ANONYMOUS),
        "alice": Expect(frozenset({200, 201, 204}), may_see_a=True),
        "remy": Expect(LEASE_GONE),
    }.get(persona, Expect(NOT_FOUND))


def annotator_campaigns(persona: str) -> Expect:
    if persona == "anonymous":
        return Expect(API_REFUSED_ANONYMOUS)
    return Expect(OK, may_see_a=persona == "alice")


def signed_in(persona: str) -> Expect:
    """Pages for anyone signed in, showing team A's data to its annotator and owner only."""
    if persona == "anonymous":
        return TO_LOGIN
    return Expect(OK, may_see_a=persona in {"alice", "ada", "root"})


def rating_page(persona: str) -> Expect:
    if persona == "anonymous":
        return TO_LOGIN
    return Expect(OK, may_see_a=True) if persona == "alice" else Expect(NOT_FOUND)


def judges_api(persona: str) -> Expect:
    """Judges: researchers see their own and the operator's; annotators none."""
    return {
        "anonymous": Expect(API_REFUSED_ANONYMOUS),
        "alice": Expect(FORBIDDEN),
        "remy": Expect(FORBIDDEN),
        "bea": Expect(OK),
    }.get(persona, Expect(OK, may_see_a=True))


def judge_report_api(persona: str) -> Expect:
    """Team A's judge report: its owner and superusers; another team's researcher does not learn it exists."""
    return {
        "anonymous": Expect(API_REFUSED_ANONYMOUS),
        "alice": Expect(FORBIDDEN),
        "remy": Expect(FORBIDDEN),
        "bea": Expect(NOT_FOUND),
    }.get(persona, Expect(OK, may_see_a=True))


def api_docs(persona: str) -> Expect:
    """The schema and its documentation page: signed-in users."""
    if persona == "anonymous":
        return Expect(frozenset({302, 401, 403}))
    return Expect(OK)


def public(persona: str) -> Expect:
    return Expect(OK)


def favicon(persona: str) -> Expect:
    return Expect(frozenset({301}))  # to the site's icon, for anyone


def logout(persona: str) -> Expect:
    return Expect(frozenset({405}))  # POST only


def admin_login(persona: str) -> Expect:
    if persona == "anonymous":
        return Expect(OK)
    return Expect(FORBIDDEN) if persona in ANNOTATORS else Expect(LOGIN_REDIRECT)  # signed in: to the index


def admin_staff_page(persona: str) -> Expect:
    """A staff page that shows nothing of any team (password change, the admin's JavaScript catalogue)."""
    return admin_list(persona)


def admin_logout(persona: str) -> Expect:
    if persona in ANNOTATORS:
        return Expect(FORBIDDEN)
    if persona == "anonymous":
        return Expect(LOGIN_REDIRECT)  # to the admin's index, which asks for a sign-in
    return Expect(frozenset({405}))


def admin_catch_all(persona: str) -> Expect:
    if persona in ANNOTATORS:
        return Expect(FORBIDDEN)
    return Expect(frozenset({302, 404}))


# --- the objects of team A that each admin view is tried on ---------------------------------------------------


def _objects(world: World) -> dict[type[models.Model], models.Model]:
    from django.contrib.auth.models import Group, User
    from rest_framework.authtoken.models import Token, TokenProxy

    from annotation.models import AnnotatorStatus, Comparison, Output, Prompt, Rater, RaterAction
    from judging.models import JudgeVerdict, LLMCall, ModelFamily
    from results.models import CampaignReport

    a = world.a
    assert a.judge
    assert a.run
    assert a.verdict
    assert a.call
    token = Token.objects.get_or_create(user=a.owner)[0]
    action = RaterAction.objects.get_or_create(
        campaign=a.campaign,
        rater=a.ratings[0].rater,
        action=RaterAction.Kind.EXCLUDE,
        defaults={"reason": "ALPHA-SECRET reason", "created_at": a.campaign.created_at},
    )[0]
    return {
        Group: Group.objects.get(name="Researchers"),
        User: a.owner,
        TokenProxy: TokenProxy.objects.get(pk=token.pk),
        Campaign: a.campaign,
        CampaignReport: CampaignReport.objects.get(pk=a.campaign.pk),
        Prompt: a.prompts[0],
        Output: a.outputs[0],
        Comparison: a.comparisons[0],
        Rater: a.ratings[0].rater,
        Rating: a.ratings[0],
        AnnotatorStatus: world.status,
        RaterAction: action,
        JudgeConfig: a.judge,
        JudgeRun: a.run,
        JudgeVerdict: a.verdict,
        LLMCall: a.call,
        ModelFamily: ModelFamily.objects.get_or_create(name="shared-family", defaults={"patterns": "gpt-*"})[0],
        JudgePanel: _panel_run_of_a(world).panel,
        PanelRun: _panel_run_of_a(world),
    }


def _panel_run_of_a(world: World) -> PanelRun:
    """Return team A's judge panel's run on its campaign (tests.security.world makes it)."""
    return PanelRun.objects.select_related("panel").get(campaign=world.a.campaign)


SUPERUSER_ONLY_APPS = {"auth", "authtoken"}
ADMIN_VIEWS = ["changelist", "add", "change", "delete", "history"]
# Admin views that nobody has: these models are written only by the platform (calls, verdicts, reports).
ADMIN_NOBODY = {
    ("judging", "llmcall", "add"),
    ("judging", "judgeverdict", "add"),
    ("results", "campaignreport", "add"),
    ("results", "campaignreport", "delete"),
    ("annotation", "rateraction", "add"),  # the audit trail of actions on raters: written by the actions only
    ("annotation", "rateraction", "delete"),
}
# Objects every team shares, which researchers see and superusers change (model families).
ADMIN_SHARED = {("judging", "modelfamily")}
# Admin views a researcher may not use on their own objects either (deletes of data with a history).
ADMIN_CUSTOM: dict[str, Callable[[World], list[Probe]]] = {}


def _admin_probes(world: World) -> list[Probe]:
    probes: list[Probe] = []
    objects = _objects(world)
    for model, model_admin in admin.site._registry.items():
        app, name = model._meta.app_label, model._meta.model_name
        obj = objects[model]
        for view in ADMIN_VIEWS:
            route = f"admin:{app}_{name}_{view}"
            url = reverse(route) if view in {"changelist", "add"} else reverse(route, args=[obj.pk])
            if app in SUPERUSER_ONLY_APPS:
                expect = admin_superuser_only
            elif (app, name, view) in ADMIN_NOBODY:
                expect = admin_refused
            elif (app, name) in ADMIN_SHARED:
                expect = admin_shared
            elif view == "add":
                expect = admin_add
            elif view == "changelist":
                expect = admin_list
            else:
                expect = admin_object
            probes.append(Probe(route, "GET", url, expect))
        unnamed = f"admin/{app}/{name}/<path:object_id>/"
        probes.append(Probe(unnamed, "GET", f"/admin/{app}/{name}/{obj.pk}/", admin_object_redirect(app)))
        if app not in SUPERUSER_ONLY_APPS:
            probes.append(
                Probe(
                    f"admin:{app}_{name}_delete",
                    "POST",
                    reverse(f"admin:{app}_{name}_delete", args=[obj.pk]),
                    admin_write,
                    data={"post": "yes"},
                    write=True,
                )
            )
            for action in ["delete_selected", *(model_admin.actions or [])]:
                probes.append(
                    Probe(
                        f"admin:{app}_{name}_changelist",
                        "POST",
                        reverse(f"admin:{app}_{name}_changelist"),
                        admin_action,
                        data={"action": action, "_selected_action": [str(obj.pk)], "index": "0"},
                        write=True,
                    )
                )
    return probes


def admin_object_redirect(app: str) -> Callable[[str], Expect]:
    """`/admin/app/model/<id>/` redirects to the change view (for anyone the admin lets in)."""

    def expect(persona: str) -> Expect:
        if persona in ANNOTATORS:
            return Expect(FORBIDDEN)
        return Expect(frozenset({301, 302}))

    return expect


def admin_action(persona: str) -> Expect:
    """An admin action on team A's objects by someone who may not: nothing selected that they see, or refused."""
    if persona == "bea":
        return Expect(frozenset({200, 302, 403}))
    return admin_object(persona)


def _custom_admin_probes(world: World) -> list[Probe]:
    a = world.a
    assert a.run is not None
    campaign, run = a.campaign.pk, a.run.pk
    upload = b'{"prompt_id": "x1", "prompt": "injected?", "model": "injected-model-by-bea", "output": "hi"}\n'
    job = ImportJob.objects.create(
        campaign=a.campaign, user=a.owner, kind="outputs", file_name="a.jsonl", token="-", dry_run=True, size_bytes=9
    ).pk
    probes = [
        Probe("admin:index", "GET", reverse("admin:index"), admin_list),
        Probe("admin:login", "GET", reverse("admin:login"), admin_login),
        Probe("admin:logout", "GET", reverse("admin:logout"), admin_logout),
        Probe("admin:password_change", "GET", reverse("admin:password_change"), admin_staff_page),
        Probe("admin:password_change_done", "GET", reverse("admin:password_change_done"), admin_staff_page),
        Probe("admin:jsi18n", "GET", reverse("admin:jsi18n"), admin_staff_page),
        Probe("admin/(?P<url>.*)$", "GET", "/admin/no-such-page/", admin_catch_all),
        Probe(
            "admin:auth_user_password_change",
            "GET",
            reverse("admin:auth_user_password_change", args=[a.owner.pk]),
            admin_superuser_only,
        ),
        Probe(
            "admin:view_on_site",
            "GET",
            reverse("admin:view_on_site", args=[ContentType.objects.get_for_model(Campaign).pk, campaign]),
            admin_view_on_site,
        ),
        Probe(
            "admin:annotation_campaign_import",
            "GET",
            f"/admin/annotation/campaign/{campaign}/import/outputs/",
            admin_object,
        ),
        Probe(
            "admin:annotation_campaign_import_job",
            "GET",
            f"/admin/annotation/campaign/{campaign}/import/outputs/job/{job}/",
            admin_object,
        ),
        Probe(
            "admin:annotation_campaign_generate",
            "GET",
            f"/admin/annotation/campaign/{campaign}/generate/",
            admin_object,
        ),
        Probe(
            "admin:annotation_campaign_status",
            "GET",
            f"/admin/annotation/campaign/{campaign}/status/paused/",
            admin_get_of_post_button,
        ),
        Probe(
            "admin:annotation_campaign_status",
            "POST",
            f"/admin/annotation/campaign/{campaign}/status/paused/",
            admin_write,
            write=True,
        ),
        Probe(
            "admin:annotation_campaign_import",
            "POST",
            f"/admin/annotation/campaign/{campaign}/import/outputs/",
            admin_write,
            data={"file": upload, "dry_run": ""},
            write=True,
        ),
        Probe(
            "admin:annotation_campaign_generate",
            "POST",
            f"/admin/annotation/campaign/{campaign}/generate/",
            admin_write,
            data={"strategy": "all_pairs"},
            write=True,
        ),
        Probe(
            "admin:judging_judgerun_cancel", "POST", f"/admin/judging/judgerun/{run}/cancel/", admin_write, write=True
        ),
        Probe(
            "admin:judging_judgerun_resume", "POST", f"/admin/judging/judgerun/{run}/resume/", admin_write, write=True
        ),
        Probe(
            "admin:judging_judgerun_cancel", "GET", f"/admin/judging/judgerun/{run}/cancel/", admin_get_of_post_button
        ),
        Probe(
            "admin:judging_judgerun_resume", "GET", f"/admin/judging/judgerun/{run}/resume/", admin_get_of_post_button
        ),
        Probe(
            "admin:results_campaignreport_leaderboard",
            "GET",
            reverse("admin:results_campaignreport_leaderboard", args=[campaign]),
            admin_object,
        ),
        Probe(
            "admin:results_campaignreport_agreement",
            "GET",
            reverse("admin:results_campaignreport_agreement", args=[campaign]),
            admin_object,
        ),
    ]
    for app in ["auth", "authtoken", "annotation", "judging", "results"]:
        expect = admin_superuser_only if app in SUPERUSER_ONLY_APPS else admin_list
        probes.append(Probe("admin:app_list", "GET", reverse("admin:app_list", args=[app]), expect))
    # Autocomplete answers only for fields an admin declares (403 otherwise): try one undeclared and every declared.
    query = "?app_label=annotation&model_name=rating&field_name=rater&term=a"
    probes.append(Probe("admin:autocomplete", "GET", reverse("admin:autocomplete") + query, admin_autocomplete))
    for model_admin in admin.site._registry.values():
        for field_name in model_admin.autocomplete_fields or []:
            opts = model_admin.model._meta
            query = f"?app_label={opts.app_label}&model_name={opts.model_name}&field_name={field_name}&term="
            probes.append(Probe("admin:autocomplete", "GET", reverse("admin:autocomplete") + query, admin_list))
    return probes


def admin_autocomplete(persona: str) -> Expect:
    if persona in STAFF:
        return Expect(frozenset({200, 403}), may_see_a=persona in READERS_OF_A)
    return admin_list(persona)


def admin_view_on_site(persona: str) -> Expect:
    """The admin's "view on site" shortcut: campaigns have no page of their own to go to."""
    if persona in ANNOTATORS:
        return Expect(FORBIDDEN)
    if persona == "anonymous":
        return TO_LOGIN
    return Expect(frozenset({302, 404}))


def admin_get_of_post_button(persona: str) -> Expect:
    """A button's URL fetched with GET: refused (405) or shown as a confirmation, never acted on."""
    if persona in READERS_OF_A:
        return Expect(frozenset({200, 302, 405}), may_see_a=True)
    if persona == "bea":
        return Expect(ADMIN_HIDDEN | {405})
    return admin_object(persona)


# --- the site and the API -------------------------------------------------------------------------------------


def _site_probes(world: World) -> list[Probe]:
    a = world.a
    assert a.run is not None
    assert a.judge is not None
    slug, run = a.campaign.slug, a.run.pk
    research = f"/api/v1/research/campaigns/{slug}/"
    runs = f"{research}judge-runs/"
    return [
        Probe("login", "GET", reverse("login"), public),
        Probe("favicon", "GET", "/favicon.ico", favicon),
        Probe("logout", "GET", reverse("logout"), logout),
        Probe("api-schema", "GET", reverse("api-schema"), api_docs),
        Probe("api-docs", "GET", reverse("api-docs"), api_docs),
        Probe("annotator-campaigns", "GET", "/api/v1/annotator/campaigns/", annotator_campaigns, api=True),
        Probe("judge-list", "GET", "/api/v1/judges/", judges_api, api=True),
        Probe("results:judge-report", "GET", f"/results/{slug}/judge-report/?judge={a.judge.pk}", research_page),
        Probe(
            "results-api:judge-report",
            "GET",
            f"/api/v1/judges/{a.judge.pk}/report/?campaign={slug}&bootstrap=10",
            judge_report_api,
            api=True,
        ),
        Probe("results-api:campaign-list", "GET", "/api/v1/research/campaigns/", research_list, api=True),
        Probe("results-api:campaign-detail", "GET", research, research_api, api=True),
        Probe("results-api:comparison-list", "GET", research + "comparisons/", research_api, api=True),
        Probe("results-api:rating-list", "GET", research + "ratings/", research_api, api=True),
        Probe("results-api:leaderboard", "GET", research + "leaderboard/", research_api, api=True),
        Probe("results-api:category-list", "GET", research + "categories/", research_api, api=True),
        Probe("results-api:agreement", "GET", research + "agreement/", research_api, api=True),
        Probe(
            "results-api:length-controlled",
            "GET",
            f"{research}length-controlled/?baseline={a.outputs[0].model_name}",
            research_api,
            api=True,
        ),
        Probe("results-api:export", "GET", research + "export/ratings.jsonl", research_api, api=True),
        Probe("results-api:export-manifest", "GET", research + "export/dpo.csv/manifest/", research_api, api=True),
        Probe("results-api:reproduce", "POST", research + "reproduce/", research_api_check, api=True, data={}),
        Probe("results-api:rater-list", "GET", research + "raters/", research_api, api=True),
        *_option_probes(world),
        Probe("judge-run-list", "GET", runs, research_api, api=True),
        *_panel_probes(world),
        Probe("judge-run-detail", "GET", f"{runs}{run}/", research_api, api=True),
        Probe("judge-verdict-list", "GET", f"{runs}{run}/verdicts/", research_api, api=True),
        Probe("judge-run-cancel", "POST", f"{runs}{run}/cancel/", research_api_post, api=True, data={}),
        Probe("judge-run-resume", "POST", f"{runs}{run}/resume/", research_api_post, api=True, data={}),
        Probe(
            "judge-run-list",
            "POST",
            runs,
            research_api_start_run,
            api=True,
            data={"judge": a.judge.pk if a.judge else 0},
        ),
        *_research_write_probes(world),
        Probe("results:index", "GET", reverse("results:index"), signed_in_researchers),
        Probe("results:leaderboard", "GET", f"/results/{slug}/", research_page),
        Probe("results:agreement", "GET", f"/results/{slug}/agreement/", research_page),
        Probe("results:categories", "GET", f"/results/{slug}/categories/", research_page),
        Probe("results:combined", "GET", f"/results/{slug}/combined/", research_page),
        Probe("results:raters", "GET", f"/results/{slug}/raters/", research_page),
        Probe("results:style", "GET", f"/results/{slug}/style/", research_page),
        Probe(
            "results:raters",
            "POST",
            f"/results/{slug}/raters/",
            research_page,
            data={"rater": "ALPHA-SECRET-imported-rater", "action": "exclude"},
            write=True,
        ),
        Probe("frontend:home", "GET", reverse("frontend:home"), signed_in),
        Probe("frontend:rate", "GET", f"/campaigns/{a.campaign.pk}/rate/", rating_page),
    ]


# The options of this week's reports (issues 13, 16, 17): each takes its own code path after the access check, so
# each is tried by every persona too.
REPORT_OPTIONS = {
    "results-api:leaderboard": [
        "leaderboard/?influence=1&downsample=1",
        "leaderboard/?style_control=1&bootstrap=10",
        "leaderboard/?cluster=rater",
        "leaderboard/?cluster=prompt",
        "leaderboard/?rater_model=1&cluster=rater",
        "leaderboard/?category=alpha-secret-topic",
        "leaderboard/?consistent=1&bootstrap=10",
        "leaderboard/?raters=humans&exclude_raters=x*&include_excluded=1",
    ],
    "results-api:category-list": ["categories/?raters=judges"],
    "results-api:length-controlled": ["length-controlled/?baseline=alpha-secret-model-2&difficulty=none"],
    "results-api:rater-list": ["raters/?alpha=0.01&correction=holm"],
    "results-api:agreement": ["agreement/?consistent=1&bootstrap=10"],
}
PAGE_OPTIONS = {
    "results:leaderboard": ["?influence=1&downsample=1", "?cluster=rater&rater_model=1", "?consistent=1"],
    "results:categories": ["categories/?category=alpha-secret-topic"],
    "results:agreement": ["agreement/?consistent=1"],
    "results:style": ["style/?raters=humans"],
}


def _option_probes(world: World) -> list[Probe]:
    slug = world.a.campaign.slug
    research = f"/api/v1/research/campaigns/{slug}/"
    probes = [
        Probe(route, "GET", research + option, research_api, api=True)
        for route, options in REPORT_OPTIONS.items()
        for option in options
    ]
    probes += [
        Probe(route, "GET", f"/results/{slug}/{option}", research_page)
        for route, options in PAGE_OPTIONS.items()
        for option in options
    ]
    assert world.a.judge is not None
    report = f"/api/v1/judges/{world.a.judge.pk}/report/?bootstrap=10"  # by id: a name would be echoed in a 404
    return [*probes, Probe("results-api:judge-report", "GET", report, judge_report_api, api=True)]


def judge_panels_post(persona: str) -> Expect:
    """Creating a judge panel: researchers (an empty body is no panel: 400), annotators 403."""
    return {
        "anonymous": Expect(API_REFUSED_ANONYMOUS),
        "alice": Expect(FORBIDDEN),
        "remy": Expect(FORBIDDEN),
    }.get(persona, Expect(frozenset({400})))


def _panel_probes(world: World) -> list[Probe]:
    """Judge panels (scoped as judges) and team A's panel runs (as its judge runs)."""
    runs = f"/api/v1/research/campaigns/{world.a.campaign.slug}/panel-runs/"
    run, panel = _panel_run_of_a(world).pk, _panel_run_of_a(world).panel.name
    return [
        Probe("judge-panel-list", "GET", "/api/v1/judge-panels/", judges_api, api=True),
        Probe("judge-panel-list", "POST", "/api/v1/judge-panels/", judge_panels_post, api=True, data={}),
        Probe("panel-run-list", "GET", runs, research_api, api=True),
        Probe("panel-run-list", "POST", runs, research_api_start_run, api=True, data={"panel": panel}),
        Probe("panel-run-detail", "GET", f"{runs}{run}/", research_api, api=True),
        Probe("panel-run-cancel", "POST", f"{runs}{run}/cancel/", research_api_post, api=True, data={}),
        Probe("panel-run-resume", "POST", f"{runs}{run}/resume/", research_api_post, api=True, data={}),
    ]


def _research_write_probes(world: World) -> list[Probe]:
    """The research write API on team A's campaign (refused writes only: the owner's are its own tests')."""
    research = f"/api/v1/research/campaigns/{world.a.campaign.slug}/"
    job = ImportJob.objects.create(
        campaign=world.a.campaign,
        user=world.a.owner,
        kind="outputs",
        file_name="a.jsonl",
        token="-",
        dry_run=True,
        size_bytes=9,
    ).pk
    rows = [{"prompt_id": "x1", "prompt": "injected?", "model": "injected-model-by-bea", "output": "hi"}]
    gold = [
        {
            "prompt_id": "ALPHA-SECRET-p0",
            "model_a": "alpha-secret-model-1",
            "model_b": "alpha-secret-model-2",
            "gold": "tie",
        }
    ]
    write = "research-write:"
    return [
        Probe(
            "results-api:campaign-list",
            "POST",
            "/api/v1/research/campaigns/",
            research_create,
            api=True,
            data={"name": "Made by a probe", "slug": "made-by-probe"},
        ),
        Probe(
            "results-api:campaign-detail", "PATCH", research, research_write, api=True, data={"name": "x"}, write=True
        ),
        Probe(
            write + "outputs-upload",
            "POST",
            research + "outputs/",
            research_write,
            api=True,
            data={"records": rows},
            write=True,
        ),
        Probe(
            write + "gold-upload",
            "POST",
            research + "gold/",
            research_write,
            api=True,
            data={"records": gold},
            write=True,
        ),
        Probe(write + "import-job", "GET", f"{research}imports/{job}/", research_api, api=True),
        Probe(
            "results-api:rater-action",
            "POST",
            research + "raters/actions/",
            research_write,
            api=True,
            data={"rater": "ALPHA-SECRET-imported-rater", "action": "exclude", "reason": "probe"},
            write=True,
        ),
        Probe(
            write + "comparisons-generate",
            "POST",
            research + "comparisons/generate/",
            research_write,
            api=True,
            data={"strategy": "all_pairs"},
            write=True,
        ),
        Probe(
            write + "annotators-set",
            "PUT",
            research + "annotators/",
            research_write,
            api=True,
            data={"users": ["bea"], "group": None},
            write=True,
        ),
        Probe(
            write + "status-change",
            "POST",
            research + "status/",
            research_write,
            api=True,
            data={"status": "closed"},
            write=True,
        ),
    ]


def research_write(persona: str) -> Expect:
    """A write on team A's campaign through the research API: its owner and superusers, refused to the rest."""
    if persona in READERS_OF_A:
        return Expect(frozenset({200, 201, 202, 400, 409}), may_see_a=True)
    return research_api(persona)


def research_create(persona: str) -> Expect:
    """Creating a campaign: researchers (the add permission), not annotators; shows nothing of team A to bea."""
    if persona == "anonymous":
        return Expect(API_REFUSED_ANONYMOUS)
    if persona in ANNOTATORS:
        return Expect(FORBIDDEN)
    return Expect(frozenset({201}), may_see_a=persona in READERS_OF_A)


def research_list(persona: str) -> Expect:
    if persona == "anonymous":
        return Expect(API_REFUSED_ANONYMOUS)
    return Expect(OK, may_see_a=persona in READERS_OF_A)


def signed_in_researchers(persona: str) -> Expect:
    """The index of results pages: anyone signed in sees the campaigns they research (none for annotators)."""
    if persona == "anonymous":
        return TO_LOGIN
    return Expect(OK, may_see_a=persona in READERS_OF_A)


def research_api_start_run(persona: str) -> Expect:
    if persona in READERS_OF_A:
        return Expect(frozenset({201, 400, 409}), may_see_a=True)
    return research_api(persona)


def _annotator_probes(world: World, persona: str) -> list[Probe]:
    """Alice's lease (remy's own for remy, whose right to it ended when he was removed from the campaign)."""
    assignment = world.assignments.get(persona, world.assignments["alice"]).pk
    base = f"/api/v1/assignments/{assignment}/"
    campaign = world.a.campaign.pk
    write = persona != "alice"
    return [
        Probe("lease-renew", "POST", base + "heartbeat/", annotator_post, data={}, api=True, write=write),
        Probe(
            "rating-create", "POST", base + "rating/", annotator_post, data={"choice": "left"}, api=True, write=write
        ),
        Probe("rating-undo", "POST", base + "undo/", annotator_post, data={}, api=True, write=write),
        Probe("assignment-skip", "POST", base + "skip/", annotator_post, data={}, api=True, write=write),
        Probe(
            "assignment-next",
            "POST",
            f"/api/v1/campaigns/{campaign}/next/",
            annotator_next,
            data={},
            api=True,
            write=write,
        ),
    ]


def annotator_next(persona: str) -> Expect:
    if persona == "alice":
        return Expect(frozenset({200, 204}), may_see_a=True)
    if persona == "anonymous":
        return Expect(API_REFUSED_ANONYMOUS)
    return Expect(NOT_FOUND)


def probes_for(world: World, persona: str) -> list[Probe]:
    probes = _admin_probes(world) + _custom_admin_probes(world) + _site_probes(world)
    return probes + _annotator_probes(world, persona)


# --- the sweep ------------------------------------------------------------------------------------------------


def fingerprint(world: World) -> dict[str, Any]:
    """Team A's data, in a form that changes when any of it is written."""
    a = world.a
    campaign = Campaign.objects.get(pk=a.campaign.pk)
    return {
        "campaign": (campaign.status, campaign.name, campaign.updated_at),
        "annotators": (campaign.annotator_group_id, sorted(campaign.annotators.values_list("username", flat=True))),
        "prompts": sorted(a.campaign.prompts.values_list("id", "text")),
        "outputs": sorted(a.campaign.prompts.values_list("outputs__id", "outputs__model_name", "outputs__text")),
        "comparisons": sorted(Campaign.objects.get(pk=a.campaign.pk).comparisons.values_list("id", "gold_verdict")),
        "ratings": sorted(Rating.objects.filter(comparison__campaign=a.campaign).values_list("id", "verdict")),
        "assignments": sorted(
            Assignment.objects.filter(comparison__campaign=a.campaign).values_list("id", "state", "lease_expires_at")
        ),
        "judges": sorted(JudgeConfig.objects.values_list("id", "name", "base_url", "api_key_env")),
        "runs": sorted(JudgeRun.objects.filter(campaign=a.campaign).values_list("id", "status")),
        "raters": sorted(world.a.ratings[0].rater.__class__.objects.values_list("id", "name")),
    }


def _client_for(world: World, persona: str, auth: str) -> Client:
    client = Client(enforce_csrf_checks=False)
    user = world.users[persona]
    if user is not None:
        if auth == "session":
            client.force_login(user)
        else:
            client.defaults["HTTP_AUTHORIZATION"] = f"Token {world.token(persona)}"
    return client


def _send(client: Client, probe: Probe) -> Any:
    if probe.method == "GET":
        return client.get(probe.url)
    data = dict(probe.data or {})
    if any(isinstance(v, bytes) for v in data.values()):
        files = {k: io.BytesIO(v) for k, v in data.items() if isinstance(v, bytes)}
        for key, handle in files.items():
            handle.name = "outputs.jsonl"
            data[key] = handle
        return client.post(probe.url, data)
    if probe.url.startswith("/api/"):
        return client.generic(probe.method, probe.url, json.dumps(data), content_type="application/json")
    return client.post(probe.url, data)


def _body(response: Any) -> bytes:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content)
    return bytes(response.content)


def sweep(world: World, persona: str, auth: str) -> list[str]:
    """Try every probe as the persona; return what went wrong, one line each."""
    failures = []
    client = _client_for(world, persona, auth)
    before = fingerprint(world)
    for probe in probes_for(world, persona):
        if auth == "token" and not probe.api:
            continue
        expect = probe.expect(persona)
        if probe.write and expect.may_see_a:
            continue  # the owner's writes are the product's own tests' business
        response = _send(client, probe)
        body = _body(response)
        where = f"{persona}/{auth} {probe.method} {probe.url}"
        if response.status_code >= 500:
            failures.append(f"{where}: server error {response.status_code}")
        elif response.status_code not in expect.statuses:
            failures.append(f"{where}: {response.status_code}, expected {sorted(expect.statuses)}")
        if not expect.may_see_a and MARKER.encode() in body.lower():
            at = body.lower().index(MARKER.encode())
            failures.append(f"{where}: team A's data in the body: ...{body[max(0, at - 60) : at + 60]!r}...")
        if response.status_code == 302 and expect.to_login and "login" not in response["Location"]:
            failures.append(f"{where}: redirected to {response['Location']}, not to a login page")
    if persona not in {"alice", "ada", "root"}:
        after = fingerprint(world)
        for key in before:
            if before[key] != after[key]:
                failures.append(f"{persona}/{auth}: team A's {key} changed: {before[key]!r} -> {after[key]!r}")
    return failures


def test_every_route_has_an_entry(db: None) -> None:
    world = build_world()
    covered = {probe.route for persona in PERSONAS for probe in probes_for(world, persona)}
    missing = sorted(set(all_routes()) - covered)
    assert not missing, f"routes without an entry in the security matrix: {missing}"
    registered = set(admin.site._registry)
    assert registered <= set(_objects(world)), "every registered admin model needs an object of team A to try"


@pytest.mark.parametrize("auth", ["session", "token"])
@pytest.mark.parametrize("persona", PERSONAS)
def test_every_route_answers_each_persona_as_expected_and_leaks_nothing(persona: str, auth: str) -> None:
    if auth == "token" and persona == "anonymous":
        pytest.skip("no token to send")
    failures = sweep(build_world(), persona, auth)
    assert not failures, f"{len(failures)} problems:\n" + "\n".join(failures)


def test_the_annotator_page_is_blind_to_model_names(db: None) -> None:
    """Alice sees team A's texts to rate them, never which model wrote them."""
    world = build_world()
    client = _client_for(world, "alice", "session")
    bodies = [
        _body(client.get(f"/campaigns/{world.a.campaign.pk}/rate/")),
        _body(client.post(f"/api/v1/campaigns/{world.a.campaign.pk}/next/", "{}", content_type="application/json")),
        _body(client.get("/api/v1/annotator/campaigns/")),
    ]
    for body in bodies:
        assert b"alpha-secret-model" not in body.lower()
    assert re.search(rb"alpha-secret answer", bodies[1], re.IGNORECASE)
