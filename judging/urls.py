"""Judge API routes, mounted under /api/v1/ beside the researcher API."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from judging import api, panel_api

RUNS = "research/campaigns/<slug:slug>/judge-runs/"
RUN = RUNS + "<int:run_id>/"
PANEL_RUNS = "research/campaigns/<slug:slug>/panel-runs/"
PANEL_RUN = PANEL_RUNS + "<int:run_id>/"

urlpatterns: list[URLPattern | URLResolver] = [
    path("judges/", api.JudgeListApi.as_view(), name="judge-list"),
    path(RUNS, api.RunListApi.as_view(), name="judge-run-list"),
    path(RUN, api.RunDetailApi.as_view(), name="judge-run-detail"),
    path(RUN + "cancel/", api.RunCancelApi.as_view(), name="judge-run-cancel"),
    path(RUN + "resume/", api.RunResumeApi.as_view(), name="judge-run-resume"),
    path(RUN + "verdicts/", api.VerdictListApi.as_view(), name="judge-verdict-list"),
    path("judge-panels/", panel_api.PanelListApi.as_view(), name="judge-panel-list"),
    path(PANEL_RUNS, panel_api.PanelRunListApi.as_view(), name="panel-run-list"),
    path(PANEL_RUN, panel_api.PanelRunDetailApi.as_view(), name="panel-run-detail"),
    path(PANEL_RUN + "cancel/", panel_api.PanelRunCancelApi.as_view(), name="panel-run-cancel"),
    path(PANEL_RUN + "resume/", panel_api.PanelRunResumeApi.as_view(), name="panel-run-resume"),
]
