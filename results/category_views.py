"""The categories page of a campaign's results: its categories (prompt tags) with their battles, and the
leaderboard of one category (``?category=NAME``), provisional ones marked."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from annotation.models import Campaign
from evalplatform.exceptions import DomainError, NotFound, PermissionDenied
from results import svg
from results.access import access_campaign_results
from results.categories import campaign_categories, check_category
from results.leaderboards import campaign_leaderboard
from results.rater_exclusions import parse_include_excluded, with_exclusions
from results.raters import RaterSelection, parse_raters
from results.report_slots import TooManyReports, report_slot
from results.selectors import check_rater_names
from results.views import worst_rank


@login_required
def categories_page(request: HttpRequest, slug: str) -> HttpResponse:
    """Show the campaign's categories, and with ``?category=NAME`` that category's leaderboard."""
    try:
        campaign = access_campaign_results(user=request.user, slug=slug)
    except NotFound as exc:
        raise Http404(exc.message) from exc
    except PermissionDenied as exc:
        raise DjangoPermissionDenied(exc.message) from exc
    try:
        selection = parse_raters(request.GET.get("raters"), request.GET.getlist("exclude_raters"))
        check_rater_names(selection, campaign=campaign)
        include = parse_include_excluded(request.GET.get("include_excluded"))
        selection = with_exclusions(selection, campaign, include_excluded=include)
        with report_slot(request.user):
            context = categories_context(campaign, selection, request.GET.get("category"))
    except DomainError as exc:
        refused = {"campaign": campaign, "error": exc.message, "error_field": exc.field}
        return render(
            request, "results/categories.html", refused, status=429 if isinstance(exc, TooManyReports) else 400
        )
    return render(request, "results/categories.html", context)


def categories_context(campaign: Campaign, selection: RaterSelection, category: str | None) -> dict[str, Any]:
    """Return the page's data: the category list, and the chosen category's leaderboard when one is given."""
    context: dict[str, Any] = {
        "campaign": campaign,
        "selection": selection,
        "listed": campaign_categories(campaign, selection),
        "category": category,
    }
    if category is None:
        return context
    board = campaign_leaderboard(campaign, selection, category=check_category(campaign, category))
    rows = [dict(row, rank_worst=worst_rank(row, board["ratings"])) for row in board["ratings"]]
    context.update(
        board=board,
        rows=rows,
        has_elo=any(row.get("elo") is not None for row in rows),
        pictures={"intervals": svg.interval_chart(rows)} if rows else {},
    )
    return context
