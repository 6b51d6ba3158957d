"""Many annotators claiming and rating one campaign at once, over the API, each on its own connection.

The API is reached both through Django's request cycle (APIClient) and through the production WSGI application,
whose lean path answers token requests (annotation.fastpath).
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.test import RequestFactory
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotation import services
from annotation.models import Assignment, Comparison, Rating
from tests import factories

CLIENTS = 10
REQUIRED = 3


Post = Callable[[str, dict[str, Any]], tuple[int, bytes]]


def _api_client(user: User) -> Post:
    client = APIClient()
    client.force_authenticate(user)

    def post(path: str, body: dict[str, Any]) -> tuple[int, bytes]:
        response = client.post(path, body, format="json")
        return response.status_code, response.content

    return post


def _wsgi_with_token(user: User) -> Post:
    from evalplatform.wsgi import application

    key = Token.objects.get_or_create(user=user)[0].key

    def post(path: str, body: dict[str, Any]) -> tuple[int, bytes]:
        request = RequestFactory().post(
            path, json.dumps(body), content_type="application/json", HTTP_AUTHORIZATION=f"Token {key}"
        )
        started: list[str] = []
        chunks = application(request.environ, lambda status, headers, exc_info=None: started.append(status))
        try:
            return int(started[0].split()[0]), b"".join(chunks)
        finally:
            getattr(chunks, "close", lambda: None)()

    return post


def _annotate_until_done(
    client_for: Callable[[User], Post], user: User, campaign_id: int, accepted: list[int], errors: list[str]
) -> None:
    try:
        post = client_for(user)
        while True:
            status, content = post(f"/api/v1/campaigns/{campaign_id}/next/", {})
            if status == 204:
                return
            if status != 200:
                errors.append(f"next: {status} {content!r}")
                return
            assignment = json.loads(content)["assignment"]
            status, content = post(f"/api/v1/assignments/{assignment}/rating/", {"choice": "left"})
            if status != 201:
                errors.append(f"rating: {status} {content!r}")
                return
            accepted.append(assignment)
    except Exception as error:  # a thread must report, not vanish
        errors.append(repr(error))
    finally:
        connection.close()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("client_for", [_api_client, _wsgi_with_token], ids=["django", "lean-path"])
def test_concurrent_annotators_fill_every_comparison_exactly_and_lose_nothing(
    client_for: Callable[[User], Post],
) -> None:
    owner = factories.UserFactory.create(username="rita", is_staff=True)
    campaign = factories.CampaignFactory.create(owner=owner, status="active", ratings_per_comparison=REQUIRED)
    users = [factories.UserFactory.create(username=f"annotator{i}") for i in range(CLIENTS)]
    campaign.annotators.add(*users)
    factories.populate_campaign(campaign, prompts=8, models=["m1", "m2", "m3", "m4"])
    accepted: list[int] = []
    errors: list[str] = []

    threads = [
        threading.Thread(target=_annotate_until_done, args=(client_for, u, campaign.pk, accepted, errors))
        for u in users
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert errors == []
    ratings = Rating.objects.filter(comparison__campaign=campaign)
    assert sorted(ratings.values_list("assignment_id", flat=True)) == sorted(accepted)
    per_comparison = Counter(ratings.values_list("comparison_id", flat=True))
    total = Comparison.objects.filter(campaign=campaign).count()
    assert len(per_comparison) == total
    assert set(per_comparison.values()) == {REQUIRED}
    assert len(set(ratings.values_list("comparison_id", "rater_id"))) == ratings.count()
    assert not Assignment.objects.filter(state=Assignment.State.LEASED).exists()
    assert set(Comparison.objects.filter(campaign=campaign).values_list("filled", flat=True)) == {REQUIRED}


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_one_annotators_concurrent_next_requests_share_one_lease() -> None:
    owner = factories.UserFactory.create(username="rita", is_staff=True)
    campaign = factories.CampaignFactory.create(owner=owner, status="active")
    annotator = factories.UserFactory.create(username="alice")
    campaign.annotators.add(annotator)
    factories.populate_campaign(campaign, prompts=4, models=["m1", "m2", "m3"])
    services.claim_next(user=annotator, campaign_id=campaign.pk)  # first visit: rater and standing exist
    Assignment.objects.all().delete()
    Comparison.objects.update(filled=0)
    shown: list[int] = []
    errors: list[str] = []

    def next_once() -> None:
        try:
            lease = services.claim_next(user=annotator, campaign_id=campaign.pk)
            assert lease.shown is not None
            shown.append(lease.shown.assignment_id)
        except Exception as error:
            errors.append(repr(error))
        finally:
            connection.close()

    threads = [threading.Thread(target=next_once) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert len(set(shown)) == 1
    assert Assignment.objects.filter(state=Assignment.State.LEASED).count() == 1
    assert sum(Comparison.objects.values_list("filled", flat=True)) == 1


@pytest.mark.django_db(transaction=True)
def test_a_claim_that_meets_only_a_comparison_another_claim_holds_waits_for_the_slot_left_after_it() -> None:
    # SKIP LOCKED passes over a comparison another claim is taking; with a slot left after that claim, the
    # annotator must get it, not "nothing left" (the concurrency test above met this about one run in 40).
    owner = factories.UserFactory.create(username="rita", is_staff=True)
    campaign = factories.CampaignFactory.create(owner=owner, status="active", ratings_per_comparison=REQUIRED)
    annotator = factories.UserFactory.create(username="annotator0")
    campaign.annotators.add(annotator)
    factories.populate_campaign(campaign, prompts=1, models=["m1", "m2"])
    only = Comparison.objects.get(campaign=campaign)
    locked, release = threading.Event(), threading.Event()

    def hold_the_row() -> None:
        try:
            with transaction.atomic():
                Comparison.objects.select_for_update(no_key=True).get(pk=only.pk)
                locked.set()
                release.wait(timeout=10)
        finally:
            connection.close()

    holder = threading.Thread(target=hold_the_row)
    holder.start()
    assert locked.wait(timeout=10)
    threading.Timer(0.2, release.set).start()

    lease = services.claim_next(user=annotator, campaign_id=campaign.pk)

    holder.join(timeout=10)
    assert lease.assignment is not None
    assert lease.assignment.comparison_id == only.pk
