"""The annotator site: my campaigns, and the rating page (a shell driven by static/frontend/rate.js and the API)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from annotation import selectors
from annotation.access import access_campaign_for_annotation
from annotation.rendering import render_markdown
from evalplatform.exceptions import NotFound

# Outputs are untrusted: even if something slipped past the sanitiser, the page may only run its own script.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def _with_csp(response: HttpResponse) -> HttpResponse:
    response["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return response


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return _with_csp(render(request, "frontend/home.html", {"campaigns": selectors.my_campaigns(request.user)}))


@login_required
def rate(request: HttpRequest, campaign_id: int) -> HttpResponse:
    try:
        campaign = access_campaign_for_annotation(user=request.user, campaign_id=campaign_id)
    except NotFound as error:
        raise Http404(error.message) from error
    config = {
        "campaign": campaign.pk,
        "choices": campaign.choices,
        "strengthLevels": campaign.strength_levels,
        "requireRationale": campaign.require_rationale,
        "leaseSeconds": campaign.lease_seconds,
        "undoSeconds": 15,
        "nextUrl": reverse("assignment-next", args=[campaign.pk]),
        "assignmentUrl": reverse("rating-create", args=[0]).replace("/0/rating/", "/{id}/"),
        "homeUrl": reverse("frontend:home"),
        "loginUrl": reverse("login") + "?next=" + reverse("frontend:home"),
        "paused": selectors.user_progress(campaign=campaign, user=request.user).paused,
        "comparisons": selectors.comparison_count(campaign),
    }
    context = {
        "campaign": campaign,
        "instructions_html": render_markdown(campaign.instructions),
        "config": config,
        "active": campaign.status == campaign.Status.ACTIVE,
    }
    return _with_csp(render(request, "frontend/rate.html", context))
