"""Admin for judges, judge runs (start, watch, cancel, resume), verdicts and the call cache."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import Avg, Count, Q, QuerySet, Sum
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from annotation.models import Campaign
from evalplatform.exceptions import DomainError
from judging import selectors, services
from judging.models import JudgeConfig, JudgeRun, JudgeVerdict, LLMCall

_S = JudgeVerdict.State


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


class CampaignChoiceForm(forms.Form):
    campaign = forms.ModelChoiceField(queryset=Campaign.objects.order_by("name"))
    limit = forms.IntegerField(min_value=1, required=False, help_text="Most comparisons to judge; empty for all.")


@admin.register(JudgeConfig)
class JudgeConfigAdmin(admin.ModelAdmin[JudgeConfig]):
    form = JudgeConfigForm
    list_display = ["name", "model", "base_url", "template", "both_orders", "max_concurrency", "requests_per_minute",
                    "position_consistency"]  # fmt: skip
    search_fields = ["name", "model"]
    actions = ["judge_a_campaign"]
    fieldsets = [
        (None, {"fields": ["name", "base_url", "model", "api_key_env"]}),
        ("Prompt", {"fields": ["template", "system_prompt", "custom_template", "verdict_format", "verdict_pattern",
                               "temperature", "max_tokens", "both_orders"]}),
        ("Limits and prices", {"fields": ["max_concurrency", "requests_per_minute", "timeout_seconds", "max_attempts",
                                          "price_input_per_million", "price_output_per_million"]}),
    ]  # fmt: skip

    def save_model(self, request: HttpRequest, obj: JudgeConfig, form: Any, change: bool) -> None:
        """Save through the services, which keep the judge's rater (and its name) and rate limiter."""
        settings = {f: form.cleaned_data[f] for f in services.JUDGE_FIELDS if f in form.cleaned_data}
        if change:
            stored = JudgeConfig.objects.select_related("rater").get(pk=obj.pk)
            services.update_judge(judge=stored, name=form.cleaned_data["name"], **settings)
            return
        saved, _ = services.save_judge(name=form.cleaned_data["name"], **settings)
        obj.pk, obj.rater = saved.pk, saved.rater

    @admin.display(description="position consistency")
    def position_consistency(self, judge: JudgeConfig) -> str:
        consistency = selectors.position_consistency(judge)
        if consistency.rate is None:
            return "-"
        return f"{consistency.rate:.0%} of {consistency.pairs}"

    @admin.action(description="Judge a campaign with the selected judges")
    def judge_a_campaign(self, request: HttpRequest, queryset: QuerySet[JudgeConfig]) -> HttpResponse | None:
        form = CampaignChoiceForm(request.POST if "campaign" in request.POST else None)
        if form.is_bound and form.is_valid():
            for judge in queryset:
                self._start(request, form.cleaned_data["campaign"], judge, form.cleaned_data["limit"])
            return HttpResponseRedirect(reverse("admin:judging_judgerun_changelist"))
        context = {**self.admin_site.each_context(request), "title": "Judge a campaign", "form": form,
                   "judges": queryset, "opts": self.model._meta,
                   "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME}  # fmt: skip
        return TemplateResponse(request, "admin/judging/judge_campaign.html", context)

    def _start(self, request: HttpRequest, campaign: Campaign, judge: JudgeConfig, limit: int | None) -> None:
        try:
            user = request.user if request.user.is_authenticated else None
            run = services.start_run(campaign=campaign, judge=judge, limit=limit, requested_by=user)
        except DomainError as exc:
            self.message_user(request, f"{judge}: {exc.message}", messages.ERROR)
        else:
            self.message_user(request, f"Started run #{run.pk}: {judge} on {campaign}.", messages.SUCCESS)


class JudgeRunAddForm(forms.ModelForm[JudgeRun]):
    class Meta:
        model = JudgeRun
        fields = ["campaign", "judge", "limit"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("campaign") and cleaned.get("judge"):
            try:
                services.check_run(campaign=cleaned["campaign"], judge=cleaned["judge"], limit=cleaned.get("limit"))
            except DomainError as exc:
                self.add_error(exc.field if exc.field in self.fields else None, exc.message)
        return cleaned


@admin.register(JudgeRun)
class JudgeRunAdmin(admin.ModelAdmin[JudgeRun]):
    list_display = ["id", "campaign", "judge", "status", "progress", "judged", "parse_failures", "failures",
                    "in_flight", "tokens", "cost", "mean_latency", "started_at", "finished_at"]  # fmt: skip
    list_filter = ["status", "judge", "campaign"]
    actions = ["cancel_runs", "resume_runs", "resume_runs_retrying_failures"]
    readonly_fields = ["campaign", "judge", "status", "limit", "requested_by", "error", "created_at", "started_at",
                       "finished_at", "summary", "consistency", "verdict_links"]  # fmt: skip
    change_form_template = "admin/judging/judgerun/change_form.html"

    def get_queryset(self, request: HttpRequest) -> QuerySet[JudgeRun]:
        return (
            super()
            .get_queryset(request)
            .select_related("campaign", "judge")
            .annotate(
                n_total=Count("verdicts"),
                n_done=Count("verdicts", filter=Q(verdicts__state=_S.DONE)),
                n_parse_failed=Count("verdicts", filter=Q(verdicts__state=_S.PARSE_FAILED)),
                n_failed=Count("verdicts", filter=Q(verdicts__state=_S.FAILED)),
                n_claimed=Count("verdicts", filter=Q(verdicts__state=_S.CLAIMED)),
                sum_tokens_in=Sum("verdicts__tokens_in", default=0),
                sum_tokens_out=Sum("verdicts__tokens_out", default=0),
                sum_cost=Sum("verdicts__cost", default=Decimal(0)),
                avg_latency=Avg("verdicts__latency_ms", filter=Q(verdicts__cached=False)),
            )
        )

    def get_form(self, request: HttpRequest, obj: JudgeRun | None = None, change: bool = False, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = JudgeRunAddForm
        return super().get_form(request, obj, change, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: JudgeRun | None = None) -> Any:
        return [] if obj is None else self.readonly_fields

    def get_fields(self, request: HttpRequest, obj: JudgeRun | None = None) -> Any:
        return ["campaign", "judge", "limit"] if obj is None else self.readonly_fields

    def save_model(self, request: HttpRequest, obj: JudgeRun, form: Any, change: bool) -> None:
        """Start the run through the service (verdict rows, tasks after commit)."""
        if change:
            return
        user = request.user if request.user.is_authenticated else None
        run = services.start_run(campaign=obj.campaign, judge=obj.judge, limit=obj.limit, requested_by=user)
        obj.pk, obj.status, obj.started_at = run.pk, run.status, run.started_at

    def has_delete_permission(self, request: HttpRequest, obj: JudgeRun | None = None) -> bool:
        return False

    @admin.display(description="progress")
    def progress(self, run: Any) -> str:
        finished = run.n_done + run.n_parse_failed + run.n_failed
        return f"{finished}/{run.n_total}"

    @admin.display(description="judged")
    def judged(self, run: Any) -> int:
        return int(run.n_done)

    @admin.display(description="unparseable")
    def parse_failures(self, run: Any) -> int:
        return int(run.n_parse_failed)

    @admin.display(description="failed")
    def failures(self, run: Any) -> int:
        return int(run.n_failed)

    @admin.display(description="in flight")
    def in_flight(self, run: Any) -> int:
        return int(run.n_claimed)

    @admin.display(description="tokens in/out")
    def tokens(self, run: Any) -> str:
        return f"{run.sum_tokens_in}/{run.sum_tokens_out}"

    @admin.display(description="cost")
    def cost(self, run: Any) -> str:
        return f"{run.sum_cost:.4f}"

    @admin.display(description="mean latency")
    def mean_latency(self, run: Any) -> str:
        return "-" if run.avg_latency is None else f"{run.avg_latency:.0f} ms"

    @admin.display(description="summary")
    def summary(self, run: JudgeRun) -> str:
        p = selectors.run_progress(run)
        return (
            f"{p.finished} of {p.total} verdicts finished: {p.done} judged, {p.parse_failed} unparseable, "
            f"{p.failed} failed; {p.pending} pending, {p.claimed} in flight; {p.from_cache} answered from the "
            f"cache; tokens {p.tokens_in} in / {p.tokens_out} out; cost {p.cost:.4f}; mean latency "
            f"{'-' if p.mean_latency_ms is None else f'{p.mean_latency_ms:.0f} ms'}"
        )

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

    @admin.action(description="Cancel the selected runs")
    def cancel_runs(self, request: HttpRequest, queryset: QuerySet[JudgeRun]) -> None:
        for run in queryset:
            try:
                services.cancel_run(run=run)
            except DomainError as exc:
                self.message_user(request, exc.message, messages.WARNING)
            else:
                self.message_user(request, f"Cancelled run #{run.pk}.", messages.SUCCESS)

    @admin.action(description="Resume the selected runs")
    def resume_runs(self, request: HttpRequest, queryset: QuerySet[JudgeRun]) -> None:
        for run in queryset:
            services.resume_run(run=run)
            self.message_user(request, f"Resumed run #{run.pk}.", messages.SUCCESS)

    @admin.action(description="Resume the selected runs, retrying failed verdicts")
    def resume_runs_retrying_failures(self, request: HttpRequest, queryset: QuerySet[JudgeRun]) -> None:
        for run in queryset:
            services.resume_run(run=run, retry_failed=True)
            self.message_user(request, f"Resumed run #{run.pk}, retrying failures.", messages.SUCCESS)


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
class JudgeVerdictAdmin(admin.ModelAdmin[JudgeVerdict]):
    list_display = ["id", "judge", "comparison", "order", "state", "label", "attempts", "tokens_in", "tokens_out",
                    "latency_ms", "cost", "cached", "short_reason"]  # fmt: skip
    list_filter = ["state", InconsistentFilter, "cached", "judge", "run"]
    search_fields = ["reason", "raw_response", "request_hash"]
    list_select_related = ["judge", "comparison"]

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
class LLMCallAdmin(admin.ModelAdmin[LLMCall]):
    list_display = ["request_hash", "model", "finish_reason", "tokens_in", "tokens_out", "latency_ms", "created_at"]
    search_fields = ["request_hash", "model", "text"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: LLMCall | None = None) -> bool:
        return False
