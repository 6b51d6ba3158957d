"""A whole campaign driven through the Python client against a live server, a real Celery worker and the local
OpenAI-compatible server: create, upload (imported in the background), generate, annotators, open, human ratings
over the annotator API, a judge run, leaderboard, agreement, ratings and a DPO export to a file."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.contrib.auth.models import Group, User
from rest_framework.authtoken.models import Token

from annotation.models import Comparison
from evalplatform_client import Client, Conflict, PermissionDenied, Progress, ValidationError
from judging import services as judging_services
from judging.localllm.server import LocalLLMServer, ServerConfig
from tests import factories
from tests.judging.test_worker import broker_env, start_worker

pytestmark = [pytest.mark.worker, pytest.mark.slow]
__all__ = ["broker_env", "start_worker"]  # fixtures shared with the judging worker tests

EXAMPLE = factories.REPO_ROOT / "client" / "examples" / "weekly.py"
MODELS = ["ckpt-a", "ckpt-b", "ckpt-c"]
# The annotators prefer ckpt-b, then ckpt-a, then ckpt-c; the outputs say which model wrote them.
PREFERENCE = {"ckpt-b": 3, "ckpt-a": 2, "ckpt-c": 1}


def outputs_file(path: Path) -> Path:
    rows = [
        {"prompt_id": f"q{p}", "prompt": f"Question {p}: why is the sky blue?", "model": model,
         "output": f"Answer by {model} to question {p}: Rayleigh scattering."}
        for p in range(4)
        for model in MODELS
    ]  # fmt: skip
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.fixture
def local_judge(settings: Any) -> Iterator[str]:
    """Start the local OpenAI-compatible server and an operator's judge on it, as the demo's; return its name."""
    server = LocalLLMServer(ServerConfig(port=0))
    with server.running_in_thread() as url:
        settings.EVALPLATFORM_JUDGE_ALLOWED_ENDPOINTS = [url]
        settings.EVALPLATFORM_JUDGE_KEY_ENVS = []
        settings.EVALPLATFORM_JUDGE_PRIVATE_NETWORKS = []
        judging_services.save_judge(
            name="local-judge", base_url=url, model="local-judge", template="arena_hard", timeout_seconds=5.0,
            max_concurrency=8,
            requests_per_minute=60_000,
        )  # fmt: skip
        yield "local-judge"


def token_of(user: User) -> str:
    token, _ = Token.objects.get_or_create(user=user)
    return str(token.key)


def rate_everything(base_url: str, token: str) -> int:
    """Rate, as an annotator over the annotator API, every comparison offered; return how many were rated."""
    rated = 0
    with httpx.Client(base_url=base_url + "/api/v1/", headers={"Authorization": f"Token {token}"}) as http:
        campaign_id = http.get("annotator/campaigns/").raise_for_status().json()[0]["id"]
        while (offered := http.post(f"campaigns/{campaign_id}/next/", json={})).status_code == 200:
            shown = offered.json()
            left, right = (model_of(shown[side]["text"]) for side in ("left", "right"))
            choice = "left" if PREFERENCE[left] > PREFERENCE[right] else "right"
            answer = http.post(f"assignments/{shown['assignment']}/rating/", json={"choice": choice})
            assert answer.status_code == 201, answer.text
            rated += 1
        assert offered.status_code == 204, offered.text
    return rated


def model_of(text: str) -> str:
    return text.split()[2]


@pytest.mark.django_db(transaction=True)
def test_a_whole_campaign_through_the_client_from_creation_to_a_dpo_file(
    live_server: Any,
    researcher: User,
    annotator: User,
    other_annotator: User,
    local_judge: str,
    start_worker: Callable[..., Any],
    settings: Any,
    tmp_path: Path,
) -> None:
    settings.IMPORT_LIMITS = {"inline_max_bytes": 200}  # the upload below is imported by the worker (202)
    start_worker(concurrency=4)
    steps: list[Progress] = []
    client = Client(live_server.url, token=token_of(researcher), progress=steps.append, poll_interval=0.2)

    campaign = client.campaigns.create(
        name="Weekly checkpoint", slug="weekly", label_scheme="three_way", ratings_per_comparison=1
    )
    assert (campaign.status, campaign.data["owner"]) == ("draft", researcher.username)
    with pytest.raises(ValidationError) as taken:
        client.campaigns.create(name="Again", slug="weekly")
    assert "slug" in taken.value.errors

    summary = campaign.upload_outputs(outputs_file(tmp_path / "weekly.jsonl"), timeout=90)
    assert (summary["dry_run"], summary["created"]) == (False, {"prompts": 4, "outputs": 12})
    assert any(s.unit == "percent" and s.finished for s in steps)  # followed the background job
    assert any(s.what == "upload weekly.jsonl" and s.finished for s in steps)

    report = campaign.generate(strategy="all_pairs")
    assert (report["created"], report["prompts"]) == (12, 4)
    assert campaign.set_annotators(users=[annotator.username, other_annotator.username], group=None) == {
        "users": sorted([annotator.username, other_annotator.username]),
        "group": None,
    }
    assert campaign.open().status == "active"

    rated = sum(rate_everything(live_server.url, token_of(user)) for user in (annotator, other_annotator))
    assert rated == 12

    run = campaign.judge(local_judge, wait=True, timeout=90)
    assert run.status == "completed"
    assert run.progress["finished"] == run.progress["total"] == 24  # both orders
    assert run.progress["done"] + run.progress["parse_failed"] == 24
    assert [r.id for r in campaign.judge_runs()] == [run.id]
    assert len(list(run.verdicts(page_size=10))) == 24

    board = campaign.leaderboard(raters="humans")
    assert board["n_battles"] == 12
    assert [row["model"] for row in sorted(board["ratings"], key=lambda row: row["rank"])] == [
        "ckpt-b",
        "ckpt-a",
        "ckpt-c",
    ]
    assert client.campaign("weekly").leaderboard(raters="judges")["n_battles"] > 0
    agreement = campaign.agreement(bootstrap=0)
    assert (agreement["campaign"], agreement["n_ratings"]) == ("weekly", 12)
    assert len(agreement["judges"]) == 1  # the judge's verdicts against the humans

    human = list(campaign.ratings(raters="humans", page_size=5))
    assert len(human) == 12
    assert {r["rater_kind"] for r in human} == {"human"}

    exported = campaign.export("dpo", tmp_path / "weekly-dpo.jsonl", raters="humans", manifest=True)
    rows = [json.loads(line) for line in (tmp_path / "weekly-dpo.jsonl").read_text().splitlines()]
    assert (len(rows), exported.skipped_rows) == (12, 0)
    assert all(PREFERENCE[row["chosen_model"]] > PREFERENCE[row["rejected_model"]] for row in rows)
    assert all(row["chosen"].startswith(f"Answer by {row['chosen_model']}") for row in rows)

    # Reproduce: the export's manifest (beside the file) and the leaderboard's, then again after a new rating.
    assert exported.manifest_path == str(tmp_path / "weekly-dpo.jsonl.manifest.json")
    manifest = json.loads((tmp_path / "weekly-dpo.jsonl.manifest.json").read_text())
    assert (manifest["ratings"]["count"], manifest["ratings"]["sha256"]) == (12, exported.ratings_sha256)
    assert [j["name"] for j in campaign.leaderboard(raters="judges")["manifest"]["judges"]] == [local_judge]
    assert campaign.reproduce(manifest)["identical"] is True
    assert campaign.reproduce(board["manifest"])["identical"] is True
    with pytest.raises(ValidationError) as edited:
        campaign.reproduce({**manifest, "options": {**manifest["options"], "aggregate": "each"}})
    assert "checksum mismatch" in edited.value.message
    comparison = Comparison.objects.filter(campaign__slug="weekly").order_by("id").first()
    assert comparison is not None
    factories.make_rating(comparison, factories.RaterFactory.create(name="late-expert"), winner=comparison.output_a)
    changed = campaign.reproduce(board["manifest"])  # the leaderboard of the humans: one more human rating now
    assert (changed["identical"], changed["ratings"]["added"], changed["ratings"]["now"]) == (False, 1, 13)
    assert changed["differences"][0].startswith("ratings: 12 then, 13 now: 1 added since")

    annotators_view = Client(live_server.url, token=token_of(annotator), progress=False)
    with pytest.raises(PermissionDenied):
        annotators_view.campaign("weekly").leaderboard()
    assert campaign.close().status == "closed"
    with pytest.raises(Conflict) as refused:
        campaign.open()
    assert refused.value.message


def load_example() -> Any:
    spec = importlib.util.spec_from_file_location("weekly_example", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_docs_api_md_shows_the_example_pipeline_as_it_is() -> None:
    assert EXAMPLE.read_text() in (factories.REPO_ROOT / "docs" / "api.md").read_text()


@pytest.mark.django_db(transaction=True)
def test_the_example_pipeline_runs_against_a_live_server_and_again_without_doing_anything_twice(
    live_server: Any,
    researcher: User,
    local_judge: str,
    start_worker: Callable[..., Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    demo_group = Group.objects.create(name="Demo annotators")
    researcher.groups.add(demo_group)
    for name in ("annotator1", "annotator2"):
        factories.UserFactory.create(username=name)
    start_worker(concurrency=4)
    example = load_example()

    with Client(live_server.url, token=token_of(researcher), progress=False, poll_interval=0.2) as client:
        pairs = example.run(client, "weekly", tmp_path)
        first = capsys.readouterr().out
        example.run(client, "weekly", tmp_path)
        second = capsys.readouterr().out

    print(first, second)
    assert "created 3 prompts, 6 outputs" in first
    assert "created 3" not in second
    assert "completed: 6 of 6 verdicts" in first
    assert "completed: 0 of 0 verdicts" in second
    rows = [json.loads(line) for line in pairs.read_text().splitlines()]
    assert len(rows) == 3  # one pair per comparison, none tied
    assert {(row["chosen_model"], row["rejected_model"]) for row in rows} <= {
        ("ckpt-0101", "ckpt-0108"),
        ("ckpt-0108", "ckpt-0101"),
    }
