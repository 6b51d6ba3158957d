"""Who may write a campaign through the research API: the admin's rule (owner, researchers, superusers)."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, PermissionsMixin

from annotation.models import Campaign
from evalplatform.exceptions import PermissionDenied
from results.access import access_campaign_results

AnyUser = AbstractBaseUser | AnonymousUser


def access_campaign_creation(*, user: AnyUser) -> None:
    """Raise PermissionDenied unless the user may create campaigns (the `annotation.add_campaign` permission)."""
    if not _has_perm(user, "annotation.add_campaign"):
        raise PermissionDenied("Creating a campaign needs the annotation.add_campaign permission.")


def access_campaign_for_change(*, user: AnyUser, slug: str) -> Campaign:
    """Return the campaign if the user manages it and may change campaigns, as the admin requires.

    Someone who does not manage it gets NotFound (its annotators PermissionDenied, as for its results); a manager
    without the `annotation.change_campaign` permission gets PermissionDenied.
    """
    campaign = access_campaign_results(user=user, slug=slug)
    if not _has_perm(user, "annotation.change_campaign"):
        raise PermissionDenied("Changing a campaign needs the annotation.change_campaign permission.")
    return campaign


def _has_perm(user: AnyUser, perm: str) -> bool:
    return isinstance(user, PermissionsMixin) and user.is_active and user.has_perm(perm)
