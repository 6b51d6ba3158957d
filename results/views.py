"""Researcher pages: campaign list, leaderboard with pictures, agreement report."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from annotation.models import Campaign
from evalplatform.exceptions import DomainError, NotFound, PermissionDenied
from results import svg
from results.access import access_campaign_results, researcher_campaigns
from results.agreement import campaign_agreement
from results.exports import FORMATS
from results.leaderboards import campaign_leaderboard, side_by_side
from results.raters import RaterSelection, parse_raters
from results.selectors import check_rater_names

View = Callable[..., HttpResponse]


def researcher_view(view: View) -> View:
    """Require login, fetch the campaign for a researcher, and turn domain errors into 404/403/400 pages."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, slug: str) -> HttpResponse:
        try:
            campaign = access_campaign_results(user=request.user, slug=slug)
            selection = parse_raters(request.GET.get("raters"), request.GET.getlist("exclude_raters"))
            check_rater_names(selection, campaign=campaign)
            return view(request, campaign, selection)
        except NotFound as exc:
            raise Http404(exc.message) from exc
        except PermissionDenied as exc:
            raise DjangoPermissionDenied(exc.message) from exc
        except DomainError as exc:
            return HttpResponse(exc.message, status=400, content_type="text/plain")

    return wrapper


@login_required
def campaign_index(request: HttpRequest) -> HttpResponse:
    campaigns = researcher_campaigns(request.user).order_by("name")
    return render(request, "results/index.html", {"campaigns": campaigns})


@researcher_view
def leaderboard_page(request: HttpRequest, campaign: Campaign, selection: RaterSelection) -> HttpResponse:
    return render(request, "results/leaderboard.html", leaderboard_context(campaign, selection))


@researcher_view
def agreement_page(request: HttpRequest, campaign: Campaign, selection: RaterSelection) -> HttpResponse:
    return render(request, "results/agreement.html", agreement_context(campaign, selection))


def leaderboard_context(campaign: Campaign, selection: RaterSelection) -> dict[str, Any]:
    """Return the leaderboard page's data and pictures (shared with the admin view)."""
    board = campaign_leaderboard(campaign, selection)
    pictures = {}
    if board["ratings"]:
        probability = board["win_probability"]
        pictures = {
            "intervals": svg.interval_chart(board["ratings"]),
            "win_rate": svg.heatmap(
                board["win_rate"]["models"],
                board["win_rate"]["matrix"],
                counts=board["win_rate"]["battles"],
                title="Observed win rate of row over column (ties count half)",
            ),
            "win_probability": svg.heatmap(
                probability["models"], probability["matrix"], title="Predicted probability that row beats column"
            ),
        }
    return {
        "campaign": campaign,
        "selection": selection,
        "board": board,
        "side_by_side": side_by_side(campaign, selection),
        "pictures": pictures,
        "formats": list(FORMATS),
    }


def agreement_context(campaign: Campaign, selection: RaterSelection) -> dict[str, Any]:
    """Return the agreement page's data and heatmap (shared with the admin view)."""
    report = campaign_agreement(campaign, selection, bootstrap=200)
    heat = report["rater_heatmap"]
    picture = svg.heatmap(heat["raters"], heat["matrix"], counts=heat["shared"], title="Agreement between raters")
    return {"campaign": campaign, "selection": selection, "report": report, "heatmap": picture}
