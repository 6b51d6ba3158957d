"""Judges shared between teams (issue 12, items 1, 3 and 6): owners and scoping, the operator's key and endpoint
allow-lists (at save time and in the worker), runs that an edited judge cannot redirect, and verdict patterns that
cannot hang a worker.

Personas: rita owns campaign A (the `campaign` fixture) and judge A; bea owns campaign B and judge B; both have the
demo's researcher permissions; root is a superuser; "operator-judge" was made by the operator (no owner).
"""

from __future__ import annotations

import asyncio
import http.server
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from annotation.models import Campaign
from evalplatform.exceptions import Conflict, DomainError
from judging import access, batch, llm, policy, prompts, services
from judging.models import JudgeConfig, JudgeRun, JudgeVerdict, LLMCall
from tests import factories
from tests.judging.conftest import LocalLLM, judge_form

MakeJudge = Callable[..., JudgeConfig]
ClientFor = Callable[[User | None], Any]


def _researcher(username: str) -> User:
    user = factories.UserFactory.create(username=username, is_staff=True)
    apps = ["annotation", "judging", "results"]  # the demo's Researchers group
    user.user_permissions.set(Permission.objects.filter(content_type__app_label__in=apps))
    return user


@dataclass
class Teams:
    rita: User
    bea: User
    root: User
    campaign_a: Campaign
    campaign_b: Campaign
    judge_a: JudgeConfig
    judge_b: JudgeConfig
    operator_judge: JudgeConfig


@pytest.fixture
def teams(campaign: Campaign, researcher: User) -> Teams:
    researcher.user_permissions.add(*Permission.objects.filter(content_type__app_label__in=["judging", "results"]))
    bea = _researcher("bea")
    campaign_b = factories.CampaignFactory.create(owner=bea, status="active", name="Bravo campaign")
    factories.populate_campaign(campaign_b, prompts=2, models=["model-x", "model-y"])
    root = factories.UserFactory.create(username="root", is_staff=True, is_superuser=True)
    base: dict[str, Any] = {
        "base_url": "http://127.0.0.1:9/v1",
        "model": "m",
        "template": "arena_hard",
        "timeout_seconds": 2.0,
    }
    return Teams(
        rita=researcher,
        bea=bea,
        root=root,
        campaign_a=campaign,
        campaign_b=campaign_b,
        judge_a=services.create_judge(name="alpha-secret-judge", owner=researcher, **base),
        judge_b=services.create_judge(name="bravo-judge", owner=bea, **base),
        operator_judge=services.create_judge(name="operator-judge", **base),
    )


def _client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _form(**changes: str) -> dict[str, str]:
    return judge_form(**{"name": "new-judge", "base_url": "http://127.0.0.1:9/v1", "model": "m", **changes})


def _judge_all(run: JudgeRun) -> None:
    for verdict_id in run.verdicts.values_list("pk", flat=True):
        services.judge_verdict(verdict_id=verdict_id, worker="test")


# --- the operator's key variables -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["DJANGO_SECRET_KEY", "DATABASE_URL", "CELERY_BROKER_URL", "HOME", "lower_case"])
def test_a_key_variable_outside_the_allow_list_is_refused_on_its_field_even_when_listed(
    db: None, settings: Any, name: str
) -> None:
    settings.EVALPLATFORM_JUDGE_KEY_ENVS = ["DJANGO_SECRET_KEY", "DATABASE_URL", "CELERY_BROKER_URL", "OPENAI_API_KEY"]
    with pytest.raises(DomainError) as caught:
        services.create_judge(name="leaky", base_url="http://127.0.0.1:9/v1", model="m", api_key_env=name)
    assert caught.value.field == "api_key_env"
    assert not JudgeConfig.objects.filter(name="leaky").exists()


def test_a_key_variable_bound_to_an_endpoint_is_refused_for_another(db: None, settings: Any) -> None:
    settings.EVALPLATFORM_JUDGE_KEY_ENVS = ["OPENAI_API_KEY=http://127.0.0.1:8001/v1", "LOCAL_KEY"]
    services.create_judge(name="ok", base_url="http://127.0.0.1:8001/v1", model="m", api_key_env="OPENAI_API_KEY")
    services.create_judge(name="any", base_url="http://127.0.0.1:9/v1", model="m", api_key_env="LOCAL_KEY")
    with pytest.raises(DomainError, match="OPENAI_API_KEY may be sent only to") as caught:
        services.create_judge(
            name="elsewhere", base_url="http://127.0.0.1:9/v1", model="m", api_key_env="OPENAI_API_KEY"
        )
    assert caught.value.field == "api_key_env"


def test_researcher_b_cannot_save_a_judge_naming_the_secret_key_in_the_admin(teams: Teams) -> None:
    response = _client(teams.bea).post(reverse("admin:judging_judgeconfig_add"), _form(api_key_env="DJANGO_SECRET_KEY"))
    assert response.status_code == 200
    assert "DJANGO_SECRET_KEY holds the server&#x27;s own secrets" in response.content.decode()
    assert "api_key_env" in response.context["adminform"].form.errors
    assert not JudgeConfig.objects.filter(name="new-judge").exists()


def test_the_worker_checks_the_key_variable_again_and_never_reads_a_delisted_one(
    teams: Teams, local_llm: LocalLLM, settings: Any, sent: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, server = local_llm()
    settings.EVALPLATFORM_JUDGE_KEY_ENVS = ["JUDGE_KEY"]
    monkeypatch.setenv("JUDGE_KEY", "sk-test")
    judge = services.create_judge(name="keyed", owner=teams.rita, base_url=url, model="m", api_key_env="JUDGE_KEY")
    run = services.start_run(campaign=teams.campaign_a, judge=judge, limit=1, requested_by=teams.rita)
    settings.EVALPLATFORM_JUDGE_KEY_ENVS = []  # the operator withdrew it after the judge was saved
    _judge_all(run)
    assert set(run.verdicts.values_list("state", flat=True)) == {JudgeVerdict.State.FAILED}
    assert "JUDGE_KEY is not a key variable the operator allows" in run.verdicts.first().reason  # type: ignore[union-attr]
    run.refresh_from_db()
    assert run.status == JudgeRun.Status.FAILED
    assert server.stats["requests"] == 0


def test_the_call_pool_refuses_a_delisted_key_variable_before_reading_the_environment(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    read: list[str] = []
    monkeypatch.setattr(os.environ, "get", lambda name, default=None: read.append(name))
    pool = llm.CallPool(timeout=1, limit=1)
    request = llm.ChatRequest("http://127.0.0.1:9/v1", "m", (("user", "hi"),), 0.0, 8)
    pool.submit("k", request, api_key_env="DJANGO_SECRET_KEY")
    [(_, outcome)] = pool.collect(5)
    assert isinstance(outcome, llm.PermanentLLMError)
    assert "never sent to a judge" in outcome.reason
    assert read == []


# --- the operator's endpoints ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.5/v1",
        "http://192.168.1.10:8001/v1",
        "http://172.16.0.1/v1",
        "http://169.254.169.254/latest/meta-data",
        "http://127.0.0.2:8001/v1",
        "http://[::1]:8001/v1",
        "http://[::ffff:127.0.0.1]:8001/v1",
        "http://0.0.0.0:8001/v1",
        "http://2130706433:8001/v1",  # 127.0.0.1 in decimal
        "http://0177.0.0.1:8001/v1",  # in octal
        "http://0x7f.0.0.1:8001/v1",  # in hex
        "http://127.1:8001/v1",
        "http://allowed.example@127.0.0.1:8001/v1",  # user-info trick: the host is 127.0.0.1
        "http://127.0.0.1:8001@evil.example/v1",
        "http://127.0.0.1:8001/v10",  # not below /v1 at a "/" boundary
        "http://127.0.0.1:8001/v1/../admin",
        "https://127.0.0.1:8001/v1",  # another scheme
        "http://127.0.0.1:8002/v1",  # another port
        "ftp://127.0.0.1:8001/v1",
        "http://127.0.0.1:8001/v1?x=1",
        "http://127.0.0.1:80\t01/v1",  # urlsplit drops the tab: it would read as the allowed port
        "http://127.0.0.1:8001/v\n1",
        "http://127.0.0.1:8001/v1/\u0430",
    ],
)
def test_an_endpoint_not_allowed_by_the_operator_is_refused_on_its_field(db: None, settings: Any, url: str) -> None:
    settings.EVALPLATFORM_JUDGE_ALLOWED_ENDPOINTS = ["http://127.0.0.1:8001/v1", "http://allowed.example/v1"]
    with pytest.raises(DomainError) as caught:
        services.create_judge(name="ssrf", base_url=url, model="m")
    assert caught.value.field == "base_url"
    assert not JudgeConfig.objects.filter(name="ssrf").exists()


def test_production_allows_no_endpoint_until_the_operator_lists_one(db: None, settings: Any) -> None:
    settings.EVALPLATFORM_JUDGE_ALLOWED_ENDPOINTS = []
    with pytest.raises(DomainError, match="EVALPLATFORM_JUDGE_ALLOWED_ENDPOINTS: none"):
        services.create_judge(name="any", base_url="http://127.0.0.1:8001/v1", model="m")


def test_a_hostname_resolving_to_loopback_is_refused_unless_its_address_is_allowed(db: None, settings: Any) -> None:
    settings.EVALPLATFORM_JUDGE_ALLOWED_ENDPOINTS = ["http://localhost:8001/v1"]
    with pytest.raises(DomainError, match=r"resolves to 127\.0\.0\.1 is a loopback") as caught:
        services.create_judge(name="local", base_url="http://localhost:8001/v1", model="m")
    assert caught.value.field == "base_url"
    settings.EVALPLATFORM_JUDGE_PRIVATE_NETWORKS = ["127.0.0.0/8", "::1/128"]
    services.create_judge(name="local", base_url="http://localhost:8001/v1", model="m")


def test_a_public_hostname_is_refused_when_any_of_its_addresses_is_private(
    db: None, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.EVALPLATFORM_JUDGE_ALLOWED_ENDPOINTS = ["https://api.example.com/v1"]
    monkeypatch.setattr(policy, "resolve", lambda host, port: ["93.184.216.34"])
    services.create_judge(name="public", base_url="https://api.example.com/v1", model="m")
    monkeypatch.setattr(policy, "resolve", lambda host, port: ["93.184.216.34", "10.1.2.3"])
    with pytest.raises(DomainError, match=r"resolves to 10\.1\.2\.3"):
        services.create_judge(name="rebound", base_url="https://api.example.com/v1/", model="m")


def test_researcher_b_cannot_point_a_judge_at_the_metadata_service_in_the_admin(teams: Teams) -> None:
    form = _form(base_url="http://169.254.169.254/latest")
    response = _client(teams.bea).post(reverse("admin:judging_judgeconfig_add"), form)
    assert response.status_code == 200
    assert "base_url" in response.context["adminform"].form.errors
    assert not JudgeConfig.objects.filter(name="new-judge").exists()


def test_the_worker_refuses_a_host_that_resolves_to_loopback_at_call_time(
    teams: Teams, settings: Any, sent: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.EVALPLATFORM_JUDGE_ALLOWED_ENDPOINTS = ["http://rebind.example:8001/v1"]
    monkeypatch.setattr(policy, "resolve", lambda host, port: ["93.184.216.34"])
    judge = services.create_judge(name="rebind", owner=teams.rita, base_url="http://rebind.example:8001/v1", model="m")
    run = services.start_run(campaign=teams.campaign_a, judge=judge, limit=1, requested_by=teams.rita)
    monkeypatch.setattr(policy, "resolve", lambda host, port: ["127.0.0.1"])  # DNS rebinding after the check
    _judge_all(run)
    [reason] = set(run.verdicts.values_list("reason", flat=True))
    assert "resolves to 127.0.0.1 is a loopback" in reason
    run.refresh_from_db()
    assert run.status == JudgeRun.Status.FAILED


def test_the_connection_resolver_refuses_loopback_unless_allowed(settings: Any) -> None:
    settings.EVALPLATFORM_JUDGE_ALLOWED_ENDPOINTS = ["http://localhost:8001/v1"]

    async def resolve() -> Any:
        resolver = llm.GuardedResolver()
        try:
            return await resolver.resolve("localhost", 8001)
        finally:
            await resolver.close()

    with pytest.raises(llm.AddressRefused, match=r"127\.0\.0\.1"):
        asyncio.run(resolve())
    settings.EVALPLATFORM_JUDGE_PRIVATE_NETWORKS = ["127.0.0.0/8"]
    assert {r["host"] for r in asyncio.run(resolve())} == {"127.0.0.1"}


@pytest.fixture
def redirecting_server(local_llm: LocalLLM, settings: Any) -> Iterator[tuple[str, Any]]:
    """Return an allowed endpoint that answers every request with a redirect to the local LLM server (not allowed)."""
    target, target_server = local_llm()
    settings.EVALPLATFORM_JUDGE_ALLOWED_ENDPOINTS = []

    class Redirect(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.send_response(307)
            self.send_header("Location", target.removesuffix("/v1") + self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    settings.EVALPLATFORM_JUDGE_ALLOWED_ENDPOINTS = [url]
    yield url, target_server
    server.shutdown()
    server.server_close()


def test_clients_follow_no_redirect_to_another_host(redirecting_server: tuple[str, Any]) -> None:
    url, target = redirecting_server
    request = llm.ChatRequest(url, "m", (("user", "hi"),), 0.0, 8)
    with pytest.raises(llm.PermanentLLMError, match="HTTP 307"):
        llm.complete(request, api_key_env="", timeout=5)
    pool = llm.CallPool(timeout=5, limit=1)
    pool.submit("k", request, api_key_env="")
    [(_, outcome)] = pool.collect(10)
    assert isinstance(outcome, llm.PermanentLLMError)
    assert "HTTP 307" in outcome.reason
    assert target.stats["requests"] == 0


# --- owners and scoping ---------------------------------------------------------------------------------------


def test_a_researcher_lists_their_own_and_the_operators_judges_only(teams: Teams, api_client_for: ClientFor) -> None:
    assert set(access.usable_judges(teams.bea).values_list("name", flat=True)) == {"bravo-judge", "operator-judge"}
    listed = api_client_for(teams.bea).get("/api/v1/judges/")
    assert {j["name"]: j["owner"] for j in listed.json()} == {"bravo-judge": "bea", "operator-judge": None}
    page = _client(teams.bea).get(reverse("admin:judging_judgeconfig_changelist")).content.decode()
    assert "bravo-judge" in page
    assert "operator-judge" in page
    assert "alpha-secret-judge" not in page
    assert len(access.usable_judges(teams.root)) == 3


def test_researcher_b_cannot_see_or_edit_researcher_as_judge_in_the_admin(teams: Teams) -> None:
    bea = _client(teams.bea)
    change = reverse("admin:judging_judgeconfig_change", args=[teams.judge_a.pk])
    assert bea.get(change).status_code == 404
    response = bea.post(change, _form(name="alpha-secret-judge", base_url="http://127.0.0.1:8001/v1"))
    assert response.status_code == 404
    for view in ("history", "delete"):
        assert bea.get(reverse(f"admin:judging_judgeconfig_{view}", args=[teams.judge_a.pk])).status_code == 404
    teams.judge_a.refresh_from_db()
    assert teams.judge_a.base_url == "http://127.0.0.1:9/v1"


def test_only_superusers_change_an_operators_judge(teams: Teams) -> None:
    change = reverse("admin:judging_judgeconfig_change", args=[teams.operator_judge.pk])
    form = _form(name="operator-judge", model="changed")
    bea = _client(teams.bea)
    assert bea.get(change).status_code == 200  # read-only: they may use it
    assert bea.post(change, form).status_code == 403
    assert bea.post(reverse("admin:judging_judgeconfig_delete", args=[teams.operator_judge.pk])).status_code == 403
    teams.operator_judge.refresh_from_db()
    assert teams.operator_judge.model == "m"
    assert _client(teams.root).post(change, form).status_code == 302
    teams.operator_judge.refresh_from_db()
    assert (teams.operator_judge.model, teams.operator_judge.owner) == ("changed", None)


def test_a_judge_made_in_the_admin_belongs_to_its_maker(teams: Teams) -> None:
    response = _client(teams.bea).post(reverse("admin:judging_judgeconfig_add"), _form(owner=str(teams.rita.pk)))
    assert response.status_code == 302
    assert JudgeConfig.objects.get(name="new-judge").owner == teams.bea  # the owner field is the superuser's only
    edit = reverse("admin:judging_judgeconfig_change", args=[JudgeConfig.objects.get(name="new-judge").pk])
    assert _client(teams.bea).post(edit, _form(model="mine")).status_code == 302


def test_researcher_b_cannot_start_a_run_with_researcher_as_judge_anywhere(
    teams: Teams, sent: list[Any], api_client_for: ClientFor
) -> None:
    bea = _client(teams.bea)
    response = bea.post(
        reverse("admin:judging_judgerun_add"), {"campaign": teams.campaign_b.pk, "judge": teams.judge_a.pk}
    )
    assert response.status_code == 200
    assert "judge" in response.context["adminform"].form.errors
    bea.post(
        reverse("admin:annotation_campaign_changelist"),
        {"action": "judge_campaigns", "_selected_action": [teams.campaign_b.pk], "judge": teams.judge_a.pk},
    )
    bea.post(
        reverse("admin:judging_judgeconfig_changelist"),
        {"action": "judge_a_campaign", "_selected_action": [teams.judge_a.pk], "campaign": teams.campaign_b.pk},
    )
    api = api_client_for(teams.bea).post(
        f"/api/v1/research/campaigns/{teams.campaign_b.slug}/judge-runs/", {"judge": teams.judge_a.name}, format="json"
    )
    assert api.status_code == 400
    assert api.json()["judge"] == ["judge: no judge named 'alpha-secret-judge' that you may use"]
    with pytest.raises(DomainError) as caught:
        services.start_run(campaign=teams.campaign_b, judge=teams.judge_a, requested_by=teams.bea)
    assert caught.value.field == "judge"
    with pytest.raises(CommandError, match="no judge named 'alpha-secret-judge' that you may use"):
        call_command(
            "judge", teams.campaign_b.slug, "--judge", teams.judge_a.name, "--requested-by", "bea", stdout=StringIO()
        )
    assert not JudgeRun.objects.filter(judge=teams.judge_a).exists()
    # their own and the operator's judges do start
    services.start_run(campaign=teams.campaign_b, judge=teams.operator_judge, limit=1, requested_by=teams.bea)
    api = api_client_for(teams.bea).post(
        f"/api/v1/research/campaigns/{teams.campaign_b.slug}/judge-runs/",
        {"judge": teams.judge_b.name, "limit": 1},
        format="json",
    )
    assert api.status_code == 201


def test_the_judge_command_acting_for_a_user_needs_their_campaign(teams: Teams) -> None:
    with pytest.raises(CommandError, match="bea is not a researcher of"):
        call_command(
            "judge", teams.campaign_a.slug, "--judge", "operator-judge", "--requested-by", "bea", stdout=StringIO()
        )


@pytest.fixture
def judged(teams: Teams) -> Teams:
    """Give each team a run with a verdict and its stored call."""
    for label, judge, campaign, owner in (
        ("alpha-secret", teams.judge_a, teams.campaign_a, teams.rita),
        ("bravo", teams.judge_b, teams.campaign_b, teams.bea),
    ):
        run = JudgeRun.objects.create(campaign=campaign, judge=judge, requested_by=owner)
        request_hash = (label.encode().hex() * 8)[:64]
        LLMCall.objects.create(
            request_hash=request_hash, model=judge.model, request={"messages": [f"{label} prompt"]},
            response={}, text=f"{label} reply",
        )  # fmt: skip
        JudgeVerdict.objects.create(
            judge=judge, comparison=campaign.comparisons.all()[0], order="ab", run=run, request_hash=request_hash,
            raw_response=f"{label} reply",
        )  # fmt: skip
    return teams


def test_researcher_b_sees_no_judge_run_verdict_or_call_of_team_a_in_the_admin(judged: Teams) -> None:
    bea = _client(judged.bea)
    run_a = JudgeRun.objects.get(judge=judged.judge_a)
    verdict_a = JudgeVerdict.objects.get(judge=judged.judge_a)
    call_a = LLMCall.objects.get(text="alpha-secret reply")
    call_b = LLMCall.objects.get(text="bravo reply")
    for model in ["judgerun", "judgeverdict", "llmcall", "judgeconfig"]:
        page = bea.get(reverse(f"admin:judging_{model}_changelist"))
        assert page.status_code == 200
        body = page.content.decode().lower()
        for secret in ("alpha-secret", judged.campaign_a.name.lower(), call_a.pk[:12]):
            assert secret not in body, (model, secret)
        assert ("bravo" if model != "llmcall" else call_b.pk[:12]) in body, model
    for model, pk in (("judgerun", run_a.pk), ("judgeverdict", verdict_a.pk), ("llmcall", call_a.pk)):
        for view in ("change", "history", "delete"):
            response = bea.get(reverse(f"admin:judging_{model}_{view}", args=[pk]))
            assert response.status_code in (403, 404), (model, view)
            assert "alpha-secret" not in response.content.decode().lower()
    for button in ("cancel", "resume"):
        assert bea.post(reverse(f"admin:judging_judgerun_{button}", args=[run_a.pk])).status_code == 404
    bea.post(reverse("admin:judging_judgerun_changelist"), {"action": "cancel_runs", "_selected_action": [run_a.pk]})
    run_a.refresh_from_db()
    assert run_a.status == JudgeRun.Status.QUEUED
    everything = _client(judged.root).get(reverse("admin:judging_llmcall_changelist")).content.decode()
    assert call_a.pk[:12] in everything


def test_the_verdict_and_call_lists_of_a_researcher_show_their_own(judged: Teams) -> None:
    assert list(access.visible_llm_calls(judged.bea).values_list("text", flat=True)) == ["bravo reply"]
    assert list(access.visible_verdicts(judged.rita).values_list("raw_response", flat=True)) == ["alpha-secret reply"]


# --- an edited judge cannot redirect runs already started -------------------------------------------------------


def test_a_run_fails_rather_than_call_the_endpoint_its_judge_was_changed_to(
    teams: Teams, local_llm: LocalLLM, sent: list[Any]
) -> None:
    first, first_server = local_llm()
    second, second_server = local_llm()
    judge = services.create_judge(name="shared", base_url=first, model="m", template="arena_hard")
    run = services.start_run(campaign=teams.campaign_a, judge=judge, limit=2, requested_by=teams.rita)
    assert (run.base_url, run.model, run.api_key_env) == (first, "m", "")
    services.update_judge(judge=judge, base_url=second)  # the operator (or the owner) edits it
    _judge_all(run)
    reasons = set(run.verdicts.values_list("reason", flat=True))
    assert reasons == {
        f"judge shared's endpoint changed since run #{run.pk} started (was m at {first} (key -), now m at {second} "
        "(key -)); not calling it: start a new run to use the judge as it is now"
    }
    run.refresh_from_db()
    assert run.status == JudgeRun.Status.FAILED
    assert "endpoint changed" in run.error
    assert first_server.stats["requests"] == second_server.stats["requests"] == 0
    with pytest.raises(Conflict, match="endpoint changed since it started"):
        services.resume_run(run=run, retry_failed=True)
    again = services.start_run(campaign=teams.campaign_a, judge=judge, limit=2, requested_by=teams.rita)
    _judge_all(again)
    assert set(again.verdicts.values_list("state", flat=True)) == {JudgeVerdict.State.DONE}
    assert second_server.stats["completions"] == 4


def test_the_worker_refuses_an_endpoint_the_operator_no_longer_allows(
    teams: Teams, local_llm: LocalLLM, sent: list[Any], settings: Any
) -> None:
    url, server = local_llm()
    run = services.start_run(
        campaign=teams.campaign_a, judge=services.create_judge(name="j", base_url=url, model="m"), limit=1
    )
    settings.EVALPLATFORM_JUDGE_ALLOWED_ENDPOINTS = []
    _judge_all(run)
    [reason] = set(run.verdicts.values_list("reason", flat=True))
    assert reason.startswith("refused by the operator's rules: base_url:")
    assert server.stats["requests"] == 0
    assert batch.call_problem(run.judge) is not None


# --- verdict patterns (item 6) ----------------------------------------------------------------------------------

REDOS = r"(?P<verdict>(.*.*)*@)"


def test_the_issues_redos_pattern_answers_promptly_on_a_long_reply() -> None:
    outcome: list[BaseException] = []

    def parse() -> None:
        try:
            prompts.parse_pattern_verdict("a" * 200_000 + "!", REDOS)
        except prompts.VerdictParseError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=parse, daemon=True)
    thread.start()
    thread.join(10)  # Python's re takes far longer than this (backtracking); RE2 takes milliseconds
    assert not thread.is_alive()
    assert len(outcome) == 1
    assert "no verdict matching" in str(outcome[0])


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        (r"(A|B)\1", "invalid escape sequence"),  # a backreference needs backtracking
        (r"(?=\[\[)(A|B)", "invalid perl operator"),  # so does a lookahead
        (r"(A{1000}){1000}", "invalid repetition size"),
        ("(A)" + "x" * 600, "at most 500 characters"),
        (r"[[(A|B)", "missing ]"),
    ],
)
def test_a_verdict_pattern_re2_cannot_run_in_linear_time_is_refused_on_its_field(
    teams: Teams, pattern: str, reason: str
) -> None:
    form = _form(template="custom", custom_template="{answer_a} {answer_b}", verdict_pattern=pattern)
    response = _client(teams.bea).post(reverse("admin:judging_judgeconfig_add"), form)
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert reason in str(errors["verdict_pattern"])
    assert not JudgeConfig.objects.filter(name="new-judge").exists()


def test_built_in_and_named_group_patterns_still_read_verdicts_with_re2() -> None:
    assert prompts.parse_pattern_verdict("so [[A>>B]]", prompts.ARENA_HARD_PATTERN).strength == 2
    assert prompts.parse_pattern_verdict("[[C]]", prompts.MT_BENCH_PATTERN).outcome == "tie"
    assert prompts.parse_pattern_verdict("Verdict: B", r"Verdict: (?P<verdict>[AB])").outcome == "B"
    with pytest.raises(ValueError, match="longer than 500 characters"):
        prompts.check_verdict_pattern("(A)" + "x" * 600)


def test_an_operators_judge_shows_each_team_its_position_consistency_over_its_own_verdicts(teams: Teams) -> None:
    judge = teams.operator_judge
    for campaign, outcomes in ((teams.campaign_a, ("A", "A")), (teams.campaign_b, ("A", "B"))):
        comparison = campaign.comparisons.all()[0]
        for order, outcome in zip(("ab", "ba"), outcomes, strict=True):
            JudgeVerdict.objects.create(
                judge=judge, comparison=comparison, order=order, state=JudgeVerdict.State.DONE,
                parsed={"outcome": outcome},
            )  # fmt: skip
    listing = _client(teams.bea).get(reverse("admin:judging_judgeconfig_changelist"))
    [row] = [r for r in listing.context["cl"].result_list if r.pk == judge.pk]
    column = listing.context["cl"].list_display[-1]
    assert column(row) == "100% of 1"  # B's one pair (A then B: the same output wins); A's pair is not counted
    assert _client(teams.root).get(reverse("admin:judging_judgeconfig_changelist")).status_code == 200


def test_add_judge_gives_a_judge_an_owner_only_when_asked(teams: Teams) -> None:
    call_command("add_judge", "cli-judge", "--base-url", "http://127.0.0.1:9/v1", "--model", "m", stdout=StringIO())
    assert JudgeConfig.objects.get(name="cli-judge").owner is None
    call_command("add_judge", "cli-judge", "--owner", "bea", stdout=StringIO())
    assert JudgeConfig.objects.get(name="cli-judge").owner == teams.bea
    with pytest.raises(CommandError, match="--owner: no user named 'nobody'"):
        call_command("add_judge", "cli-judge", "--owner", "nobody", stdout=StringIO())
    with pytest.raises(CommandError, match="api_key_env: DJANGO_SECRET_KEY holds the server's own secrets"):
        call_command("add_judge", "cli-judge", "--api-key-env", "DJANGO_SECRET_KEY", stdout=StringIO())


def test_researcher_b_cannot_delete_an_operators_judge_with_the_bulk_action(teams: Teams) -> None:
    response = _client(teams.bea).post(
        reverse("admin:judging_judgeconfig_changelist"),
        {"action": "delete_selected", "_selected_action": [teams.operator_judge.pk, teams.judge_a.pk], "post": "yes"},
    )
    assert response.status_code in (200, 302, 403)
    assert JudgeConfig.objects.filter(pk__in=[teams.operator_judge.pk, teams.judge_a.pk]).count() == 2
