"""Researcher pages, mounted under /results/."""

from __future__ import annotations

from django.urls import path

from results import category_views, judge_report_views, rater_views, views

app_name = "results"

urlpatterns = [
    path("", views.campaign_index, name="index"),
    path("<slug:slug>/", views.leaderboard_page, name="leaderboard"),
    path("<slug:slug>/agreement/", views.agreement_page, name="agreement"),
    path("<slug:slug>/categories/", category_views.categories_page, name="categories"),
    path("<slug:slug>/combined/", views.combined_page, name="combined"),
    path("<slug:slug>/raters/", rater_views.raters_page, name="raters"),
    path("<slug:slug>/style/", views.style_leaderboard_page, name="style"),
    path("<slug:slug>/judge-report/", judge_report_views.judge_report_page, name="judge-report"),
]
