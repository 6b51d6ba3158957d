"""Fetch campaigns and assignments for an annotator, raising when they may not have them."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, Group
from django.db.models import Q, QuerySet

from annotation.models import Assignment, Campaign
from evalplatform.exceptions import NotFound

User = AbstractBaseUser | AnonymousUser


def annotatable_campaigns(user: User) -> QuerySet[Campaign]:
    """Return the campaigns (any status) this user is an annotator of, directly or through its group."""
    if not user.is_authenticated:
        return Campaign.objects.none()
    group_ids = Group.objects.filter(user__pk=user.pk).values("id")
    return Campaign.objects.filter(Q(annotators=user) | Q(annotator_group__in=group_ids)).distinct()


def access_campaign_for_annotation(*, user: User, campaign_id: int) -> Campaign:
    """Return the campaign if the user annotates it; otherwise raise NotFound (its existence is not revealed)."""
    campaign = annotatable_campaigns(user).filter(pk=campaign_id).first()
    if campaign is None:
        raise NotFound("No such campaign.")
    return campaign


def access_own_assignment(*, user: User, assignment_id: int) -> Assignment:
    """Return the user's own assignment, with its comparison and campaign; anyone else's is NotFound."""
    if user.pk is None:
        raise NotFound("No such assignment.")
    assignment = (
        Assignment.objects.select_related("comparison__campaign", "rater")
        .filter(pk=assignment_id, rater__user__pk=user.pk, rater__user__isnull=False)
        .first()
    )
    if assignment is None:
        raise NotFound("No such assignment.")
    return assignment
