"""The client's calls against a live server without a worker: settings, gold, comparisons, status moves, judge runs
started, cancelled and resumed (their tasks stay in the in-memory broker), the judge report, judge panels, and the
server's refusals as typed errors; and a check that the client calls every researcher and judge operation of the
OpenAPI schema with each of its query parameters."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from evalplatform_client import (
    Campaign,
    Client,
    Conflict,
    ImportRefused,
    NotFound,
    PermissionDenied,
    ValidationError,
)
from judging import services as judging_services
from tests.results.conftest import Rated, rated

__all__ = ["rated"]  # the rated campaign of tests/results: two humans and gpt-judge (both orders)

IDLE_ENDPOINT = "http://127.0.0.1:9/v1"  # nothing listens: no worker runs in these tests anyway


def client_for(live_server: Any, user: User, **options: Any) -> Client:
    """Return a client of the live server signed in as `user` by token (`options` override Client's)."""
    token, _ = Token.objects.get_or_create(user=user)
    return Client(live_server.url, token=str(token.key), **{"progress": False, "poll_interval": 0.05, **options})


def set_up(client: Client, tmp_path: Path) -> Campaign:
    rows = [
        {"prompt_id": f"q{p}", "prompt": f"Question {p}", "model": model, "output": f"{model} says {p}"}
        for p in range(3)
        for model in ("m1", "m2")
    ]
    path = tmp_path / "outputs.csv"
    path.write_text("prompt_id,prompt,model,output\n" + "".join(",".join(row.values()) + "\n" for row in rows))
    campaign = client.campaigns.create(name="Settings", slug="settings", label_scheme="four_way")
    campaign.upload_outputs(path)
    campaign.generate()
    return campaign


@pytest.mark.django_db(transaction=True)
def test_settings_gold_comparisons_and_status_moves_through_the_client(
    live_server: Any, researcher: User, annotator: User, tmp_path: Path
) -> None:
    client = client_for(live_server, researcher)
    campaign = set_up(client, tmp_path)

    changed = campaign.update(require_rationale=True, instructions="Pick the *clearer* answer.")
    assert (changed.data["require_rationale"], changed.data["instructions"]) == (True, "Pick the *clearer* answer.")
    with pytest.raises(ValidationError) as refused:
        campaign.update(pairing_strategy="baseline")
    assert refused.value.errors == {"baseline_model": ["The baseline strategy needs the name of the baseline model."]}
    assert "baseline_model: The baseline strategy needs" in str(refused.value)

    gold = [{"prompt_id": "q1", "model_a": "m1", "model_b": "m2", "gold": "model_b"}]
    assert campaign.upload_gold(records=gold, dry_run=True)["dry_run"] is True
    assert list(campaign.comparisons(gold=True)) == []
    campaign.upload_gold(records=gold)
    assert [c["question_id"] for c in campaign.comparisons(gold=True)] == ["q1"]
    assert len(list(campaign.comparisons(page_size=2))) == 3
    with pytest.raises(ImportRefused) as bad:
        campaign.upload_gold(records=[{"prompt_id": "q9", "model_a": "m1", "model_b": "m2", "gold": "model_a"}])
    assert bad.value.lines
    assert bad.value.lines[0].startswith("records.jsonl:1:")

    summary = client.campaigns.get("settings")
    assert (summary.status, summary.data["n_prompts"], sorted(summary.data["models"])) == ("draft", 3, ["m1", "m2"])
    assert [c["slug"] for c in client.campaigns.list()] == ["settings"]
    assert campaign.open().status == "active"
    assert campaign.pause().status == "paused"
    assert campaign.open().status == "active"
    assert campaign.close().status == "closed"
    with pytest.raises(Conflict):
        campaign.pause()

    with pytest.raises(NotFound):
        client_for(live_server, annotator).campaign("settings").leaderboard()
    with pytest.raises(NotFound):
        client.campaign("no-such-campaign").refresh()


@pytest.mark.django_db(transaction=True)
def test_a_judge_run_started_cancelled_resumed_and_listed_through_the_client(
    live_server: Any, researcher: User, settings: Any, tmp_path: Path
) -> None:
    settings.EVALPLATFORM_JUDGE_ALLOWED_ENDPOINTS = [IDLE_ENDPOINT]
    settings.EVALPLATFORM_JUDGE_KEY_ENVS = []
    judging_services.save_judge(name="idle-judge", base_url=IDLE_ENDPOINT, model="m", template="arena_hard")
    client = client_for(live_server, researcher)
    campaign = set_up(client, tmp_path)

    assert "idle-judge" in [judge["name"] for judge in client.judges.list()]
    with pytest.raises(ValidationError) as unknown:
        campaign.judge("no-such-judge")
    assert "judge" in unknown.value.errors

    run = campaign.judge("idle-judge", limit=2, orders="one")
    assert (run.status, run.progress["total"]) == ("running", 2)
    assert [v["state"] for v in run.verdicts()] == ["pending", "pending"]
    assert run.cancel().status == "cancelled"
    with pytest.raises(Conflict):
        run.cancel()
    assert run.resume().status == "running"
    assert campaign.judge_run(run.id).status == "running"
    assert [r.id for r in campaign.judge_runs(status="running")] == [run.id]
    assert run.data["judge"] == "idle-judge"


def every_call(client: Client, tmp_path: Path) -> None:
    """Call each of the client's methods that sends a request once, with every option it has."""
    upload = tmp_path / "outputs.jsonl"
    upload.write_text("{}\n")
    client.campaigns.list()
    client.judges.list()
    client.judges.report("j", campaign="s", bootstrap=10, seed=1)
    client.panels.list()
    client.panels.create(name="p", members=["j", "k"], aggregation="majority")
    campaign = client.campaigns.create(name="n", slug="s")
    client.campaigns.get("s")
    campaign.update(name="m")
    campaign.upload_outputs(upload, dry_run=True)
    campaign.upload_gold(records=[{}], dry_run=True)
    campaign.import_job(1)
    campaign.generate()
    campaign.set_annotators(users=[])
    campaign.open()
    list(campaign.comparisons(model="m", question_id="q", gold=True))
    selection: dict[str, Any] = {"raters": "all", "exclude_raters": ["x*", "y*"], "include_excluded": True}
    list(campaign.ratings(**selection, verdict="win", source="web", comparison=1))
    campaign.leaderboard(
        **selection, bootstrap=0, seed=1, category="c", consistent=True, combine="ppi", cluster="rater",
        rater_model=True, style_control=True, style_reg=0.5, influence=True, downsample=True,
    )  # fmt: skip
    campaign.length_controlled("m", difficulty="none", **selection)
    campaign.categories(**selection)
    campaign.agreement(**selection, bootstrap=10, consistent=True)
    campaign.raters(alpha=0.01, correction="holm")
    campaign.rater_action("troll", "exclude", "inverted votes")
    export: dict[str, Any] = {"aggregate": "posterior", "min_confidence": 0.6, "consistent": True}
    campaign.export("dpo", tmp_path / "dpo.jsonl", **selection, **export)
    campaign.reproduce(campaign.export_manifest("dpo", "jsonl", **selection, **export))
    run = campaign.judge("j", limit=1, orders="one")
    list(campaign.judge_runs(status="running"))
    campaign.judge_run(run.id).cancel().resume(retry_failed=True)
    list(run.verdicts(state="done", outcome="A", parse_failed=False))
    panel_run = campaign.judge_panel("p", limit=1, orders="both")
    list(campaign.panel_runs())
    campaign.panel_run(panel_run.id).cancel().resume(retry_failed=True)


def test_the_client_calls_every_researcher_and_judge_endpoint_of_the_openapi_schema(tmp_path: Path) -> None:
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)  # type: ignore[no-untyped-call]
    operations = {
        (method.upper(), path, parameter["name"])
        for path, item in schema["paths"].items()
        if path.startswith(("/api/v1/research/", "/api/v1/judges/", "/api/v1/judge-panels/"))
        for method, operation in item.items()
        if method in ("get", "post", "put", "patch", "delete")
        for parameter in [{"name": ""}, *operation.get("parameters", [])]
        if parameter.get("in", "query") == "query"
    }
    sent: list[tuple[str, str, set[str]]] = []
    anything = {"slug": "s", "id": 1, "status": "active", "progress": {"finished": 0, "total": 0}, "count": 0}

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append((request.method, request.url.path, {"", *request.url.params.keys()}))
        return httpx.Response(200, json={**anything, "results": [], "finished": 0, "total": 0})

    every_call(Client("http://x.test", transport=httpx.MockTransport(answer), progress=False), tmp_path)

    def called(method: str, template: str, parameter: str) -> bool:
        pattern = re.compile(re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$")
        return any(m == method and pattern.match(path) and parameter in params for m, path, params in sent)

    assert len({operation[:2] for operation in operations}) >= 36
    assert sorted(op for op in operations if not called(*op)) == []


@pytest.mark.django_db(transaction=True)
def test_categories_and_a_category_leaderboard_through_the_client(
    live_server: Any, researcher: User, tmp_path: Path
) -> None:
    client = client_for(live_server, researcher)
    path = tmp_path / "outputs.jsonl"
    path.write_text(
        '{"prompt_id": "q1", "prompt": "What is 17 * 23?", "model": "m1", "output": "391", "tags": ["arith"]}\n'
        '{"prompt_id": "q1", "prompt": "What is 17 * 23?", "model": "m2", "output": "392"}\n'
    )
    campaign = client.campaigns.create(name="Tagged", slug="tagged")
    campaign.upload_outputs(path)

    listed = campaign.categories()
    board = campaign.leaderboard(category="arith")

    assert {row["category"]: row["n_prompts"] for row in listed["categories"]} == {
        "arith": 1,
        "auto:math": 1,
        "auto:language:en": 1,
    }
    assert (board["category"], board["n_battles"], board["provisional"]) == ("arith", 0, True)
    with pytest.raises(ValidationError, match="no prompt of this campaign has the tag 'nope'"):
        campaign.leaderboard(category="nope")


@pytest.mark.django_db(transaction=True)
def test_the_judge_report_through_the_client(live_server: Any, researcher: User, rated: Rated, settings: Any) -> None:
    settings.EVALPLATFORM_JUDGE_ALLOWED_ENDPOINTS = [IDLE_ENDPOINT]
    judge, _ = judging_services.save_judge(name="gpt-judge", base_url=IDLE_ENDPOINT, model="gpt-4")
    client = client_for(live_server, researcher)
    slug = rated.campaign.slug

    by_name = client.judges.report("gpt-judge", campaign=slug, bootstrap=20, seed=7)
    by_id = client.judges.report(judge.pk, bootstrap=0)

    api = APIClient()
    api.force_authenticate(researcher)
    assert by_name == api.get(f"/api/v1/judges/gpt-judge/report/?campaign={slug}&bootstrap=20&seed=7").json()
    assert by_name["campaigns"] == by_id["campaigns"] == [slug]
    assert by_name["versions"][0]["humans"]["n_with_human_majority"] > 0
    with pytest.raises(NotFound):
        client.judges.report("no-such-judge")
    with pytest.raises(ValidationError) as refused:
        client.judges.report("gpt-judge", bootstrap=-1)
    assert "bootstrap" in refused.value.errors


@pytest.mark.django_db(transaction=True)
def test_judge_panels_created_and_listed_through_the_client(
    live_server: Any, researcher: User, outsider: User, settings: Any
) -> None:
    settings.EVALPLATFORM_JUDGE_ALLOWED_ENDPOINTS = [IDLE_ENDPOINT]
    for name in ("j1", "j2"):
        judging_services.save_judge(name=name, base_url=IDLE_ENDPOINT, model="m", template="arena_hard")
    client = client_for(live_server, researcher)
    client.campaigns.create(name="Panels", slug="panels")  # researchers (of a campaign) list and use judges

    created = client.panels.create(name="duo", members=["j2", "j1"])

    assert (created["name"], created["owner"], created["aggregation"], created["members"]) == (
        "duo", researcher.username, "majority", ["j1", "j2"],
    )  # fmt: skip
    assert [panel["name"] for panel in client.panels.list()] == ["duo"]
    with pytest.raises(Conflict):
        client.panels.create(name="duo", members=["j1", "j2"])
    with pytest.raises(ValidationError) as alone:
        client.panels.create(name="solo", members=["j1"])
    assert "members" in alone.value.errors
    with pytest.raises(ValidationError) as unknown:
        client.panels.create(name="trio", members=["j1", "j2", "nobody"])
    assert "judge" in unknown.value.errors
    with pytest.raises(ValidationError) as aggregation:
        client.panels.create(name="probs", members=["j1", "j2"], aggregation="mean_probability")
    assert "aggregation" in aggregation.value.errors
    with pytest.raises(PermissionDenied):
        client_for(live_server, outsider).panels.list()
