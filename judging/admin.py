"""Admin for judges, judge runs (start, watch, cancel, resume), verdicts and the call cache.

It also adds the judge action to the campaign admin: annotation knows nothing of judges, judging extends it.
Scoped by judging.access: a researcher lists and uses their own judges and the operator's, changes only their own;
runs, verdicts and stored calls are those of their campaigns, and the filters name only those.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast
from urllib.parse import quote

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join
from django.views.decorators.http import require_POST

from annotation.admin import CampaignAdmin, CampaignScopedAdmin, visible_campaigns
from annotation.models import Campaign
from evalplatform.exceptions import DomainError
from judging import access, selectors, services
from judging.models import JudgeConfig, JudgeRun, JudgeVerdict, LLMCall, ModelFamily


class JudgeConfigForm(forms.ModelForm[JudgeConfig]):
    base_url = forms.URLField(
        max_length=500, assume_scheme="http", help_text="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8001/v1"
    )

    class Meta:
        model = JudgeConfig
        fields = ["name", *services.JUDGE_FIELDS]
        widgets = {"system_prompt": forms.Textarea(attrs={"rows": 4}), "custom_template": forms.Textarea()}

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        candidate = JudgeConfig(**{k: v for k, v in cleaned.items() if k in self.Meta.fields})
        try:
            services.check_judge(candidate)
        except DomainError as exc:
            self.add_error(exc.field if exc.field in self.fields else None, exc.message)
        return cleaned


class NotFoundOutsideScope:
    """Answer 404 for an object outside the user's scope (or gone), where Django's admin would redirect."""

    def _get_obj_does_not_exist_redirect(self, request: HttpRequest, opts: Any, object_id: str) -> HttpResponse:
        raise Http404(f"No {opts.verbose_name} with id {object_id!r} that you may see.")


class OwnRelatedFilter(admin.RelatedOnlyFieldListFilter):
    """A related-object filter naming only objects of rows the user may see (no other team's campaign or judge).

    It reads the rows from the admin's `filter_rows(request)`: the scoped rows without the list's annotations.
    """

    def field_choices(self, field: Any, request: HttpRequest, model_admin: Any) -> Any:
        rows = model_admin.filter_rows(request)
        pk_qs = rows.order_by().values_list(f"{self.field_path}__pk", flat=True).distinct()
        ordering = self.field_admin_ordering(field, request, model_admin)
        return field.get_choices(include_blank=False, limit_choices_to={"pk__in": pk_qs}, ordering=ordering)


ORDER_CHOICES = [
    ("", "The judge's setting"),
    (services.ORDERS_BOTH, "Both orders (each output shown first once)"),
    (services.ORDERS_ONE, "One order per comparison (drawn at random)"),
]


def _campaigns_for(request: HttpRequest) -> QuerySet[Campaign]:
    mine = visible_campaigns(request)
    campaigns = Campaign.objects.order_by("name")
    return campaigns if mine is None else campaigns.filter(pk__in=mine)


class RunOptionsForm(forms.Form):
    # at most what the run's limit column holds: past it the insert failed (a 500)
    limit = forms.IntegerField(
        min_value=1, max_value=2**31 - 1, required=False, help_text="Most comparisons to judge; empty for all."
    )
    orders = forms.ChoiceField(choices=ORDER_CHOICES, required=False)


class CampaignChoiceForm(RunOptionsForm):
    campaign = forms.ModelChoiceField(queryset=Campaign.objects.none())
    field_order = ["campaign", "limit", "orders"]

    def __init__(self, *args: Any, campaigns: QuerySet[Campaign], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["campaign"].queryset = campaigns  # type: ignore[attr-defined]


class JudgeChoiceForm(RunOptionsForm):
    judge = forms.ModelChoiceField(queryset=JudgeConfig.objects.none())
    field_order = ["judge", "limit", "orders"]

    def __init__(self, *args: Any, judges: QuerySet[JudgeConfig], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["judge"].queryset = judges  # type: ignore[attr-defined]


def start_run_for(
    model_admin: admin.ModelAdmin[Any], request: HttpRequest, campaign: Campaign, judge: JudgeConfig,
    options: dict[str, Any],
) -> JudgeRun | None:  # fmt: skip
    """Start a run and say so in a message; say why not when it cannot start."""
    try:
        user = request.user if request.user.is_authenticated else None
        run = services.start_run(
            campaign=campaign, judge=judge, limit=options.get("limit"), orders=options.get("orders") or None,
            requested_by=user,
        )  # fmt: skip
    except DomainError as exc:
        model_admin.message_user(request, f"{judge} on {campaign}: {exc.message}", messages.ERROR)
        return None
    total = run.verdicts.count()
    nothing = "; nothing new: the judge has already judged these comparisons" if not total else ""
    model_admin.message_user(
        request, f"Started run #{run.pk}: {judge} on {campaign}, {total} verdicts{nothing}.", messages.SUCCESS
    )
    return run


def redirect_to_runs(runs: list[JudgeRun]) -> HttpResponseRedirect | None:
    """Go to the run's page when one started, to the list of the runs just started when several did."""
    if len(runs) == 1:
        return HttpResponseRedirect(reverse("admin:judging_judgerun_change", args=[runs[0].pk]))
    if runs:
        ids = ",".join(str(run.pk) for run in runs)
        return HttpResponseRedirect(reverse("admin:judging_judgerun_changelist") + f"?id__in={ids}")
    return None


@admin.register(ModelFamily)
class ModelFamilyAdmin(admin.ModelAdmin[ModelFamily]):
    """Model families are shared by every team (like operators' judges): researchers see them, superusers change
    them; the judge report reads them for its self-preference audit."""

    list_display = ["name", "patterns"]
    search_fields = ["name", "patterns"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_superuser)

    def has_change_permission(self, request: HttpRequest, obj: ModelFamily | None = None) -> bool:
        return bool(request.user.is_superuser)

    def has_delete_permission(self, request: HttpRequest, obj: ModelFamily | None = None) -> bool:
        return bool(request.user.is_superuser)


@admin.register(JudgeConfig)
class JudgeConfigAdmin(NotFoundOutsideScope, admin.ModelAdmin[JudgeConfig]):
    form = JudgeConfigForm
    list_display = ["name", "owner", "model", "base_url", "template", "both_orders", "max_concurrency",
                    "requests_per_minute"]  # fmt: skip
    search_fields = ["name", "model"]
    actions = ["judge_a_campaign"]
    fieldsets = [
        (None, {"fields": ["name", "base_url", "model", "api_key_env", "family"]}),
        ("Prompt", {"fields": ["template", "system_prompt", "custom_template", "verdict_format", "verdict_pattern",
                               "temperature", "max_tokens", "both_orders"]}),
        ("Limits and prices", {"fields": ["max_concurrency", "requests_per_minute", "timeout_seconds", "max_attempts",
                                          "price_input_per_million", "price_output_per_million"]}),
    ]  # fmt: skip

    def get_queryset(self, request: HttpRequest) -> QuerySet[JudgeConfig]:
        return super().get_queryset(request).filter(pk__in=access.usable_judges(request.user).values("pk"))

    def get_fieldsets(self, request: HttpRequest, obj: JudgeConfig | None = None) -> Any:
        """Superusers choose the owner (empty: an operator's judge); a researcher's judges are their own."""
        if not request.user.is_superuser:
            return self.fieldsets
        (title, options), *rest = self.fieldsets
        return [(title, {"fields": [*options["fields"], "owner"]}), *rest]

    def has_change_permission(self, request: HttpRequest, obj: JudgeConfig | None = None) -> bool:
        allowed = super().has_change_permission(request, obj)
        return allowed and (obj is None or access.may_change_judge(request.user, obj))

    def has_delete_permission(self, request: HttpRequest, obj: JudgeConfig | None = None) -> bool:
        allowed = super().has_delete_permission(request, obj)
        return allowed and (obj is None or access.may_change_judge(request.user, obj))

    def save_model(self, request: HttpRequest, obj: JudgeConfig, form: Any, change: bool) -> None:
        """Save through the services, which keep the judge's rater (and its name) and rate limiter."""
        settings = {f: form.cleaned_data[f] for f in services.JUDGE_FIELDS if f in form.cleaned_data}
        superuser = request.user.is_superuser
        owner: User | None = form.cleaned_data.get("owner") if superuser else cast(User, request.user)
        if change:
            stored = JudgeConfig.objects.select_related("rater").get(pk=obj.pk)
            services.update_judge(judge=stored, name=form.cleaned_data["name"], **settings)
            if superuser and "owner" in form.cleaned_data:
                services.set_judge_owner(judge=stored, owner=owner)
            return
        saved = services.create_judge(name=form.cleaned_data["name"], owner=owner, **settings)
        obj.pk, obj.rater, obj.owner = saved.pk, saved.rater, saved.owner

    def get_list_display(self, request: HttpRequest) -> Any:
        """The columns, with position consistency over the verdicts of the user's campaigns only (an operator's
        judge also judges other teams' comparisons)."""
        verdicts = access.visible_verdicts(request.user)

        @admin.display(description="position consistency")
        def position_consistency(judge: JudgeConfig) -> str:
            consistency = selectors.position_consistency(judge, within=verdicts)
            return "-" if consistency.rate is None else f"{consistency.rate:.0%} of {consistency.pairs}"

        return [*self.list_display, position_consistency]

    def has_judge_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("judging.add_judgerun")

    @admin.action(description="Judge a campaign with the selected judges", permissions=["judge"])
    def judge_a_campaign(self, request: HttpRequest, queryset: QuerySet[JudgeConfig]) -> HttpResponse | None:
        data = request.POST if "campaign" in request.POST else None
        form = CampaignChoiceForm(data, campaigns=_campaigns_for(request))
        if form.is_bound and form.is_valid():
            campaign = form.cleaned_data["campaign"]
            runs = [start_run_for(self, request, campaign, judge, form.cleaned_data) for judge in queryset]
            return redirect_to_runs([run for run in runs if run is not None])
        context = {**self.admin_site.each_context(request), "title": "Judge a campaign", "form": form,
                   "judges": queryset, "opts": self.model._meta,
                   "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME}  # fmt: skip
        return TemplateResponse(request, "admin/judging/judge_campaign.html", context)


class JudgingCampaignAdmin(CampaignAdmin):
    """The campaign admin with the judge action (registered in place of annotation's CampaignAdmin)."""

    actions = [*CampaignAdmin.actions, "judge_campaigns"]

    def has_judge_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("judging.add_judgerun")

    @admin.action(description="Judge the selected campaigns with an LLM judge", permissions=["judge"])
    def judge_campaigns(self, request: HttpRequest, queryset: QuerySet[Campaign]) -> HttpResponse | None:
        """Ask for the judge (and a limit, orders), then start one run per campaign and go to the run."""
        data = request.POST if "judge" in request.POST else None
        form = JudgeChoiceForm(data, judges=access.usable_judges(request.user))
        if form.is_bound and form.is_valid():
            judge = form.cleaned_data["judge"]
            runs = [start_run_for(self, request, campaign, judge, form.cleaned_data) for campaign in queryset]
            return redirect_to_runs([run for run in runs if run is not None])
        context = {**self.admin_site.each_context(request), "title": "Judge campaigns with an LLM judge",
                   "form": form, "campaigns": queryset, "opts": self.model._meta,
                   "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME}  # fmt: skip
        return TemplateResponse(request, "admin/judging/judge_campaigns.html", context)


admin.site.unregister(Campaign)
admin.site.register(Campaign, JudgingCampaignAdmin)


class JudgeRunAddForm(forms.ModelForm[JudgeRun]):
    orders = forms.ChoiceField(choices=ORDER_CHOICES, required=False)

    class Meta:
        model = JudgeRun
        fields = ["campaign", "judge", "limit"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("campaign") and cleaned.get("judge"):
            try:
                services.check_run(
                    campaign=cleaned["campaign"], judge=cleaned["judge"], limit=cleaned.get("limit"),
                    orders=cleaned.get("orders") or None,
                )  # fmt: skip
            except DomainError as exc:
                self.add_error(exc.field if exc.field in self.fields else None, exc.message)
        return cleaned


@admin.register(JudgeRun)
class JudgeRunAdmin(NotFoundOutsideScope, CampaignScopedAdmin):
    list_display = ["id", "campaign", "judge", "status", "progress", "judged", "parse_failures", "failures",
                    "in_flight", "tokens", "cost", "mean_latency", "started_at", "finished_at",
                    "short_error"]  # fmt: skip
    list_filter = ["status", ("judge", OwnRelatedFilter), ("campaign", OwnRelatedFilter)]
    actions = ["cancel_runs", "resume_runs", "resume_runs_retrying_failures"]
    readonly_fields = ["campaign", "judge", "status", "limit", "requested_by", "base_url", "model", "api_key_env",
                       "config_version", "temperature", "seed", "repeat", "error", "created_at", "started_at",
                       "finished_at", "summary", "stalled", "recent_errors", "consistency", "verdict_links",
                       "judge_report"]  # fmt: skip
    change_form_template = "admin/judging/judgerun/change_form.html"

    def get_queryset(self, request: HttpRequest) -> QuerySet[JudgeRun]:
        return selectors.with_progress(self.filter_rows(request).select_related("campaign", "judge"))

    def filter_rows(self, request: HttpRequest) -> QuerySet[JudgeRun]:
        """Return the runs of the user's campaigns, without the progress aggregates."""
        return super().get_queryset(request)

    def get_form(self, request: HttpRequest, obj: JudgeRun | None = None, change: bool = False, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = JudgeRunAddForm
        return super().get_form(request, obj, change, **kwargs)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "campaign":
            kwargs["queryset"] = _campaigns_for(request)
        if db_field.name == "judge":
            kwargs["queryset"] = access.usable_judges(request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: JudgeRun | None = None) -> Any:
        return [] if obj is None else self.readonly_fields

    def get_fields(self, request: HttpRequest, obj: JudgeRun | None = None) -> Any:
        return ["campaign", "judge", "limit", "orders"] if obj is None else self.readonly_fields

    def save_model(self, request: HttpRequest, obj: JudgeRun, form: Any, change: bool) -> None:
        """Start the run through the service (verdict rows, tasks after commit)."""
        if change:
            return
        user = request.user if request.user.is_authenticated else None
        orders = form.cleaned_data.get("orders") or None
        run = services.start_run(
            campaign=obj.campaign, judge=obj.judge, limit=obj.limit, orders=orders, requested_by=user
        )
        obj.pk, obj.status, obj.started_at = run.pk, run.status, run.started_at

    def has_delete_permission(self, request: HttpRequest, obj: JudgeRun | None = None) -> bool:
        return False

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view
        # Before the default URLs: their "<path:object_id>/" would swallow these.
        return [
            path("<path:object_id>/cancel/", view(require_POST(self.cancel_view)), name="judging_judgerun_cancel"),
            path("<path:object_id>/resume/", view(require_POST(self.resume_view)), name="judging_judgerun_resume"),
            *super().get_urls(),
        ]

    def render_change_form(
        self, request: HttpRequest, context: dict[str, Any], add: bool = False, change: bool = False,
        form_url: str = "", obj: JudgeRun | None = None,
    ) -> HttpResponse:  # fmt: skip
        if obj is not None:
            context["can_control"] = self.has_change_permission(request, obj)
            context["can_cancel"] = obj.status in (JudgeRun.Status.QUEUED, JudgeRun.Status.RUNNING)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def _run_for_control(self, request: HttpRequest, object_id: str) -> JudgeRun:
        run: JudgeRun | None = self.get_object(request, object_id)
        if run is None:
            raise Http404("No such run.")
        if not self.has_change_permission(request, run):
            raise PermissionDenied
        return run

    def cancel_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Cancel the run (the Cancel button of its page)."""
        self.cancel_runs(request, [self._run_for_control(request, object_id)])
        return HttpResponseRedirect(reverse("admin:judging_judgerun_change", args=[object_id]))

    def resume_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Resume the run, retrying failed verdicts when asked (the Resume buttons of its page)."""
        run = self._run_for_control(request, object_id)
        self._resume(request, [run], retry_failed=request.POST.get("retry_failed") == "1")
        return HttpResponseRedirect(reverse("admin:judging_judgerun_change", args=[object_id]))

    @admin.display(description="progress")
    def progress(self, run: JudgeRun) -> str:
        p = selectors.progress_of(run)
        return f"{p.finished}/{p.total}"

    @admin.display(description="judged")
    def judged(self, run: JudgeRun) -> int:
        return selectors.progress_of(run).done

    @admin.display(description="unparseable")
    def parse_failures(self, run: JudgeRun) -> int:
        return selectors.progress_of(run).parse_failed

    @admin.display(description="failed")
    def failures(self, run: JudgeRun) -> int:
        return selectors.progress_of(run).failed

    @admin.display(description="in flight")
    def in_flight(self, run: JudgeRun) -> int:
        return selectors.progress_of(run).claimed

    @admin.display(description="tokens in/out")
    def tokens(self, run: JudgeRun) -> str:
        p = selectors.progress_of(run)
        return f"{p.tokens_in}/{p.tokens_out}"

    @admin.display(description="cost")
    def cost(self, run: JudgeRun) -> str:
        return f"{selectors.progress_of(run).cost:.4f}"

    @admin.display(description="mean latency")
    def mean_latency(self, run: JudgeRun) -> str:
        latency = selectors.progress_of(run).mean_latency_ms
        return "-" if latency is None else f"{latency:.0f} ms"

    @admin.display(description="error")
    def short_error(self, run: JudgeRun) -> str:
        return run.error if len(run.error) <= 80 else run.error[:80] + "..."

    @admin.display(description="summary")
    def summary(self, run: JudgeRun) -> str:
        p = selectors.progress_of(run)
        return (
            f"{p.finished} of {p.total} verdicts finished: {p.done} judged, {p.parse_failed} unparseable, "
            f"{p.failed} failed; {p.pending} pending, {p.claimed} in flight; {p.from_cache} answered from the "
            f"cache; tokens {p.tokens_in} in / {p.tokens_out} out; cost {p.cost:.4f}; mean latency "
            f"{'-' if p.mean_latency_ms is None else f'{p.mean_latency_ms:.0f} ms'}"
        )

    @admin.display(description="stalled work")
    def stalled(self, run: JudgeRun) -> str:
        expired = selectors.run_health(run, current=services.now()).expired_claims
        if run.status != JudgeRun.Status.RUNNING or not expired:
            return "-"
        return f"{expired} verdict(s) claimed by a worker whose lease ended (did it die?): resume the run."

    @admin.display(description="recent errors")
    def recent_errors(self, run: JudgeRun) -> str:
        errors = selectors.recent_errors(run)
        if not errors:
            return "-"
        return format_html_join("\n", "<div>{} x {}</div>", ((n, reason) for reason, n in errors))

    @admin.display(description="position consistency")
    def consistency(self, run: JudgeRun) -> str:
        c = selectors.position_consistency(run.judge, run=run)
        if c.rate is None:
            return "no comparison judged in both orders yet"
        inconsistent = c.pairs - c.consistent
        return f"{c.rate:.1%}: {c.consistent} of {c.pairs} comparisons agree across orders, {inconsistent} do not"

    @admin.display(description="verdicts")
    def verdict_links(self, run: JudgeRun) -> str:
        url = reverse("admin:judging_judgeverdict_changelist")
        return format_html(
            '<a href="{}?run__id__exact={}">all</a> · <a href="{}?run__id__exact={}&state__exact=parse_failed">'
            'unparseable</a> · <a href="{}?run__id__exact={}&state__exact=failed">failed</a> · '
            '<a href="{}?run__id__exact={}&inconsistent=yes">inconsistent</a>',
            url, run.pk, url, run.pk, url, run.pk, url, run.pk,
        )  # fmt: skip

    @admin.display(description="judge report")
    def judge_report(self, run: JudgeRun) -> str:
        url = reverse("results:judge-report", args=[run.campaign.slug])
        return format_html(
            '<a href="{}?judge={}">{} on {}</a>', url, quote(run.judge.name), run.judge, run.campaign.slug
        )

    @admin.action(description="Cancel the selected runs")
    def cancel_runs(self, request: HttpRequest, queryset: Iterable[JudgeRun]) -> None:
        for run in queryset:
            try:
                services.cancel_run(run=run)
            except DomainError as exc:
                self.message_user(request, exc.message, messages.WARNING)
            else:
                self.message_user(request, f"Cancelled run #{run.pk}.", messages.SUCCESS)

    @admin.action(description="Resume the selected runs")
    def resume_runs(self, request: HttpRequest, queryset: QuerySet[JudgeRun]) -> None:
        self._resume(request, queryset, retry_failed=False)

    @admin.action(description="Resume the selected runs, retrying failed verdicts")
    def resume_runs_retrying_failures(self, request: HttpRequest, queryset: QuerySet[JudgeRun]) -> None:
        self._resume(request, queryset, retry_failed=True)

    def _resume(self, request: HttpRequest, runs: Iterable[JudgeRun], *, retry_failed: bool) -> None:
        for run in runs:
            try:
                services.resume_run(run=run, retry_failed=retry_failed)
            except DomainError as exc:
                self.message_user(request, exc.message, messages.WARNING)
            else:
                retrying = ", retrying failures" if retry_failed else ""
                self.message_user(request, f"Resumed run #{run.pk}{retrying}.", messages.SUCCESS)


class InconsistentFilter(admin.SimpleListFilter):
    title = "orders disagree"
    parameter_name = "inconsistent"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Inconsistent across orders")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() != "yes":
            return queryset
        ids: set[tuple[int, int]] = set()
        for judge in JudgeConfig.objects.filter(pk__in=queryset.values("judge")):
            ids |= {(judge.pk, c) for c in selectors.position_consistency(judge).inconsistent_comparison_ids}
        condition = Q(pk__in=[])
        for judge_id, comparison_id in ids:
            condition |= Q(judge_id=judge_id, comparison_id=comparison_id)
        return queryset.filter(condition)


@admin.register(JudgeVerdict)
class JudgeVerdictAdmin(NotFoundOutsideScope, CampaignScopedAdmin):
    campaign_path = "comparison__campaign"
    list_display = ["id", "judge", "comparison", "order", "state", "label", "attempts", "tokens_in", "tokens_out",
                    "latency_ms", "cost", "cached", "short_reason"]  # fmt: skip
    list_filter = ["state", InconsistentFilter, "cached", ("judge", OwnRelatedFilter), ("run", OwnRelatedFilter)]
    search_fields = ["reason", "raw_response", "request_hash"]
    list_select_related = ["judge", "comparison"]

    def filter_rows(self, request: HttpRequest) -> QuerySet[JudgeVerdict]:
        return self.get_queryset(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: JudgeVerdict | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: JudgeVerdict | None = None) -> bool:
        return False  # a verdict's rating would outlive it and block judging that order again

    @admin.display(description="verdict")
    def label(self, verdict: JudgeVerdict) -> str:
        return str(verdict.parsed.get("label", "")) if verdict.parsed else "-"

    @admin.display(description="reason")
    def short_reason(self, verdict: JudgeVerdict) -> str:
        return verdict.reason if len(verdict.reason) <= 80 else verdict.reason[:80] + "..."


@admin.register(LLMCall)
class LLMCallAdmin(NotFoundOutsideScope, admin.ModelAdmin[LLMCall]):
    list_display = ["request_hash", "model", "finish_reason", "tokens_in", "tokens_out", "latency_ms", "created_at"]
    search_fields = ["request_hash", "model", "text"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[LLMCall]:
        """Return the calls made for verdicts of the user's campaigns (every call for superusers)."""
        calls = super().get_queryset(request)
        return calls if request.user.is_superuser else calls.filter(pk__in=access.visible_llm_calls(request.user))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: LLMCall | None = None) -> bool:
        return request.user.is_superuser  # a stored call answers every team's identical requests

    def has_change_permission(self, request: HttpRequest, obj: LLMCall | None = None) -> bool:
        return False


from judging import panel_admin  # noqa: E402, F401  (the panel admins, registered beside the judges')
