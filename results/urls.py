"""Researcher API routes, mounted under /api/v1/."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from results import api, category_api, judge_report_api, rater_api

app_name = "results-api"

CAMPAIGN = "research/campaigns/<slug:slug>/"

urlpatterns: list[URLPattern | URLResolver] = [
    path("research/campaigns/", api.CampaignListApi.as_view(), name="campaign-list"),
    path(CAMPAIGN, api.CampaignDetailApi.as_view(), name="campaign-detail"),
    path(CAMPAIGN + "comparisons/", api.ComparisonListApi.as_view(), name="comparison-list"),
    path(CAMPAIGN + "ratings/", api.RatingListApi.as_view(), name="rating-list"),
    path(CAMPAIGN + "leaderboard/", api.LeaderboardApi.as_view(), name="leaderboard"),
    path(CAMPAIGN + "categories/", category_api.CategoryListApi.as_view(), name="category-list"),
    path(CAMPAIGN + "agreement/", api.AgreementApi.as_view(), name="agreement"),
    path(CAMPAIGN + "length-controlled/", api.LengthControlledApi.as_view(), name="length-controlled"),
    path(CAMPAIGN + "reproduce/", api.ReproduceApi.as_view(), name="reproduce"),
    path(CAMPAIGN + "raters/", rater_api.RaterListApi.as_view(), name="rater-list"),
    path("judges/<str:judge>/report/", judge_report_api.JudgeReportApi.as_view(), name="judge-report"),
    path(CAMPAIGN + "raters/actions/", rater_api.RaterActionApi.as_view(), name="rater-action"),
    path(
        CAMPAIGN + "export/<str:dataset>.<str:file_type>/manifest/",
        api.ExportManifestApi.as_view(),
        name="export-manifest",
    ),
    path(
        CAMPAIGN + "export/<str:dataset>.<str:file_type>",
        api.ExportDownloadApi.as_view(),
        name="export",
    ),
]
