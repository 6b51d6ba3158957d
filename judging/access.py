"""Fetch judges and judge runs for researchers, raising when the user may not have them."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, PermissionsMixin
from django.db.models import QuerySet

from evalplatform.exceptions import NotFound, PermissionDenied
from judging.models import JudgeConfig, JudgeRun
from results.access import access_campaign_results, researcher_campaigns

User = AbstractBaseUser | AnonymousUser


def access_judges(*, user: User) -> QuerySet[JudgeConfig]:
    """Return every judge if the user researches a campaign, may view judges, or is a superuser; else raise."""
    may_view = isinstance(user, PermissionsMixin) and user.has_perm("judging.view_judgeconfig")
    if user.is_authenticated and (may_view or researcher_campaigns(user).exists()):
        return JudgeConfig.objects.order_by("name")
    raise PermissionDenied("Only researchers may list judges.")


def access_judge_run(*, user: User, slug: str, run_id: int) -> JudgeRun:
    """Return the campaign's run if the user may read the campaign's results (403 for its annotators, else 404)."""
    campaign = access_campaign_results(user=user, slug=slug)
    run = JudgeRun.objects.filter(pk=run_id, campaign=campaign).select_related("campaign", "judge").first()
    if run is None:
        raise NotFound(f"No judge run #{run_id} in campaign {slug!r}.")
    return run
