"""A researcher's actions on a rater of a campaign: pause, resume, exclude from results, include again.

Every action is reversible, changes only the rater's AnnotatorStatus (never a rating) and is logged as a RaterAction
(who, when, why) in the same transaction. A paused annotator gets no new work (the assignment engine reads
``AnnotatorStatus.paused``) and their live leases end; an excluded rater's ratings are left out of every result
(``results.rater_exclusions``) until they are included again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from annotation import engine
from annotation.models import AnnotatorStatus, Assignment, Campaign, Rater, RaterAction, Rating
from evalplatform.exceptions import Conflict, DomainError, NotFound

MAX_REASON_CHARS = 2_000
ACTIONS = tuple(RaterAction.Kind.values)


@dataclass(frozen=True)
class Outcome:
    """What an action did: the status after it, and whether it changed anything (acting twice is a no-op)."""

    status: AnnotatorStatus
    changed: bool


class RaterIsJudge(Conflict):
    """A judge is stopped by cancelling its runs, not paused: the assignment engine never gives it work."""

    code = "rater_is_judge"


def campaign_raters(*, campaign: Campaign) -> QuerySet[Rater]:
    """Return the raters of a campaign: those who rated in it or have a standing there."""
    return Rater.objects.filter(
        Exists(Rating.objects.filter(rater=OuterRef("pk"), comparison__campaign=campaign))
        | Exists(AnnotatorStatus.objects.filter(rater=OuterRef("pk"), campaign=campaign))
    )


def find_rater(*, campaign: Campaign, label: str) -> Rater:
    """Return the campaign's rater shown as ``label`` in results (a name, or the pseudonym of an account holder).

    Raise NotFound when no rater of this campaign has that label: other campaigns' raters are not named.
    """
    rater = (
        campaign_raters(campaign=campaign)
        .filter(Q(user__isnull=True, name=label) | Q(pseudonym=label) | Q(user__isnull=False, name=label))
        .first()
    )
    if rater is None:
        raise NotFound(f"No rater {label!r} in this campaign.")
    return rater


def clean_reason(reason: str) -> str:
    """Return the reason stripped; raise DomainError when it is empty, too long or holds a null character."""
    text = (reason or "").strip()
    if not text:
        raise DomainError("reason: say why (it is kept in the rater's audit trail)", field="reason")
    if len(text) > MAX_REASON_CHARS or "\x00" in text:
        raise DomainError(f"reason: at most {MAX_REASON_CHARS} characters, without null characters", field="reason")
    return text


@transaction.atomic
def act_on_rater(
    *,
    campaign: Campaign,
    rater: Rater,
    action: str,
    reason: str,
    actor: AbstractBaseUser | AnonymousUser | None,
    now: datetime | None = None,
) -> Outcome:
    """Pause, resume, exclude or include the rater in the campaign and log it; return the status and whether it
    changed. Raise DomainError on an unknown action or an empty reason, RaterIsJudge when pausing a judge."""
    if action not in ACTIONS:
        raise DomainError(f"action: expected one of {', '.join(ACTIONS)}, not {action!r}", field="action")
    text = clean_reason(reason)
    now = now or timezone.now()
    if action in ("pause", "resume") and rater.kind == Rater.Kind.JUDGE:
        raise RaterIsJudge("A judge gets no work from the assignment engine: cancel its runs instead of pausing it.")
    status, _ = AnnotatorStatus.objects.get_or_create(campaign=campaign, rater=rater)
    status = AnnotatorStatus.objects.select_for_update().get(pk=status.pk)  # lock order: the status first
    changed = _apply(status, action=action, reason=text, now=now)
    if changed:
        status.save()
        RaterAction.objects.create(
            campaign=campaign,
            rater=rater,
            action=action,
            reason=text,
            actor_id=actor.pk if actor is not None and actor.is_authenticated else None,
            created_at=now,
        )
        if action == "pause":
            _end_live_leases(campaign=campaign, rater=rater, now=now)
    return Outcome(status=status, changed=changed)


def _apply(status: AnnotatorStatus, *, action: str, reason: str, now: datetime) -> bool:
    """Change the status in memory as the action says; return whether it changed."""
    if action == "pause" and not status.paused:
        status.paused, status.paused_reason, status.paused_at = True, reason, now
    elif action == "resume" and status.paused:
        status.paused, status.paused_reason, status.paused_at = False, "", None
    elif action == "exclude" and not status.excluded:
        status.excluded, status.excluded_reason, status.excluded_at = True, reason, now
    elif action == "include" and status.excluded:
        status.excluded, status.excluded_reason, status.excluded_at = False, "", None
    else:
        return False
    return True


def _end_live_leases(*, campaign: Campaign, rater: Rater, now: datetime) -> None:
    """Hand the paused annotator's live leases back to the pool, as a gold pause does."""
    for assignment_id in engine.live_lease_ids(rater_id=rater.pk, campaign_id=campaign.pk, now=now):
        engine.end_lease(assignment_id=assignment_id, state=Assignment.State.EXPIRED, now=now)


def act_on_statuses(
    *,
    statuses: Sequence[AnnotatorStatus],
    action: str,
    reason: str,
    actor: AbstractBaseUser | AnonymousUser | None,
) -> int:
    """Apply one action to several statuses (the admin's bulk actions); return how many changed.

    Pausing skips judges rather than refusing the whole selection.
    """
    changed = 0
    for status in statuses:
        if action in ("pause", "resume") and status.rater.kind == Rater.Kind.JUDGE:
            continue
        outcome = act_on_rater(campaign=status.campaign, rater=status.rater, action=action, reason=reason, actor=actor)
        changed += outcome.changed
    return changed


def excluded_raters(*, campaign: Campaign) -> QuerySet[AnnotatorStatus]:
    """Return the campaign's statuses of raters excluded from results."""
    return AnnotatorStatus.objects.filter(campaign=campaign, excluded=True)
