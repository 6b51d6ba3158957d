"""Admin: campaign reports (leaderboard and agreement pages) and export actions for researchers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from evalplatform.exceptions import DomainError
from results.access import researcher_campaigns
from results.exports import CONTENT_TYPES, iter_export
from results.models import CampaignReport
from results.rater_exclusions import parse_include_excluded, with_exclusions
from results.raters import RaterSelection, parse_raters
from results.views import agreement_context, leaderboard_context


@admin.register(CampaignReport)
class CampaignReportAdmin(admin.ModelAdmin[CampaignReport]):
    list_display = ["name", "slug", "status", "leaderboard_link", "agreement_link"]
    list_filter = ["status"]
    search_fields = ["name", "slug"]
    actions = ["download_ratings", "download_dpo"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[CampaignReport]:
        allowed = researcher_campaigns(request.user).values("pk")
        return super().get_queryset(request).filter(pk__in=allowed)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_active and request.user.has_perm("annotation.view_campaign"))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="Leaderboard")
    def leaderboard_link(self, obj: CampaignReport) -> str:
        return format_html(
            '<a href="{}">Leaderboard</a>', reverse("admin:results_campaignreport_leaderboard", args=[obj.pk])
        )

    @admin.display(description="Agreement")
    def agreement_link(self, obj: CampaignReport) -> str:
        return format_html(
            '<a href="{}">Agreement</a>', reverse("admin:results_campaignreport_agreement", args=[obj.pk])
        )

    def get_urls(self) -> list[URLPattern]:
        own = [
            path(
                "<int:pk>/leaderboard/",
                self.admin_site.admin_view(self.leaderboard_view),
                name="results_campaignreport_leaderboard",
            ),
            path(
                "<int:pk>/agreement/",
                self.admin_site.admin_view(self.agreement_view),
                name="results_campaignreport_agreement",
            ),
        ]
        return own + super().get_urls()

    def report(self, request: HttpRequest, template: str, context: dict[str, Any], status: int = 200) -> HttpResponse:
        """Render a report page in the admin's frame."""
        context.update(self.admin_site.each_context(request), opts=self.model._meta, title=context["campaign"].name)
        return TemplateResponse(request, template, context, status=status)

    def show(
        self,
        request: HttpRequest,
        pk: int,
        template: str,
        build: Callable[[CampaignReport, RaterSelection], dict[str, Any]],
    ) -> HttpResponse:
        """Render a report for the raters the query asks for; a bad query is a 400 page saying which parameter."""
        campaign = self.campaign(request, pk)
        try:
            selection = parse_raters(request.GET.get("raters"), request.GET.getlist("exclude_raters"))
            include = parse_include_excluded(request.GET.get("include_excluded"))
            selection = with_exclusions(selection, campaign, include_excluded=include)
        except DomainError as error:
            return self.report(request, template, {"campaign": campaign, "error": error.message}, status=400)
        return self.report(request, template, build(campaign, selection))

    def campaign(self, request: HttpRequest, pk: int) -> CampaignReport:
        if not self.has_view_permission(request):
            raise PermissionDenied
        return get_object_or_404(self.get_queryset(request), pk=pk)

    def leaderboard_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        return self.show(request, pk, "admin/results/leaderboard.html", leaderboard_context)

    def agreement_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        return self.show(request, pk, "admin/results/agreement.html", agreement_context)

    @admin.action(description="Download ratings of the selected campaign (JSON Lines)")
    def download_ratings(self, request: HttpRequest, queryset: QuerySet[CampaignReport]) -> HttpResponseBase | None:
        return self.download(request, queryset, "ratings")

    @admin.action(description="Download DPO preference pairs of the selected campaign (majority, JSON Lines)")
    def download_dpo(self, request: HttpRequest, queryset: QuerySet[CampaignReport]) -> HttpResponseBase | None:
        return self.download(request, queryset, "dpo")

    def download(
        self, request: HttpRequest, queryset: QuerySet[CampaignReport], dataset: str
    ) -> HttpResponseBase | None:
        """Stream one campaign's export; ask for exactly one campaign."""
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one campaign to download.", messages.WARNING)
            return None
        campaign = queryset.get()
        stream = iter_export(
            campaign, format=dataset, file_type="jsonl", selection=with_exclusions(parse_raters("all"), campaign)
        )
        response = StreamingHttpResponse(stream, content_type=CONTENT_TYPES["jsonl"])
        response["Content-Disposition"] = f'attachment; filename="{campaign.slug}-{dataset}.jsonl"'
        return response
