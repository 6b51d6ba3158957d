"""A proxy of Campaign so that the admin lists campaigns with their leaderboard and agreement reports."""

from __future__ import annotations

from annotation.models import Campaign


class CampaignReport(Campaign):
    class Meta:
        proxy = True
        verbose_name = "campaign report"
        verbose_name_plural = "campaign reports"
