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


# --- Annotator status (assignment engine) ---
from django.db.models import QuerySet  # noqa: E402
from django.http import HttpRequest  # noqa: E402

from annotation.models import AnnotatorStatus  # noqa: E402


@admin.register(AnnotatorStatus)
class AnnotatorStatusAdmin(admin.ModelAdmin[AnnotatorStatus]):
    list_display = ["rater", "campaign", "rated_count", "gold_answered", "gold_correct", "paused", "paused_reason"]
    list_filter = ["paused", "campaign"]
    search_fields = ["rater__name"]
    readonly_fields = ["rated_count", "gold_answered", "gold_correct", "paused", "paused_reason", "paused_at"]
    raw_id_fields = ["campaign", "rater"]
    actions = ["resume"]

    @admin.action(description="Resume the selected annotators (clear the pause)")
    def resume(self, request: HttpRequest, queryset: QuerySet[AnnotatorStatus]) -> None:
        resumed = queryset.filter(paused=True).update(paused=False, paused_reason="", paused_at=None)
        self.message_user(request, f"Resumed {resumed} annotator(s).")
