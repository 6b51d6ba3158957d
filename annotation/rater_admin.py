"""The admin's side of rater quality: the annotator statuses show the rater report's flags, and four reversible
actions (pause, resume, exclude from results, include again) go through ``annotation.rater_actions``, which logs
each one; the log is a read-only list (``RaterAction``), scoped to the user's campaigns like every other list.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from annotation.admin_scoping import ScopedRelatedFieldListFilter, managed_campaigns
from annotation.models import AnnotatorStatus, RaterAction
from annotation.rater_actions import act_on_statuses
from results.rater_status import flag_summary, rater_rows, rows_by_label

# What an action does, for its message.
DONE = {"pause": "Paused", "resume": "Resumed", "exclude": "Excluded from results", "include": "Included again"}


def public_label(status: AnnotatorStatus) -> str:
    """Return how the status's rater appears in results: its pseudonym if it has an account, else its name."""
    return status.rater.pseudonym if status.rater.user_id else status.rater.name


class ReportRows:
    """The rater report's rows of the campaigns on one page, each campaign's report computed once (per request)."""

    def __init__(self) -> None:
        self.by_campaign: dict[int, dict[str, dict[str, Any]]] = {}

    def row(self, status: AnnotatorStatus) -> dict[str, Any] | None:
        """Return the report row of the status's rater, None when it has no vote between named models."""
        if status.campaign_id not in self.by_campaign:
            self.by_campaign[status.campaign_id] = rows_by_label(rater_rows(status.campaign))
        return self.by_campaign[status.campaign_id].get(public_label(status))


def flag_columns(rows: ReportRows) -> list[Callable[[AnnotatorStatus], Any]]:
    """Return the list columns that show the rater report: flagged, competence, p-value, gold accuracy, reasons."""

    @admin.display(description="flagged", boolean=True)
    def flagged(status: AnnotatorStatus) -> bool | None:
        row = rows.row(status)
        return None if row is None else bool(row["flagged"])

    @admin.display(description="competence")
    def competence(status: AnnotatorStatus) -> str:
        return _figure((rows.row(status) or {}).get("competence"), ".2f")

    @admin.display(description="p-value")
    def p_value(status: AnnotatorStatus) -> str:
        return _figure((rows.row(status) or {}).get("p_value"), ".2g")

    @admin.display(description="gold accuracy")
    def gold_accuracy(status: AnnotatorStatus) -> str:
        if not status.gold_answered:
            return "-"
        return f"{status.gold_correct}/{status.gold_answered} ({status.gold_correct / status.gold_answered:.0%})"

    @admin.display(description="why")
    def why(status: AnnotatorStatus) -> str:
        return flag_summary(rows.row(status))

    return [flagged, competence, p_value, gold_accuracy, why]


def _figure(value: float | None, style: str) -> str:
    return "-" if value is None else format(value, style)


class RaterActionsMixin(admin.ModelAdmin[AnnotatorStatus]):
    """Annotator status list with the rater report's flags and the four logged actions."""

    base_list_display = ["rater", "campaign", "rated_count", "paused", "paused_reason", "excluded"]
    actions = ["pause", "resume", "exclude_from_results", "include_again"]

    def get_list_display(self, request: HttpRequest) -> list[Any]:
        return [*self.base_list_display, *flag_columns(ReportRows())]

    def get_queryset(self, request: HttpRequest) -> QuerySet[AnnotatorStatus]:
        return super().get_queryset(request).select_related("campaign", "rater")

    @admin.action(description="Pause the selected raters (no new work; ratings kept)", permissions=["change"])
    def pause(self, request: HttpRequest, queryset: QuerySet[AnnotatorStatus]) -> None:
        self.act(request, queryset, "pause")

    @admin.action(description="Resume the selected raters", permissions=["change"])
    def resume(self, request: HttpRequest, queryset: QuerySet[AnnotatorStatus]) -> None:
        self.act(request, queryset, "resume")

    @admin.action(description="Exclude the selected raters from results (ratings kept)", permissions=["change"])
    def exclude_from_results(self, request: HttpRequest, queryset: QuerySet[AnnotatorStatus]) -> None:
        self.act(request, queryset, "exclude")

    @admin.action(description="Include the selected raters in results again", permissions=["change"])
    def include_again(self, request: HttpRequest, queryset: QuerySet[AnnotatorStatus]) -> None:
        self.act(request, queryset, "include")

    def act(self, request: HttpRequest, queryset: QuerySet[AnnotatorStatus], action: str) -> None:
        """Apply the action to the selected statuses (already scoped to the user's campaigns), logging each one
        with the rater report's reasons as its why."""
        statuses = list(queryset.select_related("campaign", "rater"))
        rows = ReportRows()
        changed = 0
        for status in statuses:
            reason = f"{DONE[action]} in the admin by {request.user}: {flag_summary(rows.row(status))}"
            if act_on_statuses(statuses=[status], action=action, reason=reason, actor=request.user):
                changed += 1
                self.log_change(request, status, f"{DONE[action]}.")
        skipped = len(statuses) - changed
        note = f" ({skipped} already so, or judges, which are not paused)" if skipped else ""
        self.message_user(request, f"{DONE[action]}: {changed} rater(s){note}.", messages.SUCCESS)


@admin.register(RaterAction)
class RaterActionAdmin(admin.ModelAdmin[RaterAction]):
    """The audit trail of actions on raters: who did what, when and why. Read only."""

    list_display = ["created_at", "campaign", "rater", "action", "actor", "reason"]
    list_filter = ["action", ("campaign", ScopedRelatedFieldListFilter)]
    list_select_related = ["campaign", "rater", "actor"]
    search_fields = ["rater__name", "reason"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[RaterAction]:
        queryset = super().get_queryset(request)
        mine = managed_campaigns(request.user)
        return queryset if mine is None else queryset.filter(campaign__in=mine)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: RaterAction | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: RaterAction | None = None) -> bool:
        return False
