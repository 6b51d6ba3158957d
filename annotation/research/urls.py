"""Research write API routes, mounted under /api/v1/ (the campaign list and detail are results.urls' routes)."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from annotation.research import api

app_name = "research-write"

CAMPAIGN = "research/campaigns/<slug:slug>/"

urlpatterns: list[URLPattern | URLResolver] = [
    path(CAMPAIGN + "outputs/", api.OutputsUploadApi.as_view(), name="outputs-upload"),
    path(CAMPAIGN + "gold/", api.GoldUploadApi.as_view(), name="gold-upload"),
    path(CAMPAIGN + "imports/<int:job_id>/", api.ImportJobDetailApi.as_view(), name="import-job"),
    path(CAMPAIGN + "comparisons/generate/", api.ComparisonsGenerateApi.as_view(), name="comparisons-generate"),
    path(CAMPAIGN + "annotators/", api.AnnotatorsSetApi.as_view(), name="annotators-set"),
    path(CAMPAIGN + "status/", api.CampaignStatusApi.as_view(), name="status-change"),
]
