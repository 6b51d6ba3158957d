"""The admin's annotator statuses: the rater report's flags beside each rater, and the logged actions on them, for
every persona (owner, co-researcher, another team's researcher, annotator, superuser)."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission, User
from django.test import Client

from annotation.models import AnnotatorStatus, Campaign, Rater, RaterAction, Rating
from tests import factories
from tests.results.conftest import Rated, rate

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/annotation/annotatorstatus/"
ACTIONS = ["pause", "resume", "exclude_from_results", "include_again"]


def staff(user: User) -> User:
    """Give a researcher the admin's permissions on statuses and the audit trail."""
    codenames = ["view_annotatorstatus", "change_annotatorstatus", "view_rateraction"]
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return user


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def rated(campaign: Campaign, annotator: User) -> Rated:
    """Rate the campaign: alice and an expert pick the better model (first by name), a judge in both orders."""
    alice = factories.RaterFactory.create(name="alice", user=annotator)
    expert = factories.RaterFactory.create(name="expert_1")
    judge = factories.RaterFactory.create(name="gpt-judge", kind=Rater.Kind.JUDGE)
    comparisons = list(campaign.comparisons.select_related("output_a", "output_b").order_by("id"))
    for comparison in comparisons:
        better, worse = sorted(o.model_name or "" for o in (comparison.output_a, comparison.output_b))
        rate(comparison, alice, better, left=worse)
        rate(comparison, expert, better, left=better)
        rate(comparison, judge, better, left=better)
        rate(comparison, judge, better, left=worse)
    return Rated(campaign, comparisons, alice, expert, judge)


@pytest.fixture
def troll(rated: Rated) -> AnnotatorStatus:
    """An annotator with an account who always picks the worse model, with a standing in the campaign."""
    user = factories.UserFactory.create(username="trollish")
    rater = factories.RaterFactory.create(name="trollish", user=user)
    for i, comparison in enumerate(rated.comparisons):
        better, worse = sorted(o.model_name or "" for o in (comparison.output_a, comparison.output_b))
        rate(comparison, rater, worse, left=worse if i % 2 else better)
    return AnnotatorStatus.objects.create(campaign=rated.campaign, rater=rater, rated_count=len(rated.comparisons))


def act(client: Client, action: str, *statuses: AnnotatorStatus) -> None:
    client.post(CHANGELIST, {"action": action, "_selected_action": [s.pk for s in statuses]})


def test_the_status_list_shows_the_flags_and_why(troll: AnnotatorStatus, researcher: User) -> None:
    page = signed_in(staff(researcher)).get(CHANGELIST).content.decode()

    for column in ("flagged", "competence", "p_value", "gold_accuracy", "why", "paused_reason", "excluded"):
        assert f'class="sortable column-{column}' in page or f'class="column-{column}' in page, column
    assert "flagged: votes against the model&#x27;s predictions" in page


def test_the_owner_pauses_excludes_resumes_and_includes_and_each_is_logged(
    troll: AnnotatorStatus, researcher: User
) -> None:
    client = signed_in(staff(researcher))
    ratings = Rating.objects.count()

    for action in ACTIONS:
        act(client, action, troll)
        troll.refresh_from_db()
        expected = {"pause": (True, False), "resume": (False, False)}.get(action)
        if action == "exclude_from_results":
            assert troll.excluded
        elif action == "include_again":
            assert not troll.excluded
        else:
            assert (troll.paused, troll.excluded) == expected

    logged = list(RaterAction.objects.order_by("id").values_list("action", "actor__username"))
    assert logged == [("pause", "rita"), ("resume", "rita"), ("exclude", "rita"), ("include", "rita")]
    reason = RaterAction.objects.get(action="exclude").reason
    assert reason.startswith("Excluded from results in the admin by rita: flagged: votes against")
    assert LogEntry.objects.filter(object_id=str(troll.pk)).count() == 4
    assert Rating.objects.count() == ratings  # never deleted


def test_an_action_on_a_rater_already_so_logs_nothing(troll: AnnotatorStatus, researcher: User) -> None:
    client = signed_in(staff(researcher))

    act(client, "resume", troll)

    assert not RaterAction.objects.exists()


def test_the_audit_trail_is_read_only(troll: AnnotatorStatus, researcher: User) -> None:
    client = signed_in(staff(researcher))
    act(client, "exclude_from_results", troll)
    action = RaterAction.objects.get()

    assert "trollish" in client.get("/admin/annotation/rateraction/").content.decode()
    assert client.get("/admin/annotation/rateraction/add/").status_code == 403
    assert client.post(f"/admin/annotation/rateraction/{action.pk}/delete/", {"post": "yes"}).status_code == 403
    assert RaterAction.objects.filter(pk=action.pk).exists()


def test_a_co_researcher_and_a_superuser_act_too(troll: AnnotatorStatus, rated: Rated) -> None:
    colleague = staff(factories.UserFactory.create(username="colleague", is_staff=True))
    rated.campaign.researchers.add(colleague)
    root = factories.UserFactory.create(username="root", is_staff=True, is_superuser=True)

    act(signed_in(colleague), "pause", troll)
    act(signed_in(root), "exclude_from_results", troll)

    troll.refresh_from_db()
    assert (troll.paused, troll.excluded) == (True, True)
    assert list(RaterAction.objects.order_by("id").values_list("actor__username", flat=True)) == ["colleague", "root"]


def test_another_teams_researcher_neither_sees_nor_acts(troll: AnnotatorStatus) -> None:
    other = staff(factories.UserFactory.create(username="otto", is_staff=True))
    factories.CampaignFactory.create(owner=other)
    client = signed_in(other)

    assert "trollish" not in client.get(CHANGELIST).content.decode()
    for action in ACTIONS:
        act(client, action, troll)

    troll.refresh_from_db()
    assert (troll.paused, troll.excluded) == (False, False)
    assert not RaterAction.objects.exists()
    assert "trollish" not in client.get("/admin/annotation/rateraction/").content.decode()


def test_an_annotator_is_refused(troll: AnnotatorStatus, annotator: User) -> None:
    response = signed_in(annotator).post(CHANGELIST, {"action": "pause", "_selected_action": [troll.pk]})

    assert response.status_code == 403
    troll.refresh_from_db()
    assert not troll.paused


def test_a_researcher_without_the_change_permission_cannot_act(troll: AnnotatorStatus, researcher: User) -> None:
    researcher.user_permissions.add(Permission.objects.get(codename="view_annotatorstatus"))
    client = signed_in(researcher)

    page = client.get(CHANGELIST).content.decode()
    act(client, "exclude_from_results", troll)

    assert "exclude_from_results" not in page
    troll.refresh_from_db()
    assert not troll.excluded


def test_pausing_a_judges_status_in_bulk_skips_it(rated: Rated, researcher: User, campaign: Campaign) -> None:
    judge_status = AnnotatorStatus.objects.create(campaign=campaign, rater=Rater.objects.get(name="gpt-judge"))

    act(signed_in(staff(researcher)), "pause", judge_status)

    judge_status.refresh_from_db()
    assert not judge_status.paused
