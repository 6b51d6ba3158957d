"""The rater API: the campaign's rater report with gold accuracy and standing, and the actions on a rater."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from rest_framework.test import APIClient

from annotation.models import AnnotatorStatus, Comparison, RaterAction, Rating
from tests import factories
from tests.results.conftest import Rated, rate

ClientFor = Callable[[User | None], APIClient]


def url(rated: Rated, tail: str = "raters/") -> str:
    return f"/api/v1/research/campaigns/{rated.campaign.slug}/{tail}"


def add_troll(rated: Rated) -> None:
    """Add a rater who always picks the worse model, shown on the left or the right in turn."""
    troll = factories.RaterFactory.create(name="troll")
    for i, comparison in enumerate(rated.comparisons):
        better, worse = sorted(o.model_name or "" for o in (comparison.output_a, comparison.output_b))
        rate(comparison, troll, worse, left=worse if i % 2 else better)
        rate(comparison, troll, worse, left=better if i % 2 else worse)


def make_gold(comparisons: list[Comparison]) -> None:
    """Make the comparisons gold, the better model (first by name) the known winner."""
    for comparison in comparisons:
        better = min((comparison.output_a, comparison.output_b), key=lambda o: o.model_name or "")
        Comparison.objects.filter(pk=comparison.pk).update(gold_verdict="win", gold_winner=better)


def test_the_rater_list_reports_every_rater_with_flags_gold_accuracy_and_standing(
    rated: Rated, researcher: User, api_client_for: ClientFor
) -> None:
    add_troll(rated)
    make_gold(rated.comparisons[:6])
    cache.clear()

    report = api_client_for(researcher).get(url(rated)).json()

    rows = {row["rater"]: row for row in report["raters"]}
    assert set(rows) == {rated.alice.pseudonym, "expert_1", "gpt-judge", "troll"}
    assert report["raters"][0]["rater"] == "troll"
    troll = rows["troll"]
    assert troll["flagged"]
    assert troll["kind"] == "human"
    assert (troll["gold_answered"], troll["gold_correct"], troll["gold_accuracy"]) == (12, 0, 0.0)
    assert any(reason.startswith("gold accuracy 0/12 (0%) below the campaign's minimum") for reason in troll["reasons"])
    assert (rows[rated.alice.pseudonym]["gold_answered"], rows[rated.alice.pseudonym]["gold_correct"]) == (6, 6)
    assert rows["gpt-judge"]["kind"] == "judge"
    assert set(troll) == {
        "rater", "kind", "votes", "competence", "left_bias", "left_p_value", "p_value", "gold_answered",
        "gold_correct", "gold_accuracy", "flagged", "reasons", "paused", "excluded",
    }  # fmt: skip
    assert (report["alpha"], report["correction"], report["gold_min_accuracy"]) == (0.05, "bh", 0.6)


def test_an_action_changes_the_standing_the_list_shows_and_is_in_its_log(
    rated: Rated, researcher: User, api_client_for: ClientFor
) -> None:
    add_troll(rated)
    client = api_client_for(researcher)
    client.get(url(rated))  # the report is now cached: the standing must still be fresh

    done = client.post(
        url(rated, "raters/actions/"), {"rater": "troll", "action": "exclude", "reason": "inverted"}, format="json"
    )
    report = client.get(url(rated)).json()

    assert done.status_code == 200
    assert done.json() == {"rater": "troll", "action": "exclude", "changed": True, "paused": False, "excluded": True}
    assert next(row for row in report["raters"] if row["rater"] == "troll")["excluded"]
    assert report["actions"][0] | {"created_at": None} == {
        "rater": "troll", "action": "exclude", "reason": "inverted", "actor": "rita", "created_at": None,
    }  # fmt: skip
    ratings = Rating.objects.filter(rater__name="troll").count()
    again = client.post(
        url(rated, "raters/actions/"), {"rater": "troll", "action": "include", "reason": "checked"}, format="json"
    )
    assert again.json()["excluded"] is False
    assert Rating.objects.filter(rater__name="troll").count() == ratings == 2 * len(rated.comparisons)


def test_an_annotator_is_paused_through_the_api_by_their_pseudonym(
    rated: Rated, researcher: User, api_client_for: ClientFor
) -> None:
    body = {"rater": rated.alice.pseudonym, "action": "pause", "reason": "too fast"}

    response = api_client_for(researcher).post(url(rated, "raters/actions/"), body, format="json")

    assert response.status_code == 200
    status = AnnotatorStatus.objects.get(campaign=rated.campaign, rater=rated.alice)
    assert (status.paused, status.paused_reason) == (True, "too fast")


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"rater": "gpt-judge", "action": "pause", "reason": "x"}, 409),
        ({"rater": "nobody", "action": "exclude", "reason": "x"}, 404),
        ({"rater": "troll", "action": "delete", "reason": "x"}, 400),
        ({"rater": "troll", "action": "exclude", "reason": ""}, 400),
        ({"rater": "troll", "action": "exclude"}, 400),
        ({"rater": "tr\x00oll", "action": "exclude", "reason": "x"}, 400),
        (["troll"], 400),
    ],
)
def test_a_bad_action_is_refused_with_its_status_and_changes_nothing(
    rated: Rated, researcher: User, api_client_for: ClientFor, body: object, status: int
) -> None:
    add_troll(rated)

    response = api_client_for(researcher).post(url(rated, "raters/actions/"), body, format="json")

    assert response.status_code == status, response.content
    assert not AnnotatorStatus.objects.filter(excluded=True).exists()
    assert not RaterAction.objects.exists()


@pytest.mark.parametrize("query", [{"alpha": "nan"}, {"alpha": "2"}, {"alpha": "0"}, {"correction": "bonferroni"}])
def test_a_bad_query_is_a_400(rated: Rated, researcher: User, api_client_for: ClientFor, query: dict[str, str]) -> None:
    assert api_client_for(researcher).get(url(rated), query).status_code == 400


def test_holm_and_a_smaller_alpha_are_taken(rated: Rated, researcher: User, api_client_for: ClientFor) -> None:
    report = api_client_for(researcher).get(url(rated), {"alpha": "0.01", "correction": "holm"}).json()

    assert (report["alpha"], report["correction"]) == (0.01, "holm")


@pytest.mark.parametrize(("persona", "status"), [("annotator", 403), ("outsider", 404), (None, 403)])
def test_only_the_campaigns_researchers_read_the_raters_and_act_on_them(
    rated: Rated,
    annotator: User,
    outsider: User,
    api_client_for: ClientFor,
    persona: str | None,
    status: int,
) -> None:
    user = {"annotator": annotator, "outsider": outsider, None: None}[persona]
    client = api_client_for(user)
    body = {"rater": "expert_1", "action": "exclude", "reason": "x"}

    assert client.get(url(rated)).status_code == status
    assert client.post(url(rated, "raters/actions/"), body, format="json").status_code == status
    assert not AnnotatorStatus.objects.filter(excluded=True).exists()


def test_a_co_researcher_acts_and_a_superuser_too(rated: Rated, researcher: User, api_client_for: ClientFor) -> None:
    colleague = factories.UserFactory.create(username="colleague")
    colleague.user_permissions.set(researcher.user_permissions.all())
    rated.campaign.researchers.add(colleague)
    root = factories.UserFactory.create(username="root", is_staff=True, is_superuser=True)

    for user, action in [(colleague, "exclude"), (root, "include")]:
        body = {"rater": "expert_1", "action": action, "reason": "x"}
        assert api_client_for(user).post(url(rated, "raters/actions/"), body, format="json").status_code == 200

    actors = list(RaterAction.objects.order_by("id").values_list("actor__username", flat=True))
    assert actors == ["colleague", "root"]


def test_a_researcher_without_the_change_permission_reads_but_does_not_act(
    rated: Rated, api_client_for: ClientFor
) -> None:
    reader = factories.UserFactory.create(username="reader")
    rated.campaign.researchers.add(reader)
    client = api_client_for(reader)

    assert client.get(url(rated)).status_code == 200
    body = {"rater": "expert_1", "action": "exclude", "reason": "x"}
    assert client.post(url(rated, "raters/actions/"), body, format="json").status_code == 403
