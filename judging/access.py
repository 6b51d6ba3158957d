"""Fetch judges, judge runs, verdicts and stored calls for researchers, raising when the user may not have them.

The rule for judges: a researcher uses their own judges and the operator's (no owner); only a judge's owner or a
superuser changes it, and only superusers change the operator's. Runs, verdicts and stored calls follow the
campaigns the user may read.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, PermissionsMixin
from django.db.models import Q, QuerySet

from evalplatform.exceptions import DomainError, NotFound, PermissionDenied
from judging.models import JudgeConfig, JudgeRun, JudgeVerdict, LLMCall
from results.access import access_campaign_results, researcher_campaigns

User = AbstractBaseUser | AnonymousUser


def _is_superuser(user: User) -> bool:
    return bool(user.is_authenticated and getattr(user, "is_superuser", False))


def usable_judges(user: User) -> QuerySet[JudgeConfig]:
    """Return the judges the user may see and start runs with: their own and the operator's (all for superusers)."""
    judges = JudgeConfig.objects.select_related("owner").order_by("name")
    if _is_superuser(user):
        return judges
    if not user.is_authenticated:
        return judges.none()
    return judges.filter(Q(owner__isnull=True) | Q(owner_id=user.pk))


def may_use_judge(user: User | None, judge: JudgeConfig) -> bool:
    """Return whether the user may start runs with the judge (None: the operator, who may use any)."""
    return user is None or _is_superuser(user) or judge.owner_id is None or judge.owner_id == user.pk


def may_change_judge(user: User, judge: JudgeConfig) -> bool:
    """Return whether the user may change or delete the judge: its owner, or a superuser."""
    return _is_superuser(user) or (judge.owner_id is not None and judge.owner_id == user.pk)


def check_may_use_judge(*, user: User | None, judge: JudgeConfig) -> None:
    """Raise DomainError on the judge field when the user may not start runs with the judge."""
    if not may_use_judge(user, judge):
        # The same words as for a judge that does not exist: another team's judges are not confirmed to exist.
        raise DomainError(f"judge: no judge named {judge.name!r} that you may use", field="judge")


def access_judges(*, user: User) -> QuerySet[JudgeConfig]:
    """Return the judges the user may use if the user researches a campaign, may view judges or is a superuser."""
    may_view = isinstance(user, PermissionsMixin) and user.has_perm("judging.view_judgeconfig")
    if user.is_authenticated and (may_view or researcher_campaigns(user).exists()):
        return usable_judges(user)
    raise PermissionDenied("Only researchers may list judges.")


def access_usable_judge(*, user: User, name: str) -> JudgeConfig:
    """Return the judge with this name if the user may use it; raise DomainError on the judge field if not."""
    judge = usable_judges(user).filter(name=name).first()
    if judge is None:
        raise DomainError(f"judge: no judge named {name!r} that you may use", field="judge")
    return judge


def access_judge_run(*, user: User, slug: str, run_id: int) -> JudgeRun:
    """Return the campaign's run if the user may read the campaign's results (403 for its annotators, else 404)."""
    campaign = access_campaign_results(user=user, slug=slug)
    run = JudgeRun.objects.filter(pk=run_id, campaign=campaign).select_related("campaign", "judge").first()
    if run is None:
        raise NotFound(f"No judge run #{run_id} in campaign {slug!r}.")
    return run


def visible_verdicts(user: User) -> QuerySet[JudgeVerdict]:
    """Return the verdicts on comparisons of the campaigns whose results the user may read."""
    if _is_superuser(user):
        return JudgeVerdict.objects.all()
    return JudgeVerdict.objects.filter(comparison__campaign__in=researcher_campaigns(user).values("pk"))


def visible_llm_calls(user: User) -> QuerySet[LLMCall]:
    """Return the stored calls made for verdicts the user may see (a call is shared by identical requests)."""
    if _is_superuser(user):
        return LLMCall.objects.all()
    hashes = visible_verdicts(user).exclude(request_hash="").values("request_hash")
    return LLMCall.objects.filter(request_hash__in=hashes)
