"""Admin for judge panels and their runs, scoped as judges and runs (judging.admin).

A researcher lists and runs their own panels and the operator's, changes only their own, and picks members among
the judges they may use; panel runs are those of their campaigns, started through the service.
"""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.contrib import admin
from django.contrib.auth.models import User
from django.db.models import QuerySet
from django.http import HttpRequest

from annotation.admin import CampaignScopedAdmin, visible_campaigns
from annotation.models import Campaign
from evalplatform.exceptions import DomainError
from judging import access, panels, services
from judging.admin import NotFoundOutsideScope
from judging.models import JudgePanel, PanelRun


class JudgePanelForm(forms.ModelForm[JudgePanel]):
    class Meta:
        model = JudgePanel
        fields = ["name", "members", "aggregation", "owner"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if "owner" in self.fields:
            owner = cleaned.get("owner")
        else:
            owner = self.instance.owner if self.instance.pk else getattr(self, "request_user", None)
        try:
            panels.check_panel(
                name=cleaned.get("name") or self.instance.name or "",
                owner=owner,
                members=list(cleaned.get("members") or []),
                aggregation=cleaned.get("aggregation") or "",
            )
        except DomainError as exc:
            self.add_error(exc.field if exc.field in self.fields else None, exc.message)
        return cleaned


@admin.register(JudgePanel)
class JudgePanelAdmin(NotFoundOutsideScope, admin.ModelAdmin[JudgePanel]):
    form = JudgePanelForm
    list_display = ["name", "owner", "aggregation", "member_names", "created_at"]
    search_fields = ["name"]
    filter_horizontal = ["members"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[JudgePanel]:
        return super().get_queryset(request).filter(pk__in=panels.usable_panels(request.user).values("pk"))

    def get_fields(self, request: HttpRequest, obj: JudgePanel | None = None) -> Any:
        """Superusers choose the owner (empty: an operator's panel); a researcher's panels are their own; a panel's
        name is its rater's and stays."""
        fields = ["name", "members", "aggregation"] if obj is None else ["members", "aggregation"]
        return [*fields, "owner"] if request.user.is_superuser else fields

    def get_form(self, request: HttpRequest, obj: JudgePanel | None = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change, **kwargs)
        setattr(form, "request_user", None if request.user.is_superuser else request.user)  # noqa: B010
        return form

    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "members":
            kwargs["queryset"] = access.usable_judges(request.user)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def has_change_permission(self, request: HttpRequest, obj: JudgePanel | None = None) -> bool:
        allowed = super().has_change_permission(request, obj)
        return allowed and (obj is None or panels.may_change_panel(request.user, obj))

    def has_delete_permission(self, request: HttpRequest, obj: JudgePanel | None = None) -> bool:
        return False  # its rater's ratings are results; a panel stays

    def save_model(self, request: HttpRequest, obj: JudgePanel, form: Any, change: bool) -> None:
        """Save through the services, which make the panel's rater."""
        data = form.cleaned_data
        if change:
            stored = JudgePanel.objects.get(pk=obj.pk)
            panels.update_panel(panel=stored, members=list(data["members"]), aggregation=data["aggregation"])
            if request.user.is_superuser and "owner" in data:
                JudgePanel.objects.filter(pk=obj.pk).update(owner=data["owner"])
            return
        owner = data.get("owner") if request.user.is_superuser else cast(User, request.user)
        saved = panels.create_panel(
            name=data["name"], members=list(data["members"]), owner=owner, aggregation=data["aggregation"]
        )
        obj.pk, obj.rater, obj.owner = saved.pk, saved.rater, saved.owner

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        """The members were set by the service."""

    @admin.display(description="members")
    def member_names(self, panel: JudgePanel) -> str:
        return ", ".join(sorted(judge.name for judge in panel.members.all()))


class PanelRunAddForm(forms.ModelForm[PanelRun]):
    orders = forms.ChoiceField(choices=[("", "each judge's own"), *((o, o) for o in services.ORDERS)], required=False)

    class Meta:
        model = PanelRun
        fields = ["campaign", "panel", "limit"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("campaign") and cleaned.get("panel"):
            try:
                panels.check_panel_run(
                    campaign=cleaned["campaign"], panel=cleaned["panel"], limit=cleaned.get("limit"),
                    orders=cleaned.get("orders") or None, user=getattr(self, "request_user", None),
                )  # fmt: skip
            except DomainError as exc:
                self.add_error(exc.field if exc.field in self.fields else None, exc.message)
        return cleaned


@admin.register(PanelRun)
class PanelRunAdmin(NotFoundOutsideScope, CampaignScopedAdmin):
    list_display = ["id", "campaign", "panel", "status", "n_verdicts", "tokens_in", "tokens_out", "cost",
                    "created_at", "finished_at"]  # fmt: skip
    list_filter = ["status"]
    readonly_fields = ["campaign", "panel", "status", "limit", "orders", "requested_by", "error", "n_verdicts",
                       "tokens_in", "tokens_out", "cost", "member_run_links", "created_at", "finished_at"]  # fmt: skip

    def get_queryset(self, request: HttpRequest) -> QuerySet[PanelRun]:
        return super().get_queryset(request).select_related("campaign", "panel")

    def get_form(self, request: HttpRequest, obj: PanelRun | None = None, change: bool = False, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = PanelRunAddForm
        form = super().get_form(request, obj, change, **kwargs)
        setattr(form, "request_user", request.user if request.user.is_authenticated else None)  # noqa: B010
        return form

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "campaign":
            mine = visible_campaigns(request)
            campaigns = Campaign.objects.order_by("name")
            kwargs["queryset"] = campaigns if mine is None else campaigns.filter(pk__in=mine)
        if db_field.name == "panel":
            kwargs["queryset"] = panels.usable_panels(request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_fields(self, request: HttpRequest, obj: PanelRun | None = None) -> Any:
        return ["campaign", "panel", "limit", "orders"] if obj is None else self.readonly_fields

    def get_readonly_fields(self, request: HttpRequest, obj: PanelRun | None = None) -> Any:
        return [] if obj is None else self.readonly_fields

    def save_model(self, request: HttpRequest, obj: PanelRun, form: Any, change: bool) -> None:
        """Start the panel run through the service (member runs, then polling after commit)."""
        if change:
            return
        user = request.user if request.user.is_authenticated else None
        run = panels.start_panel_run(
            campaign=obj.campaign, panel=obj.panel, limit=obj.limit, orders=form.cleaned_data.get("orders") or None,
            requested_by=user,
        )  # fmt: skip
        obj.pk, obj.status = run.pk, run.status

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        """The member runs were set by the service."""

    def has_change_permission(self, request: HttpRequest, obj: PanelRun | None = None) -> bool:
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: PanelRun | None = None) -> bool:
        return False

    @admin.display(description="member runs")
    def member_run_links(self, run: PanelRun) -> str:
        return ", ".join(f"#{r.pk} {r.judge.name} ({r.status})" for r in run.member_runs.select_related("judge"))
