"""The judge report page: /results/<campaign>/judge-report/?judge=NAME (results.judge_report)."""

from __future__ import annotations

from typing import Any, cast

from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from annotation.models import Campaign
from evalplatform.exceptions import NotFound, PermissionDenied
from judging.access import usable_judges
from judging.models import JudgeConfig
from results.access import access_campaign_results
from results.judge_report import access_judge_report, build_report, report_campaigns
from results.report_slots import RETRY_AFTER_SECONDS, TooManyReports, report_slot

PAGE_BOOTSTRAP = 300
RETRY = {"Retry-After": str(RETRY_AFTER_SECONDS)}


@login_required
def judge_report_page(request: HttpRequest, slug: str) -> HttpResponse:
    """Show the report of the judge named in ?judge= on this campaign, with links to the campaign's other judges."""
    try:
        campaign = access_campaign_results(user=request.user, slug=slug)
        judges = campaign_judges(request, campaign)
        name = request.GET.get("judge") or (judges[0].name if len(judges) == 1 else None)
        report = None
        if name is not None:
            judge, campaigns = access_judge_report(user=request.user, judge=name, campaign=slug)
            with report_slot(request.user):
                report = build_report(judge, campaigns, bootstrap=PAGE_BOOTSTRAP)
    except TooManyReports as exc:
        return HttpResponse(exc.message, status=429, content_type="text/plain; charset=utf-8", headers=RETRY)
    except NotFound as exc:
        raise Http404(exc.message) from exc
    except PermissionDenied as exc:
        raise DjangoPermissionDenied(exc.message) from exc
    context: dict[str, Any] = {"campaign": campaign, "judges": judges, "report": report, "selected": name}
    return render(request, "results/judge_report.html", context)


def campaign_judges(request: HttpRequest, campaign: Campaign) -> list[JudgeConfig]:
    """Return the judges the user may use that rated the campaign."""
    mine = usable_judges(cast(User, request.user))
    return [j for j in mine if report_campaigns(j, Campaign.objects.filter(pk=campaign.pk)).exists()]
