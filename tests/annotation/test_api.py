"""The annotator HTTP API: status codes, payloads without model names, field errors, authentication."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotation.models import Assignment, Campaign, Rating
from annotation.stored_html import fill_missing_html

pytestmark = pytest.mark.django_db

ClientFor = Callable[[User | None], APIClient]


def _next(client: APIClient, campaign: Campaign, **body: Any) -> Any:
    return client.post(f"/api/v1/campaigns/{campaign.pk}/next/", body, format="json")


def _rate(client: APIClient, assignment: int, **body: Any) -> Any:
    return client.post(f"/api/v1/assignments/{assignment}/rating/", body, format="json")


def test_next_returns_the_prompt_and_both_sides_without_model_names(
    campaign: Campaign, annotator: User, api_client_for: ClientFor
) -> None:
    response = _next(api_client_for(annotator), campaign)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"assignment", "prompt", "left", "right", "lease_expires", "progress"}
    assert body["prompt"]["text"].startswith("Question")
    assert {body["left"]["text"].split()[0], body["right"]["text"].split()[0]} <= {"model-x", "model-y", "model-z"}
    # The texts in this fixture start with the model name; every other field must be free of it.
    body_without_texts = json.dumps({k: v for k, v in body.items() if k not in ("left", "right")})
    assert "model-" not in body_without_texts
    assert Assignment.objects.get(pk=body["assignment"]).rater.user == annotator


def test_next_is_204_when_nothing_is_left(campaign: Campaign, annotator: User, api_client_for: ClientFor) -> None:
    campaign.quota_per_annotator = 1
    campaign.save()
    client = api_client_for(annotator)
    assignment = _next(client, campaign).json()["assignment"]
    assert _rate(client, assignment, choice="left").status_code == 201

    response = _next(client, campaign)

    assert response.status_code == 204


def test_next_is_404_for_someone_who_does_not_annotate_the_campaign(
    campaign: Campaign, outsider: User, researcher: User, api_client_for: ClientFor
) -> None:
    assert _next(api_client_for(outsider), campaign).status_code == 404
    assert _next(api_client_for(researcher), campaign).status_code == 404
    assert not Assignment.objects.exists()


def test_the_api_refuses_anonymous_requests(campaign: Campaign, api_client_for: ClientFor) -> None:
    assert _next(api_client_for(None), campaign).status_code in (401, 403)


def test_token_authentication_works(campaign: Campaign, annotator: User) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=annotator).key}")

    assert _next(client, campaign).status_code == 200


def test_rating_is_201_then_409_for_a_second_rating(
    campaign: Campaign, annotator: User, api_client_for: ClientFor
) -> None:
    client = api_client_for(annotator)
    assignment = _next(client, campaign).json()["assignment"]

    first = _rate(client, assignment, choice="tie", time_ms=1234)
    second = _rate(client, assignment, choice="left")

    assert first.status_code == 201
    assert first.json()["choice"] == "tie"
    assert second.status_code == 409
    assert Rating.objects.get().time_ms == 1234


def test_a_retried_rating_with_the_same_idempotency_key_is_200_and_stored_once(
    campaign: Campaign, annotator: User, api_client_for: ClientFor
) -> None:
    client = api_client_for(annotator)
    assignment = _next(client, campaign).json()["assignment"]

    first = client.post(
        f"/api/v1/assignments/{assignment}/rating/", {"choice": "left"}, format="json", HTTP_IDEMPOTENCY_KEY="abc"
    )
    retry = client.post(
        f"/api/v1/assignments/{assignment}/rating/", {"choice": "left"}, format="json", HTTP_IDEMPOTENCY_KEY="abc"
    )

    assert (first.status_code, retry.status_code) == (201, 200)
    assert Rating.objects.count() == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [({"choice": "up"}, "choice"), ({}, "choice"), ({"choice": "left", "time_ms": -5}, "time_ms")],
)
def test_bad_input_is_400_with_field_errors(
    campaign: Campaign, annotator: User, api_client_for: ClientFor, body: dict[str, Any], field: str
) -> None:
    client = api_client_for(annotator)
    assignment = _next(client, campaign).json()["assignment"]

    response = _rate(client, assignment, **body)

    assert response.status_code == 400
    assert field in response.json()
    assert not Rating.objects.exists()


def test_a_choice_outside_the_label_scheme_or_a_missing_rationale_is_400(
    campaign: Campaign, annotator: User, api_client_for: ClientFor
) -> None:
    Campaign.objects.filter(pk=campaign.pk).update(label_scheme="binary", require_rationale=True)
    client = api_client_for(annotator)
    assignment = _next(client, campaign).json()["assignment"]

    tie = _rate(client, assignment, choice="tie", rationale="same")
    silent = _rate(client, assignment, choice="left")

    assert tie.status_code == 400
    assert "choice" in tie.json()
    assert silent.status_code == 400
    assert "rationale" in silent.json()
    assert _rate(client, assignment, choice="left", rationale="more precise").status_code == 201


def test_someone_elses_assignment_is_404(
    campaign: Campaign, annotator: User, other_annotator: User, api_client_for: ClientFor
) -> None:
    assignment = _next(api_client_for(annotator), campaign).json()["assignment"]
    bob = api_client_for(other_annotator)

    assert _rate(bob, assignment, choice="left").status_code == 404
    assert bob.post(f"/api/v1/assignments/{assignment}/skip/").status_code == 404
    assert bob.post(f"/api/v1/assignments/{assignment}/heartbeat/").status_code == 404
    assert not Rating.objects.exists()


def test_rating_after_the_lease_expired_is_409(campaign: Campaign, annotator: User, api_client_for: ClientFor) -> None:
    client = api_client_for(annotator)
    assignment = _next(client, campaign).json()["assignment"]
    Assignment.objects.filter(pk=assignment).update(lease_expires_at="2000-01-01T00:00:00Z")

    response = _rate(client, assignment, choice="left")

    assert response.status_code == 409
    assert "expired" in response.json()["detail"]


def test_skip_undo_and_heartbeat(campaign: Campaign, annotator: User, api_client_for: ClientFor) -> None:
    client = api_client_for(annotator)
    first = _next(client, campaign).json()["assignment"]
    assert client.post(f"/api/v1/assignments/{first}/heartbeat/").status_code == 200
    assert client.post(f"/api/v1/assignments/{first}/skip/").status_code == 204
    assert client.post(f"/api/v1/assignments/{first}/skip/").status_code == 409

    second = _next(client, campaign).json()
    assert second["assignment"] != first
    assert _rate(client, second["assignment"], choice="right").json()["choice"] == "right"
    undone = client.post(f"/api/v1/assignments/{second['assignment']}/undo/")

    assert undone.status_code == 200
    assert undone.json()["assignment"] == second["assignment"]
    assert undone.json()["progress"]["done"] == 0
    assert not Rating.objects.exists()


def test_progress_counts_ratings_against_the_quota(
    campaign: Campaign, annotator: User, api_client_for: ClientFor
) -> None:
    campaign.quota_per_annotator = 5
    campaign.save()
    client = api_client_for(annotator)
    assignment = _next(client, campaign).json()["assignment"]
    _rate(client, assignment, choice="left")

    progress = _next(client, campaign).json()["progress"]

    assert progress == {"done": 1, "quota": 5, "remaining": 4, "paused": False}


def test_my_campaigns_lists_active_campaigns_with_progress(
    campaign: Campaign, annotator: User, outsider: User, api_client_for: ClientFor
) -> None:
    mine = api_client_for(annotator).get("/api/v1/annotator/campaigns/").json()

    assert [c["id"] for c in mine] == [campaign.pk]
    assert mine[0]["available"] == campaign.comparisons.count()
    assert api_client_for(outsider).get("/api/v1/annotator/campaigns/").json() == []


def test_the_openapi_schema_documents_the_annotator_endpoints(annotator: User, api_client_for: ClientFor) -> None:
    schema = api_client_for(annotator).get("/api/schema/", HTTP_ACCEPT="application/json").json()

    paths = schema["paths"]
    assert "/api/v1/campaigns/{campaign_id}/next/" in paths
    rating = paths["/api/v1/assignments/{assignment_id}/rating/"]["post"]
    assert {"201", "200", "400", "409"} <= set(rating["responses"])
    assert "choice" in json.dumps(schema["components"]["schemas"]["RatingInput"])


def test_next_and_rating_each_run_a_few_prepared_statements(campaign: Campaign, annotator: User) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=annotator).key}")
    _rate(client, _next(client, campaign).json()["assignment"], choice="left")  # first visit creates the rater
    fill_missing_html()  # as an import does: the texts are shown from their stored HTML

    with CaptureQueriesContext(connection) as next_queries:
        assignment = _next(client, campaign).json()["assignment"]
    with CaptureQueriesContext(connection) as rating_queries:
        assert _rate(client, assignment, choice="tie").status_code == 201

    # token, BEGIN, lock the standing, live leases (+ sweep), claim (+ what is shown), COMMIT
    assert len(next_queries.captured_queries) == 6
    # token, BEGIN, lock the standing (+ the assignment and its campaign), write everything, COMMIT
    assert len(rating_queries.captured_queries) == 5


def test_the_rating_response_shows_the_side_and_the_undo_deadline(
    campaign: Campaign, annotator: User, api_client_for: ClientFor
) -> None:
    Campaign.objects.filter(pk=campaign.pk).update(strength_levels=2, quota_per_annotator=4)
    client = api_client_for(annotator)
    assignment = _next(client, campaign).json()["assignment"]

    body = _rate(client, assignment, choice="right", strength=2, time_ms=900).json()

    created = datetime.fromisoformat(body["created_at"].replace("Z", "+00:00"))
    assert datetime.fromisoformat(body["undo_until"]) == created + timedelta(seconds=15)
    assert {k: v for k, v in body.items() if k not in ("created_at", "undo_until")} == {
        "assignment": assignment,
        "choice": "right",
        "strength": 2,
        "time_ms": 900,
        "progress": {"done": 1, "quota": 4, "remaining": 3, "paused": False},
    }
    stored = Rating.objects.get()
    assert stored.winner_id != stored.left_output_id


def _nested(depth: int) -> str:
    return "[" * depth + "1" + "]" * depth


def test_next_with_an_exclude_nested_5000_deep_is_400_and_leases_nothing(
    campaign: Campaign, annotator: User, api_client_for: ClientFor
) -> None:
    body = '{"exclude": ' + _nested(5000) + "}"

    response = api_client_for(annotator).post(
        f"/api/v1/campaigns/{campaign.pk}/next/", body, content_type="application/json"
    )

    assert response.status_code == 400
    assert "nested deeper than 32 levels" in response.json()["detail"]
    assert not Assignment.objects.exists()


@pytest.mark.parametrize(
    "exclude",
    [[[1]], ["1"], [1.0], [True], [0], [2**63], list(range(1, 12)), {"1": 1}, None, _nested(3)],
    ids=["nested", "string", "float", "bool", "zero", "too-big", "eleven", "object", "null", "nested-string"],
)
def test_next_refuses_an_exclude_that_is_not_a_flat_short_list_of_ids(
    campaign: Campaign, annotator: User, api_client_for: ClientFor, exclude: Any
) -> None:
    response = _next(api_client_for(annotator), campaign, exclude=exclude)

    assert response.status_code == 400
    assert "exclude" in response.json()
    assert not Assignment.objects.exists()


def test_a_body_over_the_size_limit_is_413(campaign: Campaign, annotator: User, api_client_for: ClientFor) -> None:
    client = api_client_for(annotator)
    assignment = _next(client, campaign).json()["assignment"]

    response = _rate(client, assignment, choice="left", rationale="x" * 300_000)

    assert response.status_code == 413
    assert not Rating.objects.exists()


def _set_status(status: str) -> Any:
    return lambda campaign, user: Campaign.objects.filter(pk=campaign.pk).update(status=status)


@pytest.mark.parametrize(
    ("revoke", "status", "code"),
    [
        pytest.param(lambda campaign, user: campaign.annotators.remove(user), 404, "not_found", id="removed"),
        pytest.param(_set_status("paused"), 409, "campaign_not_active", id="paused"),
        pytest.param(_set_status("closed"), 409, "campaign_not_active", id="closed"),
    ],
)
def test_heartbeat_rating_skip_and_undo_are_refused_once_the_right_to_annotate_ends(
    campaign: Campaign, annotator: User, api_client_for: ClientFor, revoke: Any, status: int, code: str
) -> None:
    client = api_client_for(annotator)
    leased = _next(client, campaign).json()["assignment"]
    rated = _next(client, campaign, exclude=[leased]).json()["assignment"]
    assert _rate(client, rated, choice="left").status_code == 201
    revoke(campaign, annotator)

    heartbeat = client.post(f"/api/v1/assignments/{leased}/heartbeat/")
    rating = _rate(client, leased, choice="left")
    skip = client.post(f"/api/v1/assignments/{leased}/skip/")
    undo = client.post(f"/api/v1/assignments/{rated}/undo/")

    for response in (heartbeat, rating, skip, undo):
        assert (response.status_code, response.json()["code"]) == (status, code)
        assert "prompt" not in response.json()
    assert Rating.objects.get().assignment_id == rated
    assert _next(client, campaign).status_code == (404 if status == 404 else 204)
