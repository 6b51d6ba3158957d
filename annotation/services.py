"""The annotator's workflows: lease the next comparison, renew, rate, skip, undo.

The rules live here; annotation.engine holds the statements (one transaction of three statements for `next`,
two for a rating). Locks are taken in one order (annotator status -> assignment -> comparison) so the engine
cannot deadlock with itself. Every function takes `now` so tests can move the clock.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import random
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from annotation import engine
from annotation.access import User
from annotation.engine import ClaimRequest, Shown
from annotation.models import (
    CHOICES_BY_SCHEME,
    AnnotatorStatus,
    Assignment,
    Campaign,
    Comparison,
    Rater,
    Rating,
    Verdict,
)
from annotation.selectors import Progress
from evalplatform.exceptions import Conflict, DomainError, NotFound
from results.tasks import schedule_refresh

UNDO_WINDOW = timedelta(seconds=15)
# The page shows one comparison, prefetches the next, and may have a rating of a third still in flight.
MAX_LIVE_LEASES = 3
MAX_RATIONALE_CHARS = 10_000
MAX_TIME_MS = 24 * 3600 * 1000
# A claim that found only comparisons other claims hold locked tries again this long, this often (see _claim).
CLAIM_RETRY_SECONDS = 1.0
CLAIM_RETRY_PAUSE_SECONDS = 0.005

_rng = random.Random()


class CampaignNotActive(Conflict):
    """The campaign is paused, closed or back to draft: it takes no ratings, renewals or undos."""

    code = "campaign_not_active"


class AnnotatorPaused(Conflict):
    """The annotator is paused in the campaign (gold checks, or by a researcher)."""

    code = "annotator_paused"


def check_may_work(*, annotates: bool, campaign_status: str, paused: bool) -> None:
    """Raise as `next` refuses: NotFound if the user no longer annotates the campaign, Conflict if it is not
    active (CampaignNotActive) or they are paused in it (AnnotatorPaused).

    `next` answers the last two with 204 (nothing to show); heartbeat, rating, skip and undo act on a lease the
    annotator already holds, so they answer 409 with the reason.
    """
    if not annotates:
        raise NotFound("No such assignment.")
    if campaign_status != Campaign.Status.ACTIVE:
        state = "not open yet" if campaign_status == Campaign.Status.DRAFT else campaign_status
        raise CampaignNotActive(f"This campaign is {state} and takes no ratings now.")
    if paused:
        raise AnnotatorPaused("You are paused in this campaign; ratings can no longer be given or changed.")


def _load_claim_function() -> Callable[[ClaimRequest], Shown | None]:
    """Return the claim function; EVALPLATFORM_CLAIM_FUNCTION=module:name swaps it (the benchmark's baseline)."""
    dotted = os.environ.get("EVALPLATFORM_CLAIM_FUNCTION", "")
    if not dotted:
        return engine.claim_comparison
    module, _, name = dotted.partition(":")
    function: Callable[[ClaimRequest], Shown | None] = getattr(importlib.import_module(module), name)
    return function


_claim_function = _load_claim_function()


def rater_for_user(user: AbstractBaseUser) -> Rater:
    """Return the user's human Rater, creating it (named after the username) on first use."""
    rater = Rater.objects.filter(user_id=user.pk).first()
    if rater is not None:
        return rater
    name = user.get_username()
    if Rater.objects.filter(name=name).exists():
        name = f"{name} (user {user.pk})"
    rater, _ = Rater.objects.get_or_create(user_id=user.pk, defaults={"kind": Rater.Kind.HUMAN, "name": name})
    return rater


def _locked_status(*, campaign: Campaign, rater: Rater) -> AnnotatorStatus:
    """Return the rater's status row locked for this transaction: it serialises one annotator's writes."""
    status, _ = AnnotatorStatus.objects.get_or_create(campaign=campaign, rater=rater)
    status = AnnotatorStatus.objects.select_for_update().get(pk=status.pk)
    status.campaign = campaign
    status.rater = rater
    return status


@dataclass
class Lease:
    """What an annotator is shown of their leased comparison, and their progress; `shown` is None when done."""

    shown: Shown | None
    progress: Progress | None

    @functools.cached_property
    def assignment(self) -> Assignment | None:
        """Load the leased Assignment (one query), for callers that want the model rather than what is shown."""
        if self.shown is None:
            return None
        return Assignment.objects.select_related("comparison").get(pk=self.shown.assignment_id)


def claim_next(
    *, user: AbstractBaseUser, campaign_id: int, exclude: Collection[int] = (), now: datetime | None = None
) -> Lease:
    """Return the annotator's current lease (renewed) or lease them a new comparison; nothing when done.

    NotFound if the user does not annotate the campaign; Conflict if they already hold MAX_LIVE_LEASES that
    `exclude` lists (the assignment ids the client already shows: the page prefetches the next comparison).
    """
    now = now or timezone.now()
    with transaction.atomic():
        context = engine.lock_next_context(user_id=user.pk, campaign_id=campaign_id)
        if context is not None and context.status_id is None and context.status == Campaign.Status.ACTIVE:
            _first_visit(user=user, campaign_id=campaign_id)
            context = engine.lock_next_context(user_id=user.pk, campaign_id=campaign_id)
        if context is None:
            raise NotFound("No such campaign.")
        if context.status != Campaign.Status.ACTIVE:
            return Lease(shown=None, progress=None)
        progress = Progress.of(done=context.rated_count, quota=context.quota, paused=context.paused)
        if context.paused:
            return Lease(shown=None, progress=progress)
        assert context.rater_id is not None
        held = engine.live_lease_ids(rater_id=context.rater_id, campaign_id=campaign_id, now=now)
        expires = now + timedelta(seconds=context.lease_seconds)
        for assignment_id in held:
            if assignment_id not in exclude:
                return Lease(
                    shown=engine.renew(assignment_id=assignment_id, expires=expires, now=now), progress=progress
                )
        too_many = len(held) >= MAX_LIVE_LEASES
        if too_many or (context.quota is not None and context.rated_count + len(held) >= context.quota):
            shown = None
        else:
            shown = _claim(context, campaign_id=campaign_id, now=now, expires=expires)
    # Raised after the commit: the expired leases returned to the pool on the way stay returned.
    if too_many:
        raise Conflict(f"You already hold {len(held)} comparisons; rate or skip one first.")
    return Lease(shown=shown, progress=progress)


def _first_visit(*, user: AbstractBaseUser, campaign_id: int) -> None:
    rater = rater_for_user(user)
    AnnotatorStatus.objects.get_or_create(campaign_id=campaign_id, rater=rater)


def _claim(context: engine.NextContext, *, campaign_id: int, now: datetime, expires: datetime) -> Shown | None:
    """Lease a comparison to the annotator; None when none is left for them.

    The claim skips comparisons other claims hold locked (SKIP LOCKED), and such a claim takes one slot, so the
    comparison may still have one for this annotator once it commits: while one does, the claim is tried again
    (a few milliseconds), or the annotator would be told there is nothing left while work remains.
    """
    assert context.rater_id is not None
    deadline = time.monotonic() + CLAIM_RETRY_SECONDS
    while True:
        shown = _claim_once(context, campaign_id=campaign_id, now=now, expires=expires)
        if shown is not None or time.monotonic() >= deadline:
            return shown
        if not engine.open_to_rater(campaign_id=campaign_id, rater_id=context.rater_id, required=context.required):
            return None
        time.sleep(CLAIM_RETRY_PAUSE_SECONDS)


def _claim_once(context: engine.NextContext, *, campaign_id: int, now: datetime, expires: datetime) -> Shown | None:
    assert context.rater_id is not None
    gold_first = context.gold_rate > 0 and _rng.random() < context.gold_rate
    # Gold is only mixed in: when the regular work is done, the annotator is done.
    for gold in (True, False) if gold_first else (False,):
        request = ClaimRequest(
            campaign_id=campaign_id,
            rater_id=context.rater_id,
            required=context.required,
            gold=gold,
            now=now,
            expires=expires,
            left_is_a=_rng.random() < 0.5,
            start=_rng.random(),
        )
        shown = _claim_function(request)
        if shown is not None:
            return shown
    return None


@dataclass(frozen=True)
class Renewed:
    assignment_id: int
    lease_expires_at: datetime


def renew_lease(*, user: User, assignment_id: int, now: datetime | None = None) -> Renewed:
    """Extend the user's live lease by the campaign's lease time (one statement).

    Refused as a rating would be: NotFound if the assignment is not theirs or they no longer annotate its
    campaign; Conflict if the campaign is not active, they are paused, or the lease has expired or ended.
    """
    if user.pk is None:
        raise NotFound("No such assignment.")
    now = now or timezone.now()
    renewed = engine.renew_own(user_id=user.pk, assignment_id=assignment_id, now=now)
    if renewed is not None:
        return Renewed(*renewed)
    standing = engine.standing(user_id=user.pk, assignment_id=assignment_id, now=now)
    if standing is None:
        raise NotFound("No such assignment.")
    check_may_work(annotates=standing.annotates, campaign_status=standing.campaign_status, paused=standing.paused)
    raise Conflict("This lease has expired or the comparison is no longer yours to rate.")


@dataclass(frozen=True)
class RatingInput:
    """An annotator's answer as sent by the page or the API."""

    choice: str
    strength: int | None = None
    rationale: str = ""
    time_ms: int | None = None
    idempotency_key: str = ""


@dataclass(frozen=True)
class RatingScheme:
    """What a campaign accepts as an answer."""

    label_scheme: str
    strength_levels: int
    require_rationale: bool

    @property
    def choices(self) -> list[str]:
        return CHOICES_BY_SCHEME[self.label_scheme]


def check_rating_input(*, scheme: RatingScheme, answer: RatingInput) -> None:
    """Raise DomainError naming the field when the answer does not fit the campaign's scheme."""
    if answer.choice not in scheme.choices:
        allowed = ", ".join(scheme.choices)
        raise DomainError(f"'{answer.choice}' is not a choice in this campaign (allowed: {allowed}).", field="choice")
    if answer.strength is not None:
        if scheme.strength_levels == 0:
            raise DomainError("This campaign does not use strength levels.", field="strength")
        if answer.choice not in ("left", "right"):
            raise DomainError("Strength applies only when one side is better.", field="strength")
        if not 1 <= answer.strength <= scheme.strength_levels:
            raise DomainError(f"Strength must be between 1 and {scheme.strength_levels}.", field="strength")
    if scheme.require_rationale and not answer.rationale.strip():
        raise DomainError("This campaign requires a rationale.", field="rationale")
    if len(answer.rationale) > MAX_RATIONALE_CHARS:
        raise DomainError(f"The rationale is longer than {MAX_RATIONALE_CHARS} characters.", field="rationale")
    if answer.time_ms is not None and not 0 <= answer.time_ms <= MAX_TIME_MS:
        raise DomainError(f"time_ms must be between 0 and {MAX_TIME_MS}.", field="time_ms")


@dataclass
class RatingResult:
    """A stored rating as its annotator sees it (sides, not outputs); created is False for a replayed request."""

    assignment_id: int
    rating_id: int
    choice: str
    strength: int | None
    time_ms: int | None
    created_at: datetime
    created: bool
    progress: Progress

    @functools.cached_property
    def rating(self) -> Rating:
        """Load the stored Rating (one query)."""
        return Rating.objects.get(pk=self.rating_id)


def submit_rating(
    *, user: AbstractBaseUser, assignment_id: int, answer: RatingInput, now: datetime | None = None
) -> RatingResult:
    """Record the annotator's rating of their leased assignment; NotFound if the assignment is not theirs.

    A repeat of an accepted request with the same idempotency key returns the stored rating (created=False);
    any other second rating, or a rating after the lease expired, is a Conflict.
    """
    now = now or timezone.now()
    with transaction.atomic():
        context = engine.lock_rating_context(user_id=user.pk, assignment_id=assignment_id)
        if context is None:
            raise NotFound("No such assignment.")
        try:
            check_may_work(
                annotates=context.annotates, campaign_status=context.campaign_status, paused=bool(context.paused)
            )
        except Conflict:
            if _is_replay(context, answer):  # accepted before the campaign stopped or the annotator was paused
                return _replayed_rating(context, answer)
            raise
        scheme = RatingScheme(context.label_scheme, context.strength_levels, context.require_rationale)
        check_rating_input(scheme=scheme, answer=answer)
        if context.status_id is None:  # every claim creates the standing; only a deleted one is missing
            AnnotatorStatus.objects.get_or_create(campaign_id=context.campaign_id, rater_id=context.rater_id)
            context = engine.lock_rating_context(user_id=user.pk, assignment_id=assignment_id)
            assert context is not None
            assert context.status_id is not None
        winner_id = {"left": context.left_output_id, "right": context.right_output_id}.get(answer.choice)
        verdict = Verdict.WIN if winner_id is not None else Verdict(answer.choice)
        gold = context.gold_verdict is not None
        correct = (
            gold and verdict == context.gold_verdict and (verdict != Verdict.WIN or winner_id == context.gold_winner_id)
        )
        recorded = engine.record_rating(
            {
                "assignment": context.assignment_id,
                "comparison": context.comparison_id,
                "rater": context.rater_id,
                "rater_kind": context.rater_kind,
                "verdict": verdict.value,
                "winner": winner_id,
                "left": context.left_output_id,
                "strength": answer.strength,
                "rationale": answer.rationale,
                "time_ms": answer.time_ms,
                "metadata": json.dumps({"idempotency_key": answer.idempotency_key} if answer.idempotency_key else {}),
                "gold": int(gold),
                "correct": int(correct),
                "status": context.status_id,
                "now": now,
            }
        )
        if recorded is None:
            return _replayed_rating(context, answer)
        # Checked after every rating, gold or not: an annotator resumed while still below the bar pauses again.
        paused = _pause_if_below_gold_threshold(context, recorded=recorded, now=now)
        schedule_refresh(context.campaign_id)
    return RatingResult(
        assignment_id=context.assignment_id,
        rating_id=recorded.rating_id,
        choice=answer.choice,
        strength=answer.strength,
        time_ms=answer.time_ms,
        created_at=now,
        created=True,
        progress=Progress.of(done=recorded.rated_count, quota=context.quota, paused=paused or bool(context.paused)),
    )


def choice_of(rating: Rating) -> str:
    """Return the side (or tie / both_bad) a rating chose, as its annotator saw it."""
    if rating.verdict != Verdict.WIN:
        return rating.verdict
    return "left" if rating.winner_id == rating.left_output_id else "right"


def _is_replay(context: engine.RatingContext, answer: RatingInput) -> bool:
    if not answer.idempotency_key:
        return False
    existing = Rating.objects.filter(assignment_id=context.assignment_id).first()
    return existing is not None and existing.metadata.get("idempotency_key") == answer.idempotency_key


def _replayed_rating(context: engine.RatingContext, answer: RatingInput) -> RatingResult:
    existing = Rating.objects.filter(assignment_id=context.assignment_id).first()
    if existing is None:
        raise Conflict("The lease on this comparison has expired; fetch the next one.")
    if not answer.idempotency_key or existing.metadata.get("idempotency_key") != answer.idempotency_key:
        raise Conflict("This comparison is already rated.")
    return RatingResult(
        assignment_id=context.assignment_id,
        rating_id=existing.pk,
        choice=choice_of(existing),
        strength=existing.strength,
        time_ms=existing.time_ms,
        created_at=existing.created_at,
        created=False,
        progress=Progress.of(done=context.rated_count or 0, quota=context.quota, paused=bool(context.paused)),
    )


def is_gold_correct(comparison: Comparison, rating: Rating) -> bool:
    """Return whether a rating of a gold comparison agrees with its known answer."""
    if rating.verdict != comparison.gold_verdict:
        return False
    return rating.verdict != Verdict.WIN or rating.winner_id == comparison.gold_winner_id


def gold_pause_reason(*, answered: int, correct: int, min_answered: int, min_accuracy: float) -> str | None:
    """Return why an annotator with these gold answers is paused, or None while they may go on."""
    if not answered or answered < min_answered or correct / answered >= min_accuracy:
        return None
    return (
        f"Gold accuracy {correct}/{answered} ({correct / answered:.0%}) is below the campaign's "
        f"minimum of {min_accuracy:.0%} after {answered} gold answers."
    )


def _pause_if_below_gold_threshold(
    context: engine.RatingContext, *, recorded: engine.RecordedRating, now: datetime
) -> bool:
    if context.paused:
        return False
    reason = gold_pause_reason(
        answered=recorded.gold_answered,
        correct=recorded.gold_correct,
        min_answered=context.gold_min_answered,
        min_accuracy=context.gold_min_accuracy,
    )
    if reason is None:
        return False
    assert context.status_id is not None
    AnnotatorStatus.objects.filter(pk=context.status_id).update(
        paused=True, paused_at=now, paused_reason=reason, updated_at=now
    )
    for assignment_id in engine.live_lease_ids(rater_id=context.rater_id, campaign_id=context.campaign_id, now=now):
        engine.end_lease(assignment_id=assignment_id, state=Assignment.State.EXPIRED, now=now)
    return True


def _check_standing(assignment: Assignment, *, now: datetime) -> None:
    """Raise as check_may_work when the assignment's annotator may no longer act on it."""
    assert assignment.rater.user_id is not None
    standing = engine.standing(user_id=assignment.rater.user_id, assignment_id=assignment.pk, now=now)
    if standing is None:
        raise NotFound("No such assignment.")
    check_may_work(annotates=standing.annotates, campaign_status=standing.campaign_status, paused=standing.paused)


@transaction.atomic
def skip_assignment(*, assignment: Assignment, now: datetime | None = None) -> None:
    """Give the comparison back to the pool; this annotator will not be offered it again.

    Refused as a rating would be (check_may_work): the lease then runs out by itself.
    """
    now = now or timezone.now()
    _check_standing(assignment, now=now)
    if not engine.end_lease(assignment_id=assignment.pk, state=Assignment.State.SKIPPED, now=now):
        raise Conflict("This comparison is no longer leased to you.")


@transaction.atomic
def undo_rating(*, assignment: Assignment, now: datetime | None = None) -> Lease:
    """Delete the annotator's rating given less than 15 seconds ago and lease the comparison to them again.

    Refused as a rating would be (check_may_work) once they no longer annotate the campaign, it is not active or
    they are paused in it: the texts are not shown again.
    """
    now = now or timezone.now()
    comparison = assignment.comparison
    campaign = comparison.campaign
    status = _locked_status(campaign=campaign, rater=assignment.rater)
    _check_standing(assignment, now=now)  # after the lock: it reads the standing as the lock left it
    rating = Rating.objects.select_for_update().filter(assignment=assignment).first()
    if rating is None:
        raise Conflict("There is no rating to undo.")
    if now - rating.created_at > UNDO_WINDOW:
        raise Conflict(f"A rating can only be undone within {UNDO_WINDOW.seconds} seconds.")
    status.rated_count -= 1
    if comparison.is_gold:
        status.gold_answered -= 1
        status.gold_correct -= int(is_gold_correct(comparison, rating))
    status.save()
    rating.delete()
    schedule_refresh(campaign.pk)
    Assignment.objects.filter(pk=assignment.pk).update(
        state=Assignment.State.LEASED, lease_expires_at=now + timedelta(seconds=campaign.lease_seconds), updated_at=now
    )
    progress = Progress.of(done=status.rated_count, quota=campaign.quota_per_annotator, paused=status.paused)
    return Lease(shown=engine.show(assignment.pk), progress=progress)
