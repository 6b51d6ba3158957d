"""The assignment engine and the annotator's writes: claim, renew, rate, skip, undo.

Lock order (to stay deadlock-free): annotator status -> assignment -> comparison. The claim itself is one SQL
statement that locks a comparison with `FOR NO KEY UPDATE SKIP LOCKED`, bumps its `filled` counter and inserts the
assignment, so two annotators can never take the last slot of the same comparison. Every function takes `now` so
tests can move the clock.
"""

from __future__ import annotations

import importlib
import os
import random
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from annotation.models import AnnotatorStatus, Assignment, Campaign, Comparison, Rater, Rating, Verdict
from evalplatform.exceptions import Conflict, DomainError
from results.tasks import schedule_refresh

UNDO_WINDOW = timedelta(seconds=15)
# The page shows one comparison, prefetches the next, and may have a rating of a third still in flight.
MAX_LIVE_LEASES = 3
EXPIRED_SWEEP_BATCH = 50
MAX_RATIONALE_CHARS = 10_000
MAX_TIME_MS = 24 * 3600 * 1000

_rng = random.Random()

# One statement: lock the first free comparison in the first arm that has one, take a slot, lease it.
# Each arm is a CTE walking an index from a random point; PostgreSQL only evaluates a CTE as far as its reader
# pulls, so the UNION ALL ... LIMIT 1 stops at the first arm that finds a comparison.
ARM_SQL = """
arm{n} AS (
    SELECT c.id, c.output_a_id, c.output_b_id
    FROM annotation_comparison c
    WHERE c.campaign_id = %(campaign)s AND {condition} AND c.random_key {side} %(start)s
      AND NOT EXISTS (SELECT 1 FROM annotation_assignment a WHERE a.comparison_id = c.id AND a.rater_id = %(rater)s)
    ORDER BY c.random_key
    LIMIT 1
    FOR NO KEY UPDATE SKIP LOCKED
)"""
CLAIM_SQL = """
WITH {arms},
pick AS ({union} LIMIT 1),
bump AS (
    UPDATE annotation_comparison c SET filled = c.filled + 1 FROM pick WHERE c.id = pick.id
    RETURNING c.id, c.output_a_id, c.output_b_id
)
INSERT INTO annotation_assignment
    (comparison_id, rater_id, left_output_id, state, lease_expires_at, created_at, updated_at)
SELECT id, %(rater)s, CASE WHEN %(left_is_a)s THEN output_a_id ELSE output_b_id END, 'leased',
    %(expires)s, %(now)s, %(now)s
FROM bump
RETURNING id
"""
REGULAR_CONDITION = "c.gold_verdict IS NULL AND c.filled = {level:d}"
# Gold comparisons test annotators rather than collect data: each annotator may answer each one once, uncapped.
GOLD_CONDITION = "c.gold_verdict IS NOT NULL"

SWEEP_SQL = """
WITH dead AS (
    SELECT id FROM annotation_assignment
    WHERE state = 'leased' AND lease_expires_at <= %(now)s
    ORDER BY lease_expires_at
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), released AS (
    UPDATE annotation_assignment a SET state = 'expired', updated_at = %(now)s
    FROM dead WHERE a.id = dead.id AND a.state = 'leased'
    RETURNING a.comparison_id
)
UPDATE annotation_comparison c SET filled = c.filled - n.k
FROM (SELECT comparison_id, count(*) AS k FROM released GROUP BY comparison_id) n
WHERE c.id = n.comparison_id
"""


@dataclass(frozen=True)
class ClaimRequest:
    """What a claim function needs: ids and the lease to write, no model instances."""

    campaign_id: int
    rater_id: int
    required: int
    gold: bool
    now: datetime
    expires: datetime
    left_is_a: bool
    start: float


def claim_sql(*, required: int, gold: bool) -> str:
    """Return the claim statement: fullest unfinished level first, each from the random start, then wrapping."""
    conditions = [GOLD_CONDITION] if gold else [REGULAR_CONDITION.format(level=k) for k in range(required - 1, -1, -1)]
    arms = [(condition, side) for condition in conditions for side in (">=", "<")]
    return CLAIM_SQL.format(
        arms=",".join(ARM_SQL.format(n=n, condition=c, side=side) for n, (c, side) in enumerate(arms)),
        union=" UNION ALL ".join(f"SELECT * FROM arm{n}" for n in range(len(arms))),
    )


def claim_comparison(request: ClaimRequest) -> int | None:
    """Lease one comparison to the rater in one statement; return the new assignment id or None."""
    params: dict[str, Any] = {
        "campaign": request.campaign_id,
        "rater": request.rater_id,
        "start": request.start,
        "left_is_a": request.left_is_a,
        "expires": request.expires,
        "now": request.now,
    }
    with connection.cursor() as cursor:
        cursor.execute(claim_sql(required=request.required, gold=request.gold), params)
        row = cursor.fetchone()
    return None if row is None else int(row[0])


def _load_claim_function() -> Callable[[ClaimRequest], int | None]:
    """Return the claim function; EVALPLATFORM_CLAIM_FUNCTION=module:name swaps it (the benchmark's baseline)."""
    dotted = os.environ.get("EVALPLATFORM_CLAIM_FUNCTION", "")
    if not dotted:
        return claim_comparison
    module, _, name = dotted.partition(":")
    function: Callable[[ClaimRequest], int | None] = getattr(importlib.import_module(module), name)
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


def status_for(*, campaign: Campaign, rater: Rater) -> AnnotatorStatus:
    """Return the rater's status row in the campaign, creating it on first use."""
    status, _ = AnnotatorStatus.objects.get_or_create(campaign=campaign, rater=rater)
    return status


def _locked_status(*, campaign: Campaign, rater: Rater) -> AnnotatorStatus:
    """Return the rater's status row locked for this transaction: it serialises one annotator's writes."""
    try:
        status = AnnotatorStatus.objects.select_for_update().get(campaign=campaign, rater=rater)
    except AnnotatorStatus.DoesNotExist:
        status_for(campaign=campaign, rater=rater)
        status = AnnotatorStatus.objects.select_for_update().get(campaign=campaign, rater=rater)
    status.campaign = campaign
    status.rater = rater
    return status


# What the page needs to show an assignment, loaded in the same query.
SHOWN_WITH = ("comparison__prompt", "comparison__output_a", "comparison__output_b")


def live_leases(*, campaign: Campaign, rater: Rater, now: datetime) -> list[Assignment]:
    """Return the rater's unexpired leases in the campaign, oldest first."""
    return list(
        Assignment.objects.select_related(*SHOWN_WITH)
        .filter(rater=rater, comparison__campaign=campaign, state=Assignment.State.LEASED, lease_expires_at__gt=now)
        .order_by("id")
    )


def release_expired_leases(*, now: datetime | None = None, limit: int = EXPIRED_SWEEP_BATCH) -> None:
    """Return up to `limit` expired leases to the pool (the claim calls this; no scheduler needed)."""
    with connection.cursor() as cursor:  # one statement: atomic on its own
        cursor.execute(SWEEP_SQL, {"now": now or timezone.now(), "limit": limit})


@dataclass(frozen=True)
class Lease:
    """A comparison leased to an annotator, and the annotator's standing after the claim."""

    assignment: Assignment | None
    status: AnnotatorStatus | None


def claim_next(
    *, campaign: Campaign, user: AbstractBaseUser, exclude: Collection[int] = (), now: datetime | None = None
) -> Lease:
    """Return the annotator's current lease (renewed) or lease them a new comparison; no assignment when done.

    `exclude` lists assignment ids the client already shows (the page prefetches the next comparison).
    """
    now = now or timezone.now()
    if campaign.status != Campaign.Status.ACTIVE:
        return Lease(assignment=None, status=None)
    rater = rater_for_user(user)
    release_expired_leases(now=now)
    with transaction.atomic():
        status = _locked_status(campaign=campaign, rater=rater)
        if status.paused:
            return Lease(assignment=None, status=status)
        held = live_leases(campaign=campaign, rater=rater, now=now)
        for assignment in held:
            if assignment.pk not in exclude:
                return Lease(assignment=_renew(assignment, campaign=campaign, now=now), status=status)
        if len(held) >= MAX_LIVE_LEASES:
            raise Conflict(f"You already hold {len(held)} comparisons; rate or skip one first.")
        if campaign.quota_per_annotator is not None and status.rated_count + len(held) >= campaign.quota_per_annotator:
            return Lease(assignment=None, status=status)
        assignment_id = _claim(campaign=campaign, rater=rater, now=now)
    if assignment_id is None:
        return Lease(assignment=None, status=status)
    return Lease(assignment=Assignment.objects.select_related(*SHOWN_WITH).get(pk=assignment_id), status=status)


def _claim(*, campaign: Campaign, rater: Rater, now: datetime) -> int | None:
    gold_first = campaign.gold_rate > 0 and _rng.random() < campaign.gold_rate
    # Gold is only mixed in: when the regular work is done, the annotator is done.
    for gold in (True, False) if gold_first else (False,):
        request = ClaimRequest(
            campaign_id=campaign.pk,
            rater_id=rater.pk,
            required=campaign.ratings_per_comparison,
            gold=gold,
            now=now,
            expires=now + timedelta(seconds=campaign.lease_seconds),
            left_is_a=_rng.random() < 0.5,
            start=_rng.random(),
        )
        assignment_id = _claim_function(request)
        if assignment_id is not None:
            return assignment_id
    return None


def _renew(assignment: Assignment, *, campaign: Campaign, now: datetime) -> Assignment:
    assignment.lease_expires_at = now + timedelta(seconds=campaign.lease_seconds)
    assignment.save(update_fields=["lease_expires_at", "updated_at"])
    return assignment


@transaction.atomic
def renew_lease(*, assignment: Assignment, now: datetime | None = None) -> Assignment:
    """Extend a live lease by the campaign's lease time; Conflict if it has expired or ended."""
    now = now or timezone.now()
    campaign = assignment.comparison.campaign
    expires = now + timedelta(seconds=campaign.lease_seconds)
    updated = Assignment.objects.filter(
        pk=assignment.pk, state=Assignment.State.LEASED, lease_expires_at__gt=now
    ).update(lease_expires_at=expires, updated_at=now)
    if not updated:
        raise Conflict("This lease has expired or the comparison is no longer yours to rate.")
    return Assignment.objects.select_related(*SHOWN_WITH, "comparison__campaign").get(pk=assignment.pk)


@dataclass(frozen=True)
class RatingInput:
    """An annotator's answer as sent by the page or the API."""

    choice: str
    strength: int | None = None
    rationale: str = ""
    time_ms: int | None = None
    idempotency_key: str = ""


def check_rating_input(*, campaign: Campaign, answer: RatingInput) -> None:
    """Raise DomainError naming the field when the answer does not fit the campaign's scheme."""
    if answer.choice not in campaign.choices:
        allowed = ", ".join(campaign.choices)
        raise DomainError(f"'{answer.choice}' is not a choice in this campaign (allowed: {allowed}).", field="choice")
    if answer.strength is not None:
        if campaign.strength_levels == 0:
            raise DomainError("This campaign does not use strength levels.", field="strength")
        if answer.choice not in ("left", "right"):
            raise DomainError("Strength applies only when one side is better.", field="strength")
        if not 1 <= answer.strength <= campaign.strength_levels:
            raise DomainError(f"Strength must be between 1 and {campaign.strength_levels}.", field="strength")
    if campaign.require_rationale and not answer.rationale.strip():
        raise DomainError("This campaign requires a rationale.", field="rationale")
    if len(answer.rationale) > MAX_RATIONALE_CHARS:
        raise DomainError(f"The rationale is longer than {MAX_RATIONALE_CHARS} characters.", field="rationale")
    if answer.time_ms is not None and not 0 <= answer.time_ms <= MAX_TIME_MS:
        raise DomainError(f"time_ms must be between 0 and {MAX_TIME_MS}.", field="time_ms")


@dataclass(frozen=True)
class RatingResult:
    rating: Rating
    created: bool
    status: AnnotatorStatus


@transaction.atomic
def submit_rating(*, assignment: Assignment, answer: RatingInput, now: datetime | None = None) -> RatingResult:
    """Record the annotator's rating of a leased assignment.

    A repeat of an accepted request with the same idempotency key returns the stored rating (created=False);
    any other second rating, or a rating after the lease expired, is a Conflict.
    """
    now = now or timezone.now()
    comparison = assignment.comparison
    campaign = comparison.campaign
    check_rating_input(campaign=campaign, answer=answer)
    status = _locked_status(campaign=campaign, rater=assignment.rater)
    taken = Assignment.objects.filter(pk=assignment.pk, state=Assignment.State.LEASED, lease_expires_at__gt=now).update(
        state=Assignment.State.RATED, updated_at=now
    )
    if not taken:
        return RatingResult(rating=_replayed_rating(assignment, answer), created=False, status=status)
    rating = Rating.objects.create(
        comparison=comparison,
        rater=assignment.rater,
        rater_kind=assignment.rater.kind,
        source=Rating.Source.ANNOTATOR,
        assignment=assignment,
        verdict=Verdict.WIN if answer.choice in ("left", "right") else Verdict(answer.choice),
        winner_id=_winner_id(assignment, answer.choice),
        left_output_id=assignment.left_output_id,
        strength=answer.strength,
        rationale=answer.rationale,
        time_ms=answer.time_ms,
        metadata={"idempotency_key": answer.idempotency_key} if answer.idempotency_key else {},
        created_at=now,
    )
    _count_rating(status, comparison=comparison, rating=rating, sign=1, now=now)
    schedule_refresh(campaign.pk)
    return RatingResult(rating=rating, created=True, status=status)


def _replayed_rating(assignment: Assignment, answer: RatingInput) -> Rating:
    existing = Rating.objects.filter(assignment=assignment).first()
    if existing is None:
        raise Conflict("The lease on this comparison has expired; fetch the next one.")
    if answer.idempotency_key and existing.metadata.get("idempotency_key") == answer.idempotency_key:
        return existing
    raise Conflict("This comparison is already rated.")


def _winner_id(assignment: Assignment, choice: str) -> int | None:
    comparison = assignment.comparison
    right_id = comparison.output_b_id if assignment.left_output_id == comparison.output_a_id else comparison.output_a_id
    return {"left": assignment.left_output_id, "right": right_id}.get(choice)


def is_gold_correct(comparison: Comparison, rating: Rating) -> bool:
    """Return whether a rating of a gold comparison agrees with its known answer."""
    if rating.verdict != comparison.gold_verdict:
        return False
    return rating.verdict != Verdict.WIN or rating.winner_id == comparison.gold_winner_id


def _count_rating(status: AnnotatorStatus, *, comparison: Comparison, rating: Rating, sign: int, now: datetime) -> None:
    status.rated_count += sign
    if comparison.is_gold:
        status.gold_answered += sign
        status.gold_correct += sign * int(is_gold_correct(comparison, rating))
    if sign > 0:
        _pause_if_below_gold_threshold(status, campaign=comparison.campaign, now=now)
    status.save()


def _pause_if_below_gold_threshold(status: AnnotatorStatus, *, campaign: Campaign, now: datetime) -> None:
    accuracy = status.gold_accuracy
    if status.paused or accuracy is None or status.gold_answered < campaign.gold_min_answered:
        return
    if accuracy >= campaign.gold_min_accuracy:
        return
    status.paused = True
    status.paused_at = now
    status.paused_reason = (
        f"Gold accuracy {status.gold_correct}/{status.gold_answered} ({accuracy:.0%}) is below the campaign's "
        f"minimum of {campaign.gold_min_accuracy:.0%} after {status.gold_answered} gold answers."
    )
    for assignment in live_leases(campaign=campaign, rater=status.rater, now=now):
        _end_lease(assignment, state=Assignment.State.EXPIRED, now=now)


def _end_lease(assignment: Assignment, *, state: str, now: datetime) -> bool:
    """Move a leased assignment to `state` and free its slot; False if it was no longer leased."""
    ended = Assignment.objects.filter(pk=assignment.pk, state=Assignment.State.LEASED).update(
        state=state, updated_at=now
    )
    if ended:
        Comparison.objects.filter(pk=assignment.comparison_id).update(filled=F("filled") - 1)
    return bool(ended)


@transaction.atomic
def skip_assignment(*, assignment: Assignment, now: datetime | None = None) -> None:
    """Give the comparison back to the pool; this annotator will not be offered it again."""
    if not _end_lease(assignment, state=Assignment.State.SKIPPED, now=now or timezone.now()):
        raise Conflict("This comparison is no longer leased to you.")


@transaction.atomic
def undo_rating(*, assignment: Assignment, now: datetime | None = None) -> Lease:
    """Delete the annotator's rating given less than 15 seconds ago and lease the comparison to them again."""
    now = now or timezone.now()
    comparison = assignment.comparison
    campaign = comparison.campaign
    status = _locked_status(campaign=campaign, rater=assignment.rater)
    if status.paused:
        raise Conflict("You are paused in this campaign; ratings can no longer be changed.")
    rating = Rating.objects.select_for_update().filter(assignment=assignment).first()
    if rating is None:
        raise Conflict("There is no rating to undo.")
    if now - rating.created_at > UNDO_WINDOW:
        raise Conflict(f"A rating can only be undone within {UNDO_WINDOW.seconds} seconds.")
    _count_rating(status, comparison=comparison, rating=rating, sign=-1, now=now)
    rating.delete()
    schedule_refresh(campaign.pk)
    Assignment.objects.filter(pk=assignment.pk).update(
        state=Assignment.State.LEASED, lease_expires_at=now + timedelta(seconds=campaign.lease_seconds), updated_at=now
    )
    leased = Assignment.objects.select_related(*SHOWN_WITH, "comparison__campaign").get(pk=assignment.pk)
    return Lease(assignment=leased, status=status)
