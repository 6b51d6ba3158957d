"""A proxy of Campaign so that the admin lists campaigns with their leaderboard and agreement reports."""

from __future__ import annotations

from django.db import models

from annotation.models import Campaign


class CampaignReport(Campaign):
    class Meta:
        proxy = True
        verbose_name = "campaign report"
        verbose_name_plural = "campaign reports"


class BattleCountSnapshot(models.Model):
    """A campaign's battle counts per rater, model pair (as shown) and outcome, up to a rating id.

    Requests add the ratings past ``max_rating_id`` (a primary-key range scan) instead of re-aggregating every
    rating; a change in PostgreSQL's update/delete counts of the ratings table, or the background refresh,
    recounts from scratch.
    """

    campaign = models.OneToOneField(Campaign, on_delete=models.CASCADE, related_name="+")
    max_rating_id = models.BigIntegerField(default=0)
    changes = models.BigIntegerField(default=0, help_text="Updated plus deleted ratings when last counted.")
    rows = models.JSONField(default=list, help_text="[rater id, left model, right model, winner, count], ...")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"battle counts of campaign #{self.campaign_id}"


class LeaderboardRefresh(models.Model):
    """When a campaign's next background leaderboard refresh is due: one row per campaign, shared by every process.

    A rating that commits before ``due_at`` is covered by the refresh already queued for then; a later one queues
    the next (results.tasks.schedule_refresh), so there is at most one queued refresh per campaign and window.
    """

    campaign = models.OneToOneField(Campaign, on_delete=models.CASCADE, primary_key=True, related_name="+")
    due_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"leaderboard refresh of campaign #{self.campaign_id} due {self.due_at:%Y-%m-%d %H:%M:%S}"
