from __future__ import annotations

from django.contrib import admin

from annotation.models import Campaign, Comparison, Output, Prompt, Rater, Rating


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin[Campaign]):
    list_display = ["name", "slug", "status", "label_scheme", "ratings_per_comparison", "owner", "created_at"]
    list_filter = ["status", "label_scheme"]
    prepopulated_fields = {"slug": ["name"]}
    search_fields = ["name", "slug"]


@admin.register(Prompt)
class PromptAdmin(admin.ModelAdmin[Prompt]):
    list_display = ["external_id", "campaign"]
    list_filter = ["campaign"]
    search_fields = ["external_id", "text"]


@admin.register(Output)
class OutputAdmin(admin.ModelAdmin[Output]):
    list_display = ["id", "model_name", "prompt"]
    list_filter = ["model_name"]
    raw_id_fields = ["prompt"]


@admin.register(Comparison)
class ComparisonAdmin(admin.ModelAdmin[Comparison]):
    list_display = ["id", "campaign", "prompt", "output_a", "output_b", "gold_verdict"]
    list_filter = ["campaign"]
    raw_id_fields = ["prompt", "output_a", "output_b", "gold_winner"]


@admin.register(Rater)
class RaterAdmin(admin.ModelAdmin[Rater]):
    list_display = ["name", "kind", "user", "pseudonym"]
    list_filter = ["kind"]
    search_fields = ["name"]


@admin.register(Rating)
class RatingAdmin(admin.ModelAdmin[Rating]):
    list_display = ["id", "comparison", "rater", "verdict", "winner", "source", "created_at"]
    list_filter = ["source", "verdict", "comparison__campaign"]
    raw_id_fields = ["comparison", "rater", "assignment", "winner", "left_output"]
