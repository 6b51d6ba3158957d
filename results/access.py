"""Fetch campaigns for researchers, raising when the user may not see them."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Q, QuerySet

from annotation.models import Campaign
from evalplatform.exceptions import NotFound, PermissionDenied


def researcher_campaigns(user: AbstractBaseUser | AnonymousUser) -> QuerySet[Campaign]:
    """Return the campaigns whose results the user may read: owned or researched; every campaign for superusers."""
    if not user.is_authenticated:
        return Campaign.objects.none()
    if getattr(user, "is_superuser", False):
        return Campaign.objects.all()
    return Campaign.objects.filter(Q(owner=user) | Q(researchers=user)).distinct()


def access_campaign_results(*, user: AbstractBaseUser | AnonymousUser, slug: str) -> Campaign:
    """Return the campaign with this slug if the user may read its results.

    Annotators of the campaign get PermissionDenied (they know it exists); anyone else gets NotFound.
    """
    campaign = researcher_campaigns(user).filter(slug=slug).select_related("owner").first()
    if campaign is not None:
        return campaign
    if (
        user.is_authenticated
        and Campaign.objects.filter(Q(annotators=user) | Q(annotator_group__user=user), slug=slug).exists()
    ):
        raise PermissionDenied("Only the campaign's researchers may read its results.")
    raise NotFound(f"No campaign {slug!r}.")
