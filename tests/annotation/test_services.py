"""The assignment engine and the annotator's writes, through the services with an injected clock."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone

from annotation import services
from annotation.models import AnnotatorStatus, Assignment, Campaign, Comparison, Rater, Rating
from evalplatform.exceptions import Conflict, DomainError, NotFound
from tests import factories

pytestmark = pytest.mark.django_db


T0 = timezone.make_aware(datetime(2026, 1, 5, 9, 0, 0))


def _one_comparison_campaign(researcher: User, *users: User, **fields: Any) -> Campaign:
    fields.setdefault("status", "active")
    campaign = factories.CampaignFactory.create(owner=researcher, **fields)
    campaign.annotators.add(*users)
    factories.populate_campaign(campaign, prompts=1, models=["m-one", "m-two"])
    return campaign


def _rate(campaign: Campaign, user: User, choice: str = "left", *, now: datetime = T0, **answer: Any) -> Rating:
    assignment = services.claim_next(user=user, campaign_id=campaign.pk, now=now).assignment
    assert assignment is not None
    return services.submit_rating(
        user=user, assignment_id=assignment.pk, answer=services.RatingInput(choice, **answer), now=now
    ).rating


def test_claim_leases_a_comparison_for_the_campaigns_lease_time(campaign: Campaign, annotator: User) -> None:
    assignment = services.claim_next(user=annotator, campaign_id=campaign.pk, now=T0).assignment

    assert assignment is not None
    assert assignment.state == Assignment.State.LEASED
    assert assignment.lease_expires_at == T0 + timedelta(seconds=campaign.lease_seconds)
    assert assignment.left_output_id in (assignment.comparison.output_a_id, assignment.comparison.output_b_id)
    assert Comparison.objects.get(pk=assignment.comparison_id).filled == 1


def test_first_claim_creates_a_human_rater_named_after_the_user(campaign: Campaign, annotator: User) -> None:
    services.claim_next(user=annotator, campaign_id=campaign.pk, now=T0)

    rater = Rater.objects.get(user=annotator)
    assert (rater.kind, rater.name) == (Rater.Kind.HUMAN, "alice")


def test_reopening_returns_the_same_lease_renewed(campaign: Campaign, annotator: User) -> None:
    first = services.claim_next(user=annotator, campaign_id=campaign.pk, now=T0).assignment
    again = services.claim_next(user=annotator, campaign_id=campaign.pk, now=T0 + timedelta(seconds=100)).assignment

    assert first is not None
    assert again is not None
    assert again.pk == first.pk
    assert again.lease_expires_at == T0 + timedelta(seconds=100 + campaign.lease_seconds)


def test_prefetch_gets_more_comparisons_up_to_three_leases_at_once(campaign: Campaign, annotator: User) -> None:
    held: set[int] = set()
    for _ in range(services.MAX_LIVE_LEASES):
        assignment = services.claim_next(user=annotator, campaign_id=campaign.pk, exclude=held, now=T0).assignment
        assert assignment is not None
        held.add(assignment.pk)

    assert len({a.comparison_id for a in Assignment.objects.filter(pk__in=held)}) == 3
    with pytest.raises(Conflict):
        services.claim_next(user=annotator, campaign_id=campaign.pk, exclude=held, now=T0)


def test_an_annotator_gets_every_comparison_once_then_nothing(campaign: Campaign, annotator: User) -> None:
    seen = [_rate(campaign, annotator).comparison_id for _ in range(campaign.comparisons.count())]

    assert sorted(seen) == sorted(campaign.comparisons.values_list("pk", flat=True))
    assert services.claim_next(user=annotator, campaign_id=campaign.pk, now=T0).assignment is None


def test_a_comparison_is_never_leased_beyond_its_required_count(
    researcher: User, annotator: User, other_annotator: User, outsider: User
) -> None:
    campaign = _one_comparison_campaign(researcher, annotator, other_annotator, outsider, ratings_per_comparison=2)

    assert services.claim_next(user=annotator, campaign_id=campaign.pk, now=T0).assignment is not None
    assert services.claim_next(user=other_annotator, campaign_id=campaign.pk, now=T0).assignment is not None
    assert services.claim_next(user=outsider, campaign_id=campaign.pk, now=T0).assignment is None


def test_started_comparisons_are_finished_before_new_ones(
    campaign: Campaign, annotator: User, other_annotator: User
) -> None:
    rated = _rate(campaign, annotator)

    offered = services.claim_next(user=other_annotator, campaign_id=campaign.pk, now=T0).assignment

    assert offered is not None
    assert offered.comparison_id == rated.comparison_id


def test_an_expired_lease_returns_to_the_pool_and_can_no_longer_be_rated(
    researcher: User, annotator: User, other_annotator: User
) -> None:
    campaign = _one_comparison_campaign(researcher, annotator, other_annotator, ratings_per_comparison=1)
    held = services.claim_next(user=annotator, campaign_id=campaign.pk, now=T0).assignment
    assert held is not None
    assert services.claim_next(user=other_annotator, campaign_id=campaign.pk, now=T0).assignment is None

    later = T0 + timedelta(seconds=campaign.lease_seconds + 1)
    taken_over = services.claim_next(user=other_annotator, campaign_id=campaign.pk, now=later).assignment

    assert taken_over is not None
    assert taken_over.comparison_id == held.comparison_id
    held.refresh_from_db()
    assert held.state == Assignment.State.EXPIRED
    with pytest.raises(Conflict, match="expired"):
        services.submit_rating(user=annotator, assignment_id=held.pk, answer=services.RatingInput("left"), now=later)
    assert Comparison.objects.get(pk=held.comparison_id).filled == 1


def test_heartbeat_extends_a_live_lease_and_refuses_an_expired_one(campaign: Campaign, annotator: User) -> None:
    assignment = services.claim_next(user=annotator, campaign_id=campaign.pk, now=T0).assignment
    assert assignment is not None

    renewed = services.renew_lease(user=annotator, assignment_id=assignment.pk, now=T0 + timedelta(seconds=500))
    assert renewed.lease_expires_at == T0 + timedelta(seconds=500 + campaign.lease_seconds)
    assert Assignment.objects.get(pk=assignment.pk).lease_expires_at == renewed.lease_expires_at

    later = T0 + timedelta(seconds=500 + campaign.lease_seconds + 1)
    with pytest.raises(Conflict, match="expired"):
        services.renew_lease(user=annotator, assignment_id=assignment.pk, now=later)


def test_the_quota_stops_an_annotator(campaign: Campaign, annotator: User) -> None:
    campaign.quota_per_annotator = 2
    campaign.save()
    _rate(campaign, annotator)
    held = services.claim_next(user=annotator, campaign_id=campaign.pk, now=T0).assignment
    assert held is not None

    # The held lease counts against the quota: no prefetch past it.
    assert services.claim_next(user=annotator, campaign_id=campaign.pk, exclude={held.pk}, now=T0).assignment is None
    services.submit_rating(user=annotator, assignment_id=held.pk, answer=services.RatingInput("tie"), now=T0)
    assert services.claim_next(user=annotator, campaign_id=campaign.pk, now=T0).assignment is None


@pytest.mark.parametrize("state", ["paused", "closed", "draft"])
def test_only_active_campaigns_hand_out_work(campaign: Campaign, annotator: User, state: str) -> None:
    campaign.status = state
    campaign.save()

    assert services.claim_next(user=annotator, campaign_id=campaign.pk, now=T0).assignment is None


def test_a_rating_stores_the_chosen_output_and_the_shown_left_one(campaign: Campaign, annotator: User) -> None:
    assignment = services.claim_next(user=annotator, campaign_id=campaign.pk, now=T0).assignment
    assert assignment is not None
    comparison = assignment.comparison
    right_id = ({comparison.output_a_id, comparison.output_b_id} - {assignment.left_output_id}).pop()

    rating = services.submit_rating(
        user=annotator,
        assignment_id=assignment.pk,
        answer=services.RatingInput("right", rationale="clearer", time_ms=4200),
        now=T0,
    ).rating

    assert (rating.verdict, rating.winner_id, rating.left_output_id) == ("win", right_id, assignment.left_output_id)
    assert (rating.source, rating.rater_kind, rating.assignment_id) == ("annotator", "human", assignment.pk)
    assert (rating.rationale, rating.time_ms) == ("clearer", 4200)


@pytest.mark.parametrize(("choice", "verdict"), [("tie", "tie"), ("both_bad", "both_bad")])
def test_tie_and_both_bad_have_no_winner(campaign: Campaign, annotator: User, choice: str, verdict: str) -> None:
    rating = _rate(campaign, annotator, choice)

    assert (rating.verdict, rating.winner_id) == (verdict, None)


@pytest.mark.parametrize(
    ("fields", "answer", "field"),
    [
        ({"label_scheme": "binary"}, {"choice": "tie"}, "choice"),
        ({"label_scheme": "three_way"}, {"choice": "both_bad"}, "choice"),
        ({"require_rationale": True}, {"choice": "left", "rationale": "  "}, "rationale"),
        ({"strength_levels": 0}, {"choice": "left", "strength": 1}, "strength"),
        ({"strength_levels": 3}, {"choice": "left", "strength": 4}, "strength"),
        ({"strength_levels": 3}, {"choice": "tie", "strength": 1}, "strength"),
    ],
)
def test_answers_outside_the_campaigns_scheme_are_refused_and_nothing_is_written(
    campaign: Campaign, annotator: User, fields: dict[str, Any], answer: dict[str, Any], field: str
) -> None:
    Campaign.objects.filter(pk=campaign.pk).update(**fields)
    campaign.refresh_from_db()
    assignment = services.claim_next(user=annotator, campaign_id=campaign.pk, now=T0).assignment
    assert assignment is not None

    with pytest.raises(DomainError) as error:
        services.submit_rating(
            user=annotator, assignment_id=assignment.pk, answer=services.RatingInput(**answer), now=T0
        )

    assert error.value.field == field
    assert not Rating.objects.exists()
    assignment.refresh_from_db()
    assert assignment.state == Assignment.State.LEASED


def test_a_strength_within_the_campaigns_levels_is_stored(campaign: Campaign, annotator: User) -> None:
    Campaign.objects.filter(pk=campaign.pk).update(strength_levels=3)
    campaign.refresh_from_db()

    assert _rate(campaign, annotator, "left", strength=3).strength == 3


def test_a_repeated_request_with_the_same_key_returns_the_stored_rating(campaign: Campaign, annotator: User) -> None:
    assignment = services.claim_next(user=annotator, campaign_id=campaign.pk, now=T0).assignment
    assert assignment is not None
    answer = services.RatingInput("left", idempotency_key="k-1")

    first = services.submit_rating(user=annotator, assignment_id=assignment.pk, answer=answer, now=T0)
    again = services.submit_rating(
        user=annotator, assignment_id=assignment.pk, answer=answer, now=T0 + timedelta(seconds=3)
    )

    assert (first.created, again.created) == (True, False)
    assert again.rating.pk == first.rating.pk
    assert Rating.objects.count() == 1
    with pytest.raises(Conflict, match="already rated"):
        services.submit_rating(
            user=annotator, assignment_id=assignment.pk, answer=services.RatingInput("left", idempotency_key="k-2")
        )


def test_undo_within_15_seconds_deletes_the_rating_and_leases_the_comparison_again(
    campaign: Campaign, annotator: User
) -> None:
    rating = _rate(campaign, annotator)
    assignment = Assignment.objects.get(rating=rating)

    undone = services.undo_rating(assignment=assignment, now=T0 + timedelta(seconds=14)).assignment
    assert undone is not None

    assert not Rating.objects.exists()
    assert undone.state == Assignment.State.LEASED
    assert undone.lease_expires_at == T0 + timedelta(seconds=14 + campaign.lease_seconds)
    assert AnnotatorStatus.objects.get(campaign=campaign).rated_count == 0
    again = services.claim_next(user=annotator, campaign_id=campaign.pk, now=T0 + timedelta(seconds=15)).assignment
    assert again is not None
    assert again.pk == assignment.pk


def test_undo_after_15_seconds_is_refused(campaign: Campaign, annotator: User) -> None:
    rating = _rate(campaign, annotator)
    assignment = Assignment.objects.get(rating=rating)

    with pytest.raises(Conflict, match="15 seconds"):
        services.undo_rating(assignment=assignment, now=T0 + timedelta(seconds=16))
    assert Rating.objects.count() == 1


def test_skip_frees_the_slot_and_the_comparison_is_not_offered_again(
    researcher: User, annotator: User, other_annotator: User
) -> None:
    campaign = _one_comparison_campaign(researcher, annotator, other_annotator, ratings_per_comparison=1)
    assignment = services.claim_next(user=annotator, campaign_id=campaign.pk, now=T0).assignment
    assert assignment is not None

    services.skip_assignment(assignment=assignment, now=T0)

    assert services.claim_next(user=annotator, campaign_id=campaign.pk, now=T0).assignment is None
    assert services.claim_next(user=other_annotator, campaign_id=campaign.pk, now=T0).assignment is not None


def test_members_of_the_annotator_group_may_annotate(campaign: Campaign, outsider: User) -> None:
    group = Group.objects.create(name="crowd")
    outsider.groups.add(group)
    campaign.annotator_group = group
    campaign.save()

    assert services.claim_next(user=outsider, campaign_id=campaign.pk, now=T0).assignment is not None


def test_each_model_is_shown_on_the_left_about_half_the_time(researcher: User, annotator: User) -> None:
    campaign = factories.CampaignFactory.create(owner=researcher, status="active", ratings_per_comparison=1)
    campaign.annotators.add(annotator)
    factories.populate_campaign(campaign, prompts=40, models=["m-one", "m-two"])

    ratings = [_rate(campaign, annotator) for _ in range(40)]
    lefts = [r.left_output.model_name if r.left_output else None for r in ratings]

    assert 8 <= lefts.count("m-one") <= 32  # binomial(40, 1/2): outside this range with p < 1e-4


def _gold_campaign(researcher: User, annotator: User, golds: int) -> Campaign:
    campaign = factories.CampaignFactory.create(
        owner=researcher, status="active", gold_rate=1.0, gold_min_answered=3, gold_min_accuracy=0.5
    )
    campaign.annotators.add(annotator)
    for comparison in factories.populate_campaign(campaign, prompts=golds + 2, models=["m-one", "m-two"])[:golds]:
        comparison.gold_verdict = "win"
        comparison.gold_winner = comparison.output_a
        comparison.save()
    return campaign


def _answer_gold(campaign: Campaign, annotator: User, *, correct: bool) -> None:
    assignment = services.claim_next(user=annotator, campaign_id=campaign.pk, now=T0).assignment
    assert assignment is not None
    assert assignment.comparison.is_gold
    shows_gold_left = assignment.left_output_id == assignment.comparison.gold_winner_id
    choice = "left" if shows_gold_left == correct else "right"
    services.submit_rating(user=annotator, assignment_id=assignment.pk, answer=services.RatingInput(choice), now=T0)


def test_gold_answers_feed_the_annotators_accuracy(researcher: User, annotator: User) -> None:
    campaign = _gold_campaign(researcher, annotator, golds=3)

    _answer_gold(campaign, annotator, correct=True)
    _answer_gold(campaign, annotator, correct=False)

    status = AnnotatorStatus.objects.get(campaign=campaign)
    assert (status.gold_answered, status.gold_correct, status.paused) == (2, 1, False)


def test_an_annotator_below_the_gold_threshold_is_paused_with_the_reason(researcher: User, annotator: User) -> None:
    campaign = _gold_campaign(researcher, annotator, golds=4)
    _answer_gold(campaign, annotator, correct=True)
    _answer_gold(campaign, annotator, correct=False)
    held = services.claim_next(user=annotator, campaign_id=campaign.pk, now=T0).assignment
    assert held is not None
    prefetched = services.claim_next(user=annotator, campaign_id=campaign.pk, exclude={held.pk}, now=T0).assignment
    assert prefetched is not None

    services.submit_rating(user=annotator, assignment_id=held.pk, answer=services.RatingInput("tie"), now=T0)

    status = AnnotatorStatus.objects.get(campaign=campaign)
    assert status.paused
    assert "1/3" in status.paused_reason
    assert "50%" in status.paused_reason
    assert services.claim_next(user=annotator, campaign_id=campaign.pk, now=T0).assignment is None
    prefetched.refresh_from_db()
    assert prefetched.state == Assignment.State.EXPIRED
    assert Comparison.objects.get(pk=prefetched.comparison_id).filled == 0


def test_gold_is_only_mixed_in_never_served_once_the_regular_work_is_done(researcher: User, annotator: User) -> None:
    campaign = _gold_campaign(researcher, annotator, golds=3)
    Campaign.objects.filter(pk=campaign.pk).update(gold_rate=0.0)
    campaign.refresh_from_db()

    served = [_rate(campaign, annotator).comparison for _ in range(2)]

    assert [comparison.is_gold for comparison in served] == [False, False]
    assert services.claim_next(user=annotator, campaign_id=campaign.pk, now=T0).assignment is None


def test_the_researcher_sees_why_an_annotator_was_paused_in_the_admin(
    researcher: User, annotator: User, client: Any
) -> None:
    campaign = _gold_campaign(researcher, annotator, golds=3)
    for _ in range(3):
        _answer_gold(campaign, annotator, correct=False)
    researcher.user_permissions.add(Permission.objects.get(codename="view_annotatorstatus"))
    client.force_login(researcher)

    page = client.get("/admin/annotation/annotatorstatus/").content.decode()

    assert "alice" in page
    assert "Gold accuracy 0/3 (0%) is below the campaign&#x27;s minimum of 50%" in page


def test_the_database_refuses_more_slots_than_required_on_a_comparison(campaign: Campaign) -> None:
    comparison = campaign.comparisons.first()
    assert comparison is not None

    Comparison.objects.filter(pk=comparison.pk).update(filled=campaign.ratings_per_comparison, last_claimed_by=1)
    with pytest.raises(IntegrityError), transaction.atomic():
        Comparison.objects.filter(pk=comparison.pk).update(filled=campaign.ratings_per_comparison + 1)


def test_the_database_refuses_a_filled_slot_nobody_was_given(campaign: Campaign) -> None:
    comparison = campaign.comparisons.first()
    assert comparison is not None

    with pytest.raises(IntegrityError), transaction.atomic():
        Comparison.objects.filter(pk=comparison.pk).update(filled=1)  # the claim would never find it again


def test_a_rating_and_its_undo_each_schedule_a_leaderboard_refresh_after_commit(
    campaign: Campaign, annotator: User, django_capture_on_commit_callbacks: Any
) -> None:
    cache.clear()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        rating = _rate(campaign, annotator)
    assert len(callbacks) == 1

    cache.clear()
    assert rating.assignment is not None
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.undo_rating(assignment=rating.assignment, now=T0 + timedelta(seconds=5))
    assert len(callbacks) == 1


def test_an_annotator_resumed_while_below_the_gold_bar_is_paused_again_by_the_next_rating(
    researcher: User, annotator: User
) -> None:
    campaign = _gold_campaign(researcher, annotator, golds=3)
    for _ in range(3):
        _answer_gold(campaign, annotator, correct=False)
    AnnotatorStatus.objects.filter(campaign=campaign).update(paused=False, paused_reason="", paused_at=None)
    Campaign.objects.filter(pk=campaign.pk).update(gold_rate=0.0)

    regular = _rate(campaign, annotator)

    assert not regular.comparison.is_gold
    status = AnnotatorStatus.objects.get(campaign=campaign)
    assert (status.paused, status.rated_count) == (True, 4)


def test_a_rating_recreates_a_missing_standing(campaign: Campaign, annotator: User) -> None:
    assignment = services.claim_next(user=annotator, campaign_id=campaign.pk, now=T0).assignment
    assert assignment is not None
    AnnotatorStatus.objects.all().delete()

    result = services.submit_rating(
        user=annotator, assignment_id=assignment.pk, answer=services.RatingInput("left"), now=T0
    )

    assert (result.created, result.progress.done) == (True, 1)
    assert AnnotatorStatus.objects.get(campaign=campaign).rated_count == 1


def test_someone_elses_assignment_cannot_be_rated(campaign: Campaign, annotator: User, other_annotator: User) -> None:
    assignment = services.claim_next(user=annotator, campaign_id=campaign.pk, now=T0).assignment
    assert assignment is not None

    with pytest.raises(NotFound):
        services.submit_rating(user=other_annotator, assignment_id=assignment.pk, answer=services.RatingInput("left"))
    assert not Rating.objects.exists()


def test_a_claim_is_refused_to_someone_who_does_not_annotate_the_campaign(campaign: Campaign, outsider: User) -> None:
    with pytest.raises(NotFound):
        services.claim_next(user=outsider, campaign_id=campaign.pk, now=T0)
    assert not Rater.objects.filter(user=outsider).exists()


def test_the_benchmarks_naive_claim_leases_through_the_same_workflow(
    campaign: Campaign, annotator: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVALPLATFORM_CLAIM_FUNCTION", "bench.bench_assignment:claim_naive")
    monkeypatch.setattr(services, "_claim_function", services._load_claim_function())

    lease = services.claim_next(user=annotator, campaign_id=campaign.pk, now=T0)

    assert lease.shown is not None
    assert lease.shown.prompt.text.startswith("Question")
    assert lease.assignment is not None
    assert Comparison.objects.get(pk=lease.assignment.comparison_id).filled == 1


# ---- leases end with the right to use them (issue 12 item 8) ------------------------------------------------------


def _remove_directly(campaign: Campaign, user: User) -> None:
    campaign.annotators.remove(user)


def _remove_from_the_group(campaign: Campaign, user: User) -> None:
    user.groups.clear()


def _pause_campaign(campaign: Campaign, user: User) -> None:
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.PAUSED)


def _close_campaign(campaign: Campaign, user: User) -> None:
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.CLOSED)


def _pause_annotator(campaign: Campaign, user: User) -> None:
    # As the admin's action does: the standing only, leases left as they are.
    AnnotatorStatus.objects.filter(campaign=campaign).update(paused=True, paused_reason="by hand", paused_at=T0)


REVOCATIONS = [
    pytest.param(_remove_directly, NotFound, "not_found", id="removed"),
    pytest.param(_remove_from_the_group, NotFound, "not_found", id="removed-from-group"),
    pytest.param(_pause_campaign, services.CampaignNotActive, "campaign_not_active", id="campaign-paused"),
    pytest.param(_close_campaign, services.CampaignNotActive, "campaign_not_active", id="campaign-closed"),
    pytest.param(_pause_annotator, services.AnnotatorPaused, "annotator_paused", id="annotator-paused"),
]


def _annotated_campaign(researcher: User, annotator: User, revoke: Any) -> Campaign:
    """Return an active campaign `annotator` annotates: through its group when `revoke` removes them from it."""
    if revoke is not _remove_from_the_group:
        return _one_comparison_campaign(researcher, annotator)
    group = Group.objects.create(name="crowd")
    annotator.groups.add(group)
    return _one_comparison_campaign(researcher, annotator_group=group)


@pytest.mark.parametrize(("revoke", "error", "code"), REVOCATIONS)
def test_a_lease_cannot_be_renewed_once_the_right_to_annotate_ends(
    researcher: User, annotator: User, revoke: Any, error: type[DomainError], code: str
) -> None:
    campaign = _annotated_campaign(researcher, annotator, revoke)
    assignment = services.claim_next(user=annotator, campaign_id=campaign.pk, now=T0).assignment
    assert assignment is not None
    revoke(campaign, annotator)

    with pytest.raises(error) as raised:
        services.renew_lease(user=annotator, assignment_id=assignment.pk, now=T0 + timedelta(seconds=10))

    assert raised.value.code == code
    assert Assignment.objects.get(pk=assignment.pk).lease_expires_at == assignment.lease_expires_at


@pytest.mark.parametrize(("revoke", "error", "code"), REVOCATIONS)
def test_a_lease_cannot_be_rated_once_the_right_to_annotate_ends(
    researcher: User, annotator: User, revoke: Any, error: type[DomainError], code: str
) -> None:
    campaign = _annotated_campaign(researcher, annotator, revoke)
    assignment = services.claim_next(user=annotator, campaign_id=campaign.pk, now=T0).assignment
    assert assignment is not None
    revoke(campaign, annotator)

    with pytest.raises(error) as raised:
        services.submit_rating(user=annotator, assignment_id=assignment.pk, answer=services.RatingInput("left"), now=T0)

    assert raised.value.code == code
    assert not Rating.objects.exists()
    assert Assignment.objects.get(pk=assignment.pk).state == Assignment.State.LEASED
    assert AnnotatorStatus.objects.get(campaign=campaign).rated_count == 0


@pytest.mark.parametrize(("revoke", "error", "code"), REVOCATIONS)
def test_a_rating_cannot_be_undone_once_the_right_to_annotate_ends(
    researcher: User, annotator: User, revoke: Any, error: type[DomainError], code: str
) -> None:
    campaign = _annotated_campaign(researcher, annotator, revoke)
    rating = _rate(campaign, annotator)
    revoke(campaign, annotator)
    assignment = Assignment.objects.select_related("comparison__campaign", "rater").get(rating=rating)

    with pytest.raises(error) as raised:
        services.undo_rating(assignment=assignment, now=T0 + timedelta(seconds=5))

    assert raised.value.code == code
    assert Rating.objects.filter(pk=rating.pk).exists()
    assert Assignment.objects.get(pk=assignment.pk).state == Assignment.State.RATED


@pytest.mark.parametrize(("revoke", "error", "code"), REVOCATIONS)
def test_a_lease_cannot_be_skipped_once_the_right_to_annotate_ends(
    researcher: User, annotator: User, revoke: Any, error: type[DomainError], code: str
) -> None:
    campaign = _annotated_campaign(researcher, annotator, revoke)
    assignment = services.claim_next(user=annotator, campaign_id=campaign.pk, now=T0).assignment
    assert assignment is not None
    revoke(campaign, annotator)
    assignment = Assignment.objects.select_related("comparison__campaign", "rater").get(pk=assignment.pk)

    with pytest.raises(error) as raised:
        services.skip_assignment(assignment=assignment, now=T0)

    assert raised.value.code == code
    assert Assignment.objects.get(pk=assignment.pk).state == Assignment.State.LEASED


def test_a_rating_accepted_before_the_campaign_closed_is_still_replayed(campaign: Campaign, annotator: User) -> None:
    assignment = services.claim_next(user=annotator, campaign_id=campaign.pk, now=T0).assignment
    assert assignment is not None
    answer = services.RatingInput("left", idempotency_key="k1")
    first = services.submit_rating(user=annotator, assignment_id=assignment.pk, answer=answer, now=T0)
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.CLOSED)

    retry = services.submit_rating(user=annotator, assignment_id=assignment.pk, answer=answer, now=T0)

    assert (retry.created, retry.rating_id) == (False, first.rating_id)
    other = services.RatingInput("left", idempotency_key="k2")
    with pytest.raises(services.CampaignNotActive):
        services.submit_rating(user=annotator, assignment_id=assignment.pk, answer=other, now=T0)


def test_leases_work_again_once_the_campaign_is_resumed(campaign: Campaign, annotator: User) -> None:
    assignment = services.claim_next(user=annotator, campaign_id=campaign.pk, now=T0).assignment
    assert assignment is not None
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.PAUSED)
    with pytest.raises(services.CampaignNotActive):
        services.renew_lease(user=annotator, assignment_id=assignment.pk, now=T0)
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.ACTIVE)

    services.renew_lease(user=annotator, assignment_id=assignment.pk, now=T0)
    result = services.submit_rating(
        user=annotator, assignment_id=assignment.pk, answer=services.RatingInput("tie"), now=T0
    )

    assert result.created


def test_a_draft_campaign_is_said_to_be_not_open_yet(campaign: Campaign, annotator: User) -> None:
    assignment = services.claim_next(user=annotator, campaign_id=campaign.pk, now=T0).assignment
    assert assignment is not None
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.DRAFT)

    with pytest.raises(services.CampaignNotActive, match="This campaign is not open yet"):
        services.renew_lease(user=annotator, assignment_id=assignment.pk, now=T0)
