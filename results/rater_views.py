"""The raters page of a campaign's results: every rater with the rater report's flags, and the buttons that pause,
resume, exclude or include one (researchers who may change the campaign; each action logged with the flags as its
why, through ``annotation.rater_actions``)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from annotation.models import Campaign
from annotation.rater_actions import act_on_rater, find_rater
from annotation.rater_admin import DONE
from annotation.research.access import access_campaign_for_change
from evalplatform.exceptions import DomainError, NotFound, PermissionDenied
from results.access import access_campaign_results
from results.rater_api import recent_actions
from results.rater_status import flag_summary, rater_rows, rows_by_label

MAX_LABEL_CHARS = 200


@login_required
@require_http_methods(["GET", "POST"])
def raters_page(request: HttpRequest, slug: str) -> HttpResponse:
    """Show the campaign's raters with their flags (GET); act on one and come back here (POST)."""
    try:
        campaign = (access_campaign_for_change if request.method == "POST" else access_campaign_results)(
            user=request.user, slug=slug
        )
    except NotFound as exc:
        raise Http404(exc.message) from exc
    except PermissionDenied as exc:
        raise DjangoPermissionDenied(exc.message) from exc
    if request.method == "POST":
        return act(request, campaign)
    report = rater_rows(campaign)
    context = {"campaign": campaign, "report": report, "actions": recent_actions(campaign.pk)[:10]}
    return render(request, "results/raters.html", context)


def act(request: HttpRequest, campaign: Campaign) -> HttpResponse:
    """Apply the posted action to the posted rater, logged with the report's flags as its why (POST-redirect-GET)."""
    label, action = request.POST.get("rater", ""), request.POST.get("action", "")
    back = HttpResponseRedirect(reverse("results:raters", args=[campaign.slug]))
    try:
        if action not in DONE:
            raise DomainError(f"action: expected one of {', '.join(DONE)}", field="action")
        if not label or len(label) > MAX_LABEL_CHARS or "\x00" in label:
            raise DomainError("rater: give the rater's name as the list shows it", field="rater")
        rater = find_rater(campaign=campaign, label=label)
        why = flag_summary(rows_by_label(rater_rows(campaign)).get(label))
        note = request.POST.get("note", "").strip()[:500]
        reason = f"{DONE[action]} on the results page by {request.user}: {why}" + (f" (note: {note})" if note else "")
        outcome = act_on_rater(campaign=campaign, rater=rater, action=action, reason=reason, actor=request.user)
    except NotFound as exc:
        raise Http404(exc.message) from exc
    except DomainError as exc:
        messages.error(request, exc.message)
        return back
    done = f"{DONE[action]}: {label}." if outcome.changed else f"{label} already was so: nothing changed."
    messages.success(request, done)
    return back
