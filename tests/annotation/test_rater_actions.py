"""A researcher's actions on a rater: pause, resume, exclude, include; reversible, logged, never deleting ratings."""

from __future__ import annotations

from datetime import datetime

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from annotation import services
from annotation.models import AnnotatorStatus, Assignment, Campaign, Rater, RaterAction, Rating
from annotation.rater_actions import RaterIsJudge, act_on_rater, act_on_statuses, find_rater
from evalplatform.exceptions import DomainError, NotFound
from tests import factories

pytestmark = pytest.mark.django_db

T0 = timezone.make_aware(datetime(2026, 1, 5, 9, 0, 0))


def _rater(user: User) -> Rater:
    return services.rater_for_user(user)


def test_pausing_an_annotator_ends_their_leases_and_gives_them_no_more_work(
    campaign: Campaign, annotator: User, researcher: User
) -> None:
    held = services.claim_next(user=annotator, campaign_id=campaign.pk, now=T0).assignment
    assert held is not None

    outcome = act_on_rater(
        campaign=campaign, rater=_rater(annotator), action="pause", reason="votes left", actor=researcher, now=T0
    )

    assert outcome.changed
    assert (outcome.status.paused, outcome.status.paused_reason, outcome.status.paused_at) == (True, "votes left", T0)
    assert Assignment.objects.get(pk=held.pk).state == Assignment.State.EXPIRED
    assert services.claim_next(user=annotator, campaign_id=campaign.pk, now=T0).assignment is None
    logged = RaterAction.objects.get()
    assert (logged.action, logged.reason, logged.actor, logged.created_at) == ("pause", "votes left", researcher, T0)


def test_resuming_gives_work_again_and_is_logged(campaign: Campaign, annotator: User, researcher: User) -> None:
    rater = _rater(annotator)
    act_on_rater(campaign=campaign, rater=rater, action="pause", reason="check", actor=researcher, now=T0)

    outcome = act_on_rater(campaign=campaign, rater=rater, action="resume", reason="fine", actor=researcher, now=T0)

    assert outcome.changed
    assert (outcome.status.paused, outcome.status.paused_reason, outcome.status.paused_at) == (False, "", None)
    assert services.claim_next(user=annotator, campaign_id=campaign.pk, now=T0).assignment is not None
    assert list(RaterAction.objects.order_by("id").values_list("action", flat=True)) == ["pause", "resume"]


def test_excluding_and_including_again_keep_every_rating(campaign: Campaign, researcher: User) -> None:
    expert = factories.RaterFactory.create(name="expert_9")
    for comparison in campaign.comparisons.all()[:3]:
        factories.make_rating(comparison, expert, winner=comparison.output_a)

    excluded = act_on_rater(campaign=campaign, rater=expert, action="exclude", reason="careless", actor=researcher)
    assert (excluded.status.excluded, excluded.status.excluded_reason) == (True, "careless")
    assert excluded.status.excluded_at is not None
    assert Rating.objects.filter(rater=expert).count() == 3

    included = act_on_rater(campaign=campaign, rater=expert, action="include", reason="checked", actor=researcher)
    assert (included.status.excluded, included.status.excluded_reason, included.status.excluded_at) == (False, "", None)
    assert Rating.objects.filter(rater=expert).count() == 3


def test_acting_twice_changes_and_logs_nothing_the_second_time(campaign: Campaign, researcher: User) -> None:
    expert = factories.RaterFactory.create(name="expert_9")
    act_on_rater(campaign=campaign, rater=expert, action="exclude", reason="careless", actor=researcher)

    again = act_on_rater(campaign=campaign, rater=expert, action="exclude", reason="still", actor=researcher)
    never = act_on_rater(campaign=campaign, rater=expert, action="resume", reason="not paused", actor=researcher)

    assert (again.changed, never.changed) == (False, False)
    assert again.status.excluded_reason == "careless"
    assert RaterAction.objects.count() == 1


def test_a_judge_is_excluded_but_never_paused(campaign: Campaign, researcher: User) -> None:
    judge = factories.RaterFactory.create(name="gpt-judge", kind=Rater.Kind.JUDGE)

    with pytest.raises(RaterIsJudge):
        act_on_rater(campaign=campaign, rater=judge, action="pause", reason="x", actor=researcher)
    outcome = act_on_rater(campaign=campaign, rater=judge, action="exclude", reason="biased", actor=researcher)

    assert outcome.status.excluded
    assert not AnnotatorStatus.objects.filter(rater=judge, paused=True).exists()


@pytest.mark.parametrize(
    ("action", "reason", "message"),
    [
        ("delete", "x", "action: expected one of pause, resume, exclude, include"),
        ("pause", "   ", "reason: say why"),
        ("pause", "x" * 2001, "reason: at most 2000 characters"),
        ("pause", "a\x00b", "without null characters"),
    ],
)
def test_an_unknown_action_or_a_missing_reason_is_refused_and_changes_nothing(
    campaign: Campaign, annotator: User, researcher: User, action: str, reason: str, message: str
) -> None:
    with pytest.raises(DomainError, match=message):
        act_on_rater(campaign=campaign, rater=_rater(annotator), action=action, reason=reason, actor=researcher)

    assert not AnnotatorStatus.objects.filter(paused=True).exists()
    assert not RaterAction.objects.exists()


def test_the_bulk_action_skips_judges_when_pausing(campaign: Campaign, annotator: User, researcher: User) -> None:
    judge = factories.RaterFactory.create(name="gpt-judge", kind=Rater.Kind.JUDGE)
    statuses = [AnnotatorStatus.objects.create(campaign=campaign, rater=rater) for rater in (_rater(annotator), judge)]

    assert act_on_statuses(statuses=statuses, action="pause", reason="r", actor=researcher) == 1
    assert act_on_statuses(statuses=statuses, action="exclude", reason="r", actor=researcher) == 2


def test_a_rater_is_found_by_the_label_results_show_and_only_in_its_campaign(
    campaign: Campaign, annotator: User, researcher: User
) -> None:
    alice = _rater(annotator)
    expert = factories.RaterFactory.create(name="expert_9")
    comparison = campaign.comparisons.first()
    assert comparison is not None
    factories.make_rating(comparison, alice, winner=None)
    factories.make_rating(comparison, expert, winner=None)
    elsewhere = factories.RaterFactory.create(name="other-team-rater")
    other = factories.CampaignFactory.create(owner=researcher)
    factories.populate_campaign(other, prompts=1, models=["a", "b"])
    other_comparison = other.comparisons.first()
    assert other_comparison is not None
    factories.make_rating(other_comparison, elsewhere, winner=None)

    assert find_rater(campaign=campaign, label=alice.pseudonym) == alice
    assert find_rater(campaign=campaign, label="expert_9") == expert
    with pytest.raises(NotFound):
        find_rater(campaign=campaign, label="other-team-rater")
