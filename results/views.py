"""Researcher pages: campaign list, leaderboard with pictures, agreement report."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from annotation.models import Campaign, Rater, Rating
from annotation.prompt_hygiene import stored_duplicate_summary
from evalplatform.exceptions import DomainError, NotFound, PermissionDenied
from results import svg
from results.access import access_campaign_results, researcher_campaigns
from results.agreement import campaign_agreement
from results.exports import FORMATS
from results.leaderboards import cache_key, cached, campaign_leaderboard, side_by_side
from results.rater_exclusions import parse_include_excluded, with_exclusions
from results.rater_model import check_rater_options
from results.raters import RaterSelection, parse_raters
from results.report_slots import TooManyReports, report_slot
from results.selectors import check_rater_names, ratings_version

View = Callable[..., HttpResponse]
STYLE_PAGE_BOOTSTRAP = 100
PageData = Callable[[Campaign, RaterSelection], dict[str, Any]]


def researcher_page(template: str) -> Callable[[PageData], View]:
    """Make a campaign page: login, the researcher's campaign (else 404/403), then ``template`` with the data.

    A rater selection the domain refuses renders the same page, its form and the message naming the parameter
    (status 400), rather than a bare error page.
    """

    def decorate(page_data: PageData) -> View:
        @login_required
        @wraps(page_data)
        def view(request: HttpRequest, slug: str) -> HttpResponse:
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
                    context = page_data(campaign, selection)
            except DomainError as exc:
                refused = {"campaign": campaign, "error": exc.message, "error_field": exc.field}
                return render(request, template, refused, status=429 if isinstance(exc, TooManyReports) else 400)
            return render(request, template, context)

        return view

    return decorate


@login_required
def campaign_index(request: HttpRequest) -> HttpResponse:
    campaigns = researcher_campaigns(request.user).order_by("name")
    return render(request, "results/index.html", {"campaigns": campaigns})


@login_required
def leaderboard_page(request: HttpRequest, slug: str) -> HttpResponse:
    """The leaderboard, with the rater options of the query (``cluster``, ``rater_model``) and the consistency gate
    (``consistent``) when given."""
    cluster, rater_model = request.GET.get("cluster") or None, request.GET.get("rater_model", "")
    flags = {name: request.GET.get(name, "") for name in ("influence", "downsample")}

    def page_data(campaign: Campaign, selection: RaterSelection) -> dict[str, Any]:
        for name, value in {"rater_model": rater_model, **flags}.items():
            if value not in ("", "0", "1", "false", "true", "on"):
                raise DomainError(f"{name}: expected 1 or 0", field=name)
        aware = rater_model in ("1", "true", "on")
        hygiene = {name: value in ("1", "true", "on") for name, value in flags.items()}
        consistent = consistent_flag(request)
        context = leaderboard_context(
            campaign, selection, cluster=cluster, rater_model=aware, consistent=consistent, **hygiene
        )
        options = {"cluster": cluster, "rater_model": aware, "consistent": consistent, **hygiene}
        return context | {"rater_options": options}

    return researcher_page("results/leaderboard.html")(page_data)(request, slug)


@researcher_page("results/combined.html")
def combined_page(campaign: Campaign, selection: RaterSelection) -> dict[str, Any]:
    board = campaign_leaderboard(campaign, selection, combine="ppi")
    rows = [dict(row, rank_worst=worst_rank(row, board["ratings"])) for row in board["ratings"]]
    for row in rows:
        row["narrower"] = 1 - row["se"] / row["se_human"] if row["se_human"] else None
    pictures = {"intervals": svg.interval_chart(rows)} if rows else {}
    return {"campaign": campaign, "selection": selection, "board": board, "rows": rows, "pictures": pictures}


@researcher_page("results/style_leaderboard.html")
def style_leaderboard_page(campaign: Campaign, selection: RaterSelection) -> dict[str, Any]:
    board = campaign_leaderboard(campaign, selection, style_control=True, bootstrap=STYLE_PAGE_BOOTSTRAP)
    rows = board["ratings"]
    pictures = {"intervals": svg.interval_chart(rows)} if rows else {}
    return {"campaign": campaign, "selection": selection, "board": board, "rows": rows, "pictures": pictures}


@login_required
def agreement_page(request: HttpRequest, slug: str) -> HttpResponse:
    """The agreement report, with the consistency gate (``consistent``) when asked."""

    def page_data(campaign: Campaign, selection: RaterSelection) -> dict[str, Any]:
        consistent = consistent_flag(request)
        return agreement_context(campaign, selection, consistent=consistent) | {"consistent": consistent}

    return researcher_page("results/agreement.html")(page_data)(request, slug)


def consistent_flag(request: HttpRequest) -> bool:
    """Return the page's consistency gate (``consistent=1``, as in the API); DomainError on another value."""
    value = request.GET.get("consistent", "")
    if value not in ("", "0", "1", "false", "true", "on"):
        raise DomainError("consistent: expected 1 or 0", field="consistent")
    return value in ("1", "true", "on")


def leaderboard_context(
    campaign: Campaign,
    selection: RaterSelection,
    *,
    cluster: str | None = None,
    rater_model: bool = False,
    influence: bool = False,
    downsample: bool = False,
    consistent: bool = False,
) -> dict[str, Any]:
    """Return the leaderboard page's data and pictures (shared with the admin view)."""
    check_rater_options(cluster=cluster, rater_model=rater_model, consistent=consistent)
    board = campaign_leaderboard(
        campaign, selection, cluster=cluster, rater_model=rater_model, influence=influence, downsample=downsample,
        consistent=consistent,
    )  # fmt: skip
    pictures = {}
    rows = [dict(row, rank_worst=worst_rank(row, board["ratings"])) for row in board["ratings"]]
    if rows:
        battles = board["win_rate"]["battles"]
        probability = board["win_probability"]
        pictures = {
            "intervals": svg.interval_chart(rows),
            "win_rate": svg.heatmap(
                board["win_rate"]["models"],
                board["win_rate"]["matrix"],
                counts=battles,
                title="Observed win rate of row over column (ties count half)",
            ),
            "win_probability": svg.heatmap(
                probability["models"],
                probability["matrix"],
                counts=battles if probability["models"] == board["win_rate"]["models"] else None,
                title="Predicted probability that row beats column",
            ),
        }
    return {
        "campaign": campaign,
        "selection": selection,
        "board": board,
        "rows": rows,
        "has_elo": any(row.get("elo") is not None for row in rows),
        "side_by_side": side_by_side(campaign, selection),
        "pictures": pictures,
        "formats": list(FORMATS),
        "prompt_duplicates": stored_duplicate_summary(campaign),
    }


def worst_rank(row: dict[str, Any], rows: list[dict[str, Any]]) -> int:
    """Return the worst rank the 95% intervals allow: the models minus those whose interval lies wholly below."""
    return len(rows) - sum(1 for other in rows if other["upper"] < row["lower"])


def agreement_context(campaign: Campaign, selection: RaterSelection, *, consistent: bool = False) -> dict[str, Any]:
    """Return the agreement page's data and heatmap (shared with the admin view); ``consistent``: the gate."""
    report = campaign_agreement(campaign, selection, bootstrap=200, consistent=consistent)
    heat = report["rater_heatmap"]
    picture = svg.heatmap(
        heat["raters"],
        heat["matrix"],
        counts=heat["shared"],
        unit="shared comparison",
        title="Agreement between raters (share of shared comparisons rated alike)",
    )
    return {"campaign": campaign, "selection": selection, "report": report, "heatmap": picture}


def campaign_rater_names(campaign: Campaign) -> list[str]:
    """Return how the campaign's raters appear in results (pseudonyms for account holders), sorted.

    Read from the campaign's ratings (not by asking every rater whether it rated here: imports bring thousands of
    raters) and cached until the ratings change, as the leaderboard is.
    """

    def compute() -> list[str]:
        rater_ids = Rating.objects.filter(comparison__campaign=campaign).values("rater_id").distinct()
        raters = Rater.objects.filter(pk__in=rater_ids).values_list("user_id", "name", "pseudonym")
        return sorted({name if user_id is None else pseudonym for user_id, name, pseudonym in raters.iterator()})

    return list(cached(cache_key("rater-names", campaign.pk, ratings_version().key), compute))
