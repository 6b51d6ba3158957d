"""The annotator site's server-rendered pages."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from annotation import services
from annotation.models import Campaign

pytestmark = pytest.mark.django_db


def test_my_campaigns_lists_the_annotators_active_campaigns_with_progress(
    campaign: Campaign, annotator: User, client: Client
) -> None:
    Campaign.objects.filter(pk=campaign.pk).update(quota_per_annotator=5)
    client.force_login(annotator)

    page = client.get("/").content.decode()

    assert campaign.name in page
    assert "0</span> rated" in page
    assert "5</span> remaining" in page
    assert f"/campaigns/{campaign.pk}/rate/" in page


def test_my_campaigns_hides_campaigns_that_are_not_active_or_not_mine(
    campaign: Campaign, outsider: User, annotator: User, client: Client
) -> None:
    client.force_login(outsider)
    assert campaign.name not in client.get("/").content.decode()

    Campaign.objects.filter(pk=campaign.pk).update(status="closed")
    client.force_login(annotator)
    assert campaign.name not in client.get("/").content.decode()


def test_the_rating_page_is_404_for_someone_who_does_not_annotate_the_campaign(
    campaign: Campaign, outsider: User, client: Client
) -> None:
    client.force_login(outsider)

    assert client.get(f"/campaigns/{campaign.pk}/rate/").status_code == 404


def test_the_rating_page_only_runs_its_own_script_and_names_no_model(
    campaign: Campaign, annotator: User, client: Client, settings: Any
) -> None:
    Campaign.objects.filter(pk=campaign.pk).update(instructions="Pick the **better** answer. <script>x()</script>")
    client.force_login(annotator)

    response = client.get(f"/campaigns/{campaign.pk}/rate/")
    page = response.content.decode()

    assert "script-src 'self'" in response["Content-Security-Policy"]
    assert "<strong>better</strong>" in page
    assert "&lt;script&gt;x()&lt;/script&gt;" in page
    assert "model-" not in page


def test_anonymous_visitors_are_sent_to_the_login_page(client: Client) -> None:
    response = client.get("/")

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def _rate_everything_open_to(user: User, campaign: Campaign) -> int:
    """Rate every comparison the campaign leases to the user (through the annotator's services); return how many."""
    rated = 0
    while (shown := services.claim_next(user=user, campaign_id=campaign.pk).shown) is not None:
        services.submit_rating(user=user, assignment_id=shown.assignment_id, answer=services.RatingInput(choice="tie"))
        rated += 1
    return rated


def test_my_campaigns_says_the_annotator_is_done_once_they_rated_all_they_may_though_others_still_have_work(
    campaign: Campaign, annotator: User, other_annotator: User, client: Client
) -> None:
    rated = _rate_everything_open_to(annotator, campaign)  # 12 comparisons, each wanting 2 ratings
    assert rated == 12
    client.force_login(annotator)

    page = client.get("/").content.decode()

    assert "Start rating" not in page
    assert "comparisons open" not in page
    assert "You are done here" in page
    client.force_login(other_annotator)  # the second rating of each is still open to bob
    page = client.get("/").content.decode()
    assert "Start rating" in page
    assert "12 comparisons open for you" in page
