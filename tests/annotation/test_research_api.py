"""The research write API: campaigns, uploads, comparisons, annotators and status from code, with idempotent retries."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.db import connection
from rest_framework.test import APIClient

from annotation.importers import jobs as import_jobs
from annotation.models import Campaign, Comparison, IdempotencyKey, ImportJob, Output, Prompt, Rating
from annotation.research import services
from tests import factories

pytestmark = pytest.mark.django_db

ClientFor = Callable[[User | None], APIClient]
BASE = "/api/v1/research/campaigns/"


def records(prompts: int = 2, models: tuple[str, ...] = ("m-a", "m-b", "m-c")) -> list[dict[str, Any]]:
    return [
        {"prompt_id": f"q{p}", "prompt": f"Question {p}?", "model": model, "output": f"{model} says {p}"}
        for p in range(prompts)
        for model in models
    ]


def jsonl(rows: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(row).encode() + b"\n" for row in rows)


def upload(name: str, content: bytes) -> io.BytesIO:
    handle = io.BytesIO(content)
    handle.name = name
    return handle


@pytest.fixture
def other_researcher(researcher: User) -> User:
    """A researcher of another team, with the same permissions as rita."""
    bea = factories.UserFactory.create(username="bea", is_staff=True)
    bea.user_permissions.set(researcher.user_permissions.all())
    return bea


@pytest.fixture
def draft(researcher: User) -> Campaign:
    return factories.CampaignFactory.create(owner=researcher, slug="draft-one", status=Campaign.Status.DRAFT)


def snapshot(campaign: Campaign) -> tuple[Any, ...]:
    campaign = Campaign.objects.get(pk=campaign.pk)
    return (
        campaign.name,
        campaign.status,
        campaign.updated_at,
        sorted(campaign.annotators.values_list("username", flat=True)),
        Prompt.objects.filter(campaign=campaign).count(),
        Output.objects.filter(prompt__campaign=campaign).count(),
        Comparison.objects.filter(campaign=campaign).count(),
        sorted(Comparison.objects.filter(campaign=campaign).values_list("id", "gold_verdict")),
    )


# --- POST campaigns/, PATCH campaigns/{slug}/ -----------------------------------------------------------------


def test_create_campaign_makes_a_draft_owned_by_the_requester(
    researcher: User, annotator: User, api_client_for: ClientFor
) -> None:
    body = {
        "name": "Weekly",
        "slug": "weekly",
        "label_scheme": "three_way",
        "pairing_strategy": "random_k",
        "pairs_per_prompt": 2,
        "annotators": ["alice"],
        "instructions": "Pick the *better* one.",
    }
    response = api_client_for(researcher).post(BASE, body, format="json")

    assert response.status_code == 201, response.json()
    created = response.json()
    assert created["slug"] == "weekly"
    assert created["owner"] == "rita"
    assert created["status"] == "draft"
    assert created["annotators"] == ["alice"]
    assert created["lease_seconds"] == 600  # the admin's default
    campaign = Campaign.objects.get(slug="weekly")
    assert campaign.owner == researcher
    assert list(campaign.annotators.all()) == [annotator]
    assert campaign.pairs_per_prompt == 2


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"name": "X", "slug": "x", "pairing_strategy": "random_k"}, "pairs_per_prompt", "needs k"),
        ({"name": "X", "slug": "x", "pairing_strategy": "baseline"}, "baseline_model", "baseline model"),
        ({"name": "X", "slug": "x", "annotators": ["nobody"]}, "annotators", "No active account named 'nobody'"),
        ({"name": "X", "slug": "x", "researchers": ["alice bob"]}, "researchers", "Not a username: 'alice bob'"),
        ({"name": "X", "slug": "x", "annotator_group": "Secret"}, "annotator_group", "No group named 'Secret'"),
        ({"name": "X", "slug": "x", "gold_rate": 2}, "gold_rate", "less than or equal to 1"),
        ({"name": "X", "slug": "not a slug"}, "slug", "slug"),
        ({"name": "X", "slug": "x", "colour": "red"}, "colour", "Unknown field"),
        ({"name": "X", "slug": "x", "status": "active"}, "status", "status/"),
        ({"name": "X", "slug": "x", "owner": "alice"}, "owner", "Only a superuser"),
        ({"slug": "x"}, "name", "required"),
    ],
)
def test_create_campaign_refuses_what_the_admin_form_refuses_naming_the_field(
    researcher: User, annotator: User, api_client_for: ClientFor, body: dict[str, Any], field: str, words: str
) -> None:
    Group.objects.create(name="Secret")  # rita is no member of it

    response = api_client_for(researcher).post(BASE, body, format="json")

    assert response.status_code == 400
    assert words in " ".join(response.json()[field])
    assert not Campaign.objects.exists()


def test_create_campaign_refuses_a_slug_in_use_and_a_body_that_is_not_an_object(
    researcher: User, draft: Campaign, api_client_for: ClientFor
) -> None:
    client = api_client_for(researcher)

    taken = client.post(BASE, {"name": "Again", "slug": draft.slug}, format="json")
    listed = client.post(BASE, [1, 2], format="json")

    assert taken.status_code == 400
    assert "slug" in taken.json()
    assert listed.status_code == 400
    assert Campaign.objects.count() == 1


def test_create_campaign_needs_the_add_permission(
    annotator: User, other_researcher: User, api_client_for: ClientFor
) -> None:
    body = {"name": "Mine", "slug": "mine"}

    assert api_client_for(annotator).post(BASE, body, format="json").status_code == 403
    assert api_client_for(None).post(BASE, body, format="json").status_code in (401, 403)
    assert not Campaign.objects.exists()
    assert api_client_for(other_researcher).post(BASE, body, format="json").status_code == 201


def test_a_superuser_may_create_a_campaign_for_another_owner(researcher: User, api_client_for: ClientFor) -> None:
    root = factories.UserFactory.create(username="root", is_superuser=True, is_staff=True)

    response = api_client_for(root).post(BASE, {"name": "For rita", "slug": "for-rita", "owner": "rita"}, format="json")

    assert response.status_code == 201
    assert Campaign.objects.get(slug="for-rita").owner == researcher


def test_patch_changes_the_fields_given_and_checks_the_campaign_as_it_would_become(
    draft: Campaign, researcher: User, api_client_for: ClientFor
) -> None:
    client = api_client_for(researcher)

    changed = client.patch(f"{BASE}{draft.slug}/", {"name": "Renamed", "require_rationale": True}, format="json")
    refused = client.patch(f"{BASE}{draft.slug}/", {"pairing_strategy": "random_k"}, format="json")

    assert changed.status_code == 200
    assert changed.json()["name"] == "Renamed"
    assert changed.json()["label_scheme"] == draft.label_scheme
    draft.refresh_from_db()
    assert (draft.name, draft.require_rationale, draft.pairing_strategy) == ("Renamed", True, "all_pairs")
    assert refused.status_code == 400
    assert "pairs_per_prompt" in refused.json()


def test_patch_is_refused_to_other_teams_annotators_and_strangers_with_nothing_written(
    campaign: Campaign, annotator: User, other_researcher: User, outsider: User, api_client_for: ClientFor
) -> None:
    before = snapshot(campaign)
    url = f"{BASE}{campaign.slug}/"

    assert api_client_for(other_researcher).patch(url, {"name": "Hijacked"}, format="json").status_code == 404
    assert api_client_for(outsider).patch(url, {"name": "Hijacked"}, format="json").status_code == 404
    assert api_client_for(annotator).patch(url, {"name": "Hijacked"}, format="json").status_code == 403
    assert api_client_for(None).patch(url, {"name": "Hijacked"}, format="json").status_code in (401, 403)
    assert snapshot(campaign) == before


def test_a_researcher_without_the_change_permission_may_not_write(
    campaign: Campaign, researcher: User, api_client_for: ClientFor
) -> None:
    researcher.user_permissions.remove(Permission.objects.get(codename="change_campaign"))

    response = api_client_for(researcher).patch(f"{BASE}{campaign.slug}/", {"name": "X"}, format="json")

    assert response.status_code == 403
    assert "change_campaign" in response.json()["detail"]


def test_the_get_routes_of_the_same_paths_answer_as_before(
    campaign: Campaign, researcher: User, api_client_for: ClientFor
) -> None:
    client = api_client_for(researcher)

    assert [c["slug"] for c in client.get(BASE).json()] == [campaign.slug]
    assert client.get(f"{BASE}{campaign.slug}/").json()["models"] == ["model-x", "model-y", "model-z"]


# --- Idempotency-Key --------------------------------------------------------------------------------------------


def test_a_retried_create_with_the_same_key_gets_the_first_answer_without_a_second_campaign(
    researcher: User, api_client_for: ClientFor
) -> None:
    client = api_client_for(researcher)
    body = {"name": "Once", "slug": "once"}

    first = client.post(BASE, body, format="json", headers={"Idempotency-Key": "k-1"})
    retry = client.post(BASE, body, format="json", headers={"Idempotency-Key": "k-1"})
    without_key = client.post(BASE, body, format="json")

    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json()
    assert retry["Idempotent-Replayed"] == "true"
    assert without_key.status_code == 400  # the slug is taken: the work would have been done again
    assert Campaign.objects.filter(slug="once").count() == 1


def test_the_same_key_with_another_body_is_refused_and_a_refusal_is_not_kept(
    researcher: User, api_client_for: ClientFor
) -> None:
    client = api_client_for(researcher)
    headers = {"Idempotency-Key": "k-2"}

    refused = client.post(BASE, {"name": "Bad", "slug": "x", "gold_rate": 5}, format="json", headers=headers)
    fixed = client.post(BASE, {"name": "Good", "slug": "x"}, format="json", headers=headers)
    other = client.post(BASE, {"name": "Other", "slug": "y"}, format="json", headers=headers)
    bad_key = client.post(BASE, {"name": "Z", "slug": "z"}, format="json", headers={"Idempotency-Key": "a b"})

    assert refused.status_code == 400
    assert fixed.status_code == 201
    assert other.status_code == 422
    assert "different request" in other.json()["detail"]
    assert bad_key.status_code == 400
    assert "Idempotency-Key" in bad_key.json()
    assert sorted(Campaign.objects.values_list("slug", flat=True)) == ["x"]


@pytest.mark.django_db(transaction=True)
def test_a_retry_sent_while_the_first_request_works_waits_and_gets_its_answer(
    researcher: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_save = services.save_campaign

    def slow_save(**kwargs: Any) -> Campaign:
        time.sleep(0.5)  # the other request's key insert arrives meanwhile and waits on this transaction
        return real_save(**kwargs)

    monkeypatch.setattr(services, "save_campaign", slow_save)
    start = threading.Barrier(2)
    answers: list[Any] = []

    def send() -> None:
        client = APIClient()
        client.force_authenticate(User.objects.get(pk=researcher.pk))
        start.wait()
        try:
            answers.append(
                client.post(BASE, {"name": "Raced", "slug": "raced"}, format="json", headers={"Idempotency-Key": "r"})
            )
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(answer.status_code for answer in answers) == [201, 201]
    assert sorted(answer.get("Idempotent-Replayed", "") for answer in answers) == ["", "true"]
    assert answers[0].json() == answers[1].json()
    assert Campaign.objects.filter(slug="raced").count() == 1


def test_keys_belong_to_their_user(researcher: User, other_researcher: User, api_client_for: ClientFor) -> None:
    headers = {"Idempotency-Key": "shared"}

    mine = api_client_for(researcher).post(BASE, {"name": "A", "slug": "a"}, format="json", headers=headers)
    theirs = api_client_for(other_researcher).post(BASE, {"name": "B", "slug": "b"}, format="json", headers=headers)

    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert IdempotencyKey.objects.count() == 2


# --- uploads ----------------------------------------------------------------------------------------------------


def test_outputs_upload_as_json_records_and_as_a_file(
    draft: Campaign, researcher: User, api_client_for: ClientFor
) -> None:
    client = api_client_for(researcher)
    url = f"{BASE}{draft.slug}/outputs/"

    as_json = client.post(url, {"records": records(prompts=2)}, format="json")
    as_file = client.post(url, {"file": upload("more.csv", b"prompt_id,prompt,model,output\nq9,Nine?,m-a,9\n")})

    assert as_json.status_code == 201, as_json.json()
    assert as_json.json()["created"] == {"prompts": 2, "outputs": 6}
    assert as_json.json()["dry_run"] is False
    assert as_file.status_code == 201, as_file.json()
    assert as_file.json()["file"] == "more.csv"
    assert Output.objects.filter(prompt__campaign=draft).count() == 7


def test_a_dry_run_counts_and_writes_nothing(draft: Campaign, researcher: User, api_client_for: ClientFor) -> None:
    client = api_client_for(researcher)

    response = client.post(f"{BASE}{draft.slug}/outputs/?dry_run=1", {"file": upload("o.jsonl", jsonl(records()))})
    bad_flag = client.post(f"{BASE}{draft.slug}/outputs/?dry_run=maybe", {"records": records()}, format="json")

    assert response.status_code == 200
    assert response.json()["dry_run"] is True
    assert response.json()["created"]["outputs"] == 6
    assert bad_flag.status_code == 400
    assert "dry_run" in bad_flag.json()
    assert not Prompt.objects.filter(campaign=draft).exists()


def test_a_refused_upload_lists_every_bad_line_and_writes_nothing(
    draft: Campaign, researcher: User, api_client_for: ClientFor
) -> None:
    rows = records(prompts=1)
    rows[1] = {"prompt_id": "q0", "prompt": "Question 0?", "model": "m-b"}  # no output
    rows.append({"prompt_id": "q1", "model": "m-a", "output": "x"})  # no prompt

    response = api_client_for(researcher).post(f"{BASE}{draft.slug}/outputs/", {"records": rows}, format="json")

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "import_refused"
    assert body["error_total"] == 2
    assert [line.split(": ")[0] for line in body["errors"]] == ["records.jsonl:2", "records.jsonl:4"]
    assert "output" in body["errors"][0]
    assert not Prompt.objects.filter(campaign=draft).exists()


def test_upload_bodies_that_are_not_uploads_are_field_errors(
    draft: Campaign, researcher: User, api_client_for: ClientFor
) -> None:
    client = api_client_for(researcher)
    url = f"{BASE}{draft.slug}/outputs/"

    empty = client.post(url, {"records": []}, format="json")
    no_file = client.post(url, {"other": "x"}, format="multipart")
    not_objects = client.post(url, {"records": [1, "two"]}, format="json")

    assert empty.status_code == 400
    assert "records" in empty.json()
    assert no_file.status_code == 400
    assert "file" in no_file.json()
    assert not_objects.status_code == 400
    assert len(not_objects.json()["errors"]) == 2
    assert not Prompt.objects.filter(campaign=draft).exists()


@pytest.mark.parametrize("route", ["outputs/", "gold/"])
def test_uploads_are_refused_to_other_teams_and_annotators_with_nothing_written(
    campaign: Campaign, annotator: User, other_researcher: User, api_client_for: ClientFor, route: str
) -> None:
    before = snapshot(campaign)
    url = f"{BASE}{campaign.slug}/{route}"
    body = {"records": records()}

    assert api_client_for(other_researcher).post(url, body, format="json").status_code == 404
    assert api_client_for(annotator).post(url, body, format="json").status_code == 403
    assert api_client_for(None).post(url, body, format="json").status_code in (401, 403)
    assert snapshot(campaign) == before


def test_a_retried_upload_with_its_key_is_answered_without_importing_again(
    draft: Campaign, researcher: User, api_client_for: ClientFor
) -> None:
    client = api_client_for(researcher)
    url = f"{BASE}{draft.slug}/outputs/"
    headers = {"Idempotency-Key": "upload-1"}

    first = client.post(url, {"file": upload("o.jsonl", jsonl(records()))}, headers=headers)
    retry = client.post(url, {"file": upload("o.jsonl", jsonl(records()))}, headers=headers)
    changed = client.post(url, {"file": upload("o.jsonl", jsonl(records(prompts=3)))}, headers=headers)

    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json()  # an import done again would say "created nothing (all present)"
    assert retry["Idempotent-Replayed"] == "true"
    assert changed.status_code == 422
    assert Prompt.objects.filter(campaign=draft).count() == 2


def test_an_upload_over_the_inline_size_is_imported_by_a_job_to_follow(
    draft: Campaign, researcher: User, api_client_for: ClientFor, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.IMPORT_LIMITS = {"inline_max_bytes": 100}
    client = api_client_for(researcher)
    content = jsonl(records())
    assert len(content) > 100

    with pytest.MonkeyPatch.context() as patch, django_capture_on_commit_callbacks(execute=True):
        sent: list[int] = []
        patch.setattr("annotation.tasks.run_import_job.delay", sent.append)
        with_job = client.post(f"{BASE}{draft.slug}/outputs/", {"file": upload("big.jsonl", content)})
    assert with_job.status_code == 202, with_job.json()
    job = with_job.json()
    assert job["status"] == "queued"
    assert sent == [job["id"]]
    assert not Prompt.objects.filter(campaign=draft).exists()

    import_jobs.run_import_job(job_id=job["id"])  # what the worker's task does
    followed = client.get(job["url"])

    assert followed.status_code == 200
    assert followed.json()["status"] == "done"
    assert followed.json()["summary"]["created"] == {"prompts": 2, "outputs": 6}
    assert Output.objects.filter(prompt__campaign=draft).count() == 6


def test_uploads_over_the_importers_limits_are_refused_unread_with_413(
    draft: Campaign, researcher: User, api_client_for: ClientFor, settings: Any
) -> None:
    settings.IMPORT_LIMITS = {"max_upload_bytes": 1000, "inline_max_bytes": 500}
    client = api_client_for(researcher)
    url = f"{BASE}{draft.slug}/outputs/"

    big_file = client.post(url, {"file": upload("o.jsonl", b" " * 100_000 + jsonl(records()))})
    big_json = client.post(url, {"records": records(prompts=20)}, format="json")

    assert big_file.status_code == 413
    assert "largest upload" in big_file.json()["detail"]
    assert big_json.status_code == 413
    assert "send a file" in big_json.json()["detail"]
    assert not Prompt.objects.filter(campaign=draft).exists()


def test_an_import_job_is_followed_by_the_campaigns_researchers_only(
    draft: Campaign, researcher: User, other_researcher: User, api_client_for: ClientFor
) -> None:
    job = ImportJob.objects.create(
        campaign=draft, user=researcher, kind="outputs", file_name="f.jsonl", token="-", dry_run=True, size_bytes=1
    )
    url = f"{BASE}{draft.slug}/imports/{job.pk}/"

    assert api_client_for(researcher).get(url).status_code == 200
    assert api_client_for(other_researcher).get(url).status_code == 404
    assert api_client_for(researcher).get(f"{BASE}{draft.slug}/imports/{job.pk + 1}/").status_code == 404


def test_gold_upload_sets_the_gold_answer_of_existing_comparisons(
    draft: Campaign, researcher: User, api_client_for: ClientFor
) -> None:
    client = api_client_for(researcher)
    client.post(f"{BASE}{draft.slug}/outputs/", {"records": records(prompts=1)}, format="json")
    client.post(f"{BASE}{draft.slug}/comparisons/generate/", {"strategy": "all_pairs"}, format="json")
    gold = [{"prompt_id": "q0", "model_a": "m-a", "model_b": "m-b", "gold": "model_b"}]

    dry = client.post(f"{BASE}{draft.slug}/gold/?dry_run=true", {"records": gold}, format="json")
    assert dry.status_code == 200
    assert not Comparison.objects.filter(campaign=draft, gold_verdict__isnull=False).exists()
    response = client.post(f"{BASE}{draft.slug}/gold/", {"records": gold}, format="json")
    missing = client.post(f"{BASE}{draft.slug}/gold/", {"records": [{**gold[0], "model_b": "m-zzz"}]}, format="json")

    assert response.status_code == 201, response.json()
    pair = Comparison.objects.get(campaign=draft, gold_verdict__isnull=False)
    assert pair.gold_winner is not None
    assert pair.gold_winner.model_name == "m-b"
    assert missing.status_code == 400
    assert missing.json()["errors"]


# --- generate, annotators, status -------------------------------------------------------------------------------


def test_generate_comparisons_reports_what_it_made_and_refuses_an_unknown_baseline(
    draft: Campaign, researcher: User, api_client_for: ClientFor
) -> None:
    client = api_client_for(researcher)
    client.post(f"{BASE}{draft.slug}/outputs/", {"records": records(prompts=2)}, format="json")
    url = f"{BASE}{draft.slug}/comparisons/generate/"

    first = client.post(url, {"strategy": "random_k", "k": 2, "seed": 7}, format="json")
    again = client.post(url, {"strategy": "all_pairs"}, format="json")
    unknown = client.post(url, {"strategy": "baseline", "baseline_model": "nope"}, format="json")
    no_k = client.post(url, {"strategy": "random_k"}, format="json")

    assert first.status_code == 201
    assert (first.json()["created"], first.json()["prompts"]) == (4, 2)
    assert (again.json()["created"], again.json()["existing"]) == (2, 4)
    assert unknown.status_code == 400
    assert "nope" in unknown.json()["baseline_model"][0]
    assert no_k.status_code == 400
    assert "k" in no_k.json()
    assert Comparison.objects.filter(campaign=draft).count() == 6


def test_a_retried_generation_with_its_key_creates_nothing_more(
    draft: Campaign, researcher: User, api_client_for: ClientFor
) -> None:
    client = api_client_for(researcher)
    client.post(f"{BASE}{draft.slug}/outputs/", {"records": records(prompts=3)}, format="json")
    url = f"{BASE}{draft.slug}/comparisons/generate/"
    headers = {"Idempotency-Key": "gen-1"}

    first = client.post(url, {"strategy": "random_k", "k": 1}, format="json", headers=headers)
    retry = client.post(url, {"strategy": "random_k", "k": 1}, format="json", headers=headers)

    assert retry.json() == first.json()
    assert first.json()["created"] == 3
    assert Comparison.objects.filter(campaign=draft).count() == 3


def test_generate_is_refused_to_other_teams_and_annotators(
    campaign: Campaign, annotator: User, other_researcher: User, api_client_for: ClientFor
) -> None:
    before = snapshot(campaign)
    url = f"{BASE}{campaign.slug}/comparisons/generate/"

    assert api_client_for(other_researcher).post(url, {}, format="json").status_code == 404
    assert api_client_for(annotator).post(url, {}, format="json").status_code == 403
    assert snapshot(campaign) == before


def test_set_annotators_replaces_the_accounts_and_the_group(
    campaign: Campaign, researcher: User, outsider: User, api_client_for: ClientFor
) -> None:
    team = Group.objects.create(name="Raters")
    researcher.groups.add(team)

    response = api_client_for(researcher).put(
        f"{BASE}{campaign.slug}/annotators/", {"users": ["charlie"], "group": "Raters"}, format="json"
    )

    assert response.status_code == 200
    assert response.json() == {"users": ["charlie"], "group": "Raters"}
    campaign.refresh_from_db()
    assert list(campaign.annotators.all()) == [outsider]
    assert campaign.annotator_group == team


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"users": ["nobody"], "group": None}, "users"),
        ({"users": ["bad name!"], "group": None}, "users"),
        ({"users": ["alice bob"], "group": None}, "users"),
        ({"users": ["alice,bob"], "group": None}, "users"),
        ({"users": [], "group": "Not mine"}, "group"),
        ({"users": "alice", "group": None}, "users"),
        ({"group": None}, "users"),
    ],
)
def test_set_annotators_refuses_unknown_accounts_and_groups_with_nothing_changed(
    campaign: Campaign, researcher: User, api_client_for: ClientFor, body: dict[str, Any], field: str
) -> None:
    Group.objects.create(name="Not mine")
    before = snapshot(campaign)

    response = api_client_for(researcher).put(f"{BASE}{campaign.slug}/annotators/", body, format="json")

    assert response.status_code == 400
    assert field in response.json()
    assert snapshot(campaign) == before


def test_set_annotators_is_refused_to_other_teams_and_annotators(
    campaign: Campaign, annotator: User, other_researcher: User, api_client_for: ClientFor
) -> None:
    before = snapshot(campaign)
    url = f"{BASE}{campaign.slug}/annotators/"
    body = {"users": ["bea"], "group": None}

    assert api_client_for(other_researcher).put(url, body, format="json").status_code == 404
    assert api_client_for(annotator).put(url, body, format="json").status_code == 403
    assert snapshot(campaign) == before


def test_status_moves_the_admin_allows_and_refuses_the_others_with_409(
    campaign: Campaign, draft: Campaign, researcher: User, api_client_for: ClientFor
) -> None:
    client = api_client_for(researcher)

    paused = client.post(f"{BASE}{campaign.slug}/status/", {"status": "paused"}, format="json")
    closed = client.post(f"{BASE}{campaign.slug}/status/", {"status": "closed"}, format="json")
    reopened = client.post(f"{BASE}{campaign.slug}/status/", {"status": "active"}, format="json")
    empty = client.post(f"{BASE}{draft.slug}/status/", {"status": "active"}, format="json")
    unknown = client.post(f"{BASE}{draft.slug}/status/", {"status": "draft"}, format="json")

    assert (paused.status_code, paused.json()["status"]) == (200, "paused")
    assert closed.status_code == 200
    assert reopened.status_code == 409
    assert "closed" in reopened.json()["detail"]
    assert empty.status_code == 409
    assert "no comparisons" in empty.json()["detail"]
    assert unknown.status_code == 400
    assert "status" in unknown.json()
    assert Campaign.objects.get(pk=draft.pk).status == "draft"


def test_status_is_refused_to_other_teams_and_annotators(
    campaign: Campaign, annotator: User, other_researcher: User, api_client_for: ClientFor
) -> None:
    url = f"{BASE}{campaign.slug}/status/"

    assert api_client_for(other_researcher).post(url, {"status": "closed"}, format="json").status_code == 404
    assert api_client_for(annotator).post(url, {"status": "closed"}, format="json").status_code == 403
    assert api_client_for(None).post(url, {"status": "closed"}, format="json").status_code in (401, 403)
    assert Campaign.objects.get(pk=campaign.pk).status == "active"


# --- the whole pipeline -----------------------------------------------------------------------------------------


def test_a_campaign_set_up_over_the_api_is_rated_by_an_annotator_and_ranked(
    researcher: User, annotator: User, api_client_for: ClientFor
) -> None:
    client = api_client_for(researcher)
    created = client.post(
        BASE,
        {"name": "Pipeline", "slug": "pipeline", "label_scheme": "binary", "ratings_per_comparison": 1},
        format="json",
        headers={"Idempotency-Key": "pipeline-create"},
    )
    assert created.status_code == 201
    url = f"{BASE}pipeline/"
    assert client.post(url + "outputs/", {"file": upload("o.jsonl", jsonl(records(prompts=2)))}).status_code == 201
    assert client.post(url + "comparisons/generate/", {}, format="json").json()["created"] == 6
    assert client.put(url + "annotators/", {"users": ["alice"], "group": None}, format="json").status_code == 200
    assert client.post(url + "status/", {"status": "active"}, format="json").json()["status"] == "active"

    rater = api_client_for(annotator)
    campaign_id = Campaign.objects.get(slug="pipeline").pk
    for _ in range(6):
        shown = rater.post(f"/api/v1/campaigns/{campaign_id}/next/", {}, format="json")
        assert shown.status_code == 200
        rated = rater.post(
            f"/api/v1/assignments/{shown.json()['assignment']}/rating/", {"choice": "left"}, format="json"
        )
        assert rated.status_code == 201
    assert rater.post(f"/api/v1/campaigns/{campaign_id}/next/", {}, format="json").status_code == 204

    board = client.get(url + "leaderboard/?raters=humans")

    assert board.status_code == 200
    assert Rating.objects.filter(comparison__campaign_id=campaign_id).count() == 6
    assert {row["model"] for row in board.json()["ratings"]} == {"m-a", "m-b", "m-c"}
    assert sum(row["votes"] for row in board.json()["ratings"]) == 12  # 6 ratings, each counted for both models


def test_another_teams_annotator_group_cannot_be_chosen(
    campaign: Campaign, other_researcher: User, api_client_for: ClientFor
) -> None:
    ritas = Group.objects.create(name="Rita's raters")
    campaign.annotator_group = ritas
    campaign.save()
    beas = factories.CampaignFactory.create(owner=other_researcher, slug="beas")
    client = api_client_for(other_researcher)

    patched = client.patch(f"{BASE}beas/", {"annotator_group": "Rita's raters"}, format="json")
    put = client.put(f"{BASE}beas/annotators/", {"users": [], "group": "Rita's raters"}, format="json")
    created = client.post(BASE, {"name": "B2", "slug": "b2", "annotator_group": "Rita's raters"}, format="json")

    assert patched.status_code == put.status_code == created.status_code == 400
    assert "No group named" in patched.json()["annotator_group"][0]
    assert "No group named" in put.json()["group"][0]
    assert Campaign.objects.get(pk=beas.pk).annotator_group is None
    assert not Campaign.objects.filter(slug="b2").exists()
