"""The admin is where researchers set campaigns up: imports with a validation preview, comparisons, status, gold."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib import admin, messages
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db.models import Count, IntegerField, Max, Min, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from annotation import campaign_setup, importers, selectors
from annotation.admin_scoping import (
    ScopedChoicesAdmin,
    ScopedRelatedFieldListFilter,
    managed_campaigns,
    may_edit_rater,
    visible_raters,
)
from annotation.forms import (
    CampaignAdminForm,
    ComparisonAdminForm,
    GenerateComparisonsForm,
    ImportConfirmForm,
    ImportUploadForm,
)
from annotation.importers import jobs as import_jobs
from annotation.importers import staging
from annotation.importers.limits import import_limits
from annotation.models import Campaign, Comparison, ImportJob, Output, Prompt, Rater, Rating
from annotation.rendering import render_markdown
from evalplatform.exceptions import DomainError


@dataclass(frozen=True)
class ImportKind:
    """One kind of file the campaign page can import (annotation.importers.jobs.IMPORTERS parses and stores it)."""

    title: str
    help: str


IMPORT_KINDS = {
    "outputs": ImportKind(
        "Import outputs",
        "Long format: one row per prompt, model and output with prompt_id, prompt, model, output, optional "
        "reference (other keys go to the output's metadata). Wide format: one row per prompt with prompt_id, prompt, "
        "optional reference and one column output:<model> per model (an empty cell: that model has no output).",
    ),
    "battles": ImportKind(
        "Import battles",
        "Chatbot Arena / MT-Bench votes: model_a, model_b, winner (model_a, model_b, tie, tie (bothbad)), optional "
        "judge, question_id, tstamp, conversation_a, conversation_b. Each battle becomes a rating.",
    ),
    "alpaca_eval": ImportKind(
        "Import AlpacaEval annotations",
        "instruction, output_1, output_2, preference (1, 2, 1.5 or 0 for a tie), annotator or annotator_index, "
        "optional generator_1, generator_2. Each row becomes a rating.",
    ),
    "gold": ImportKind(
        "Import gold answers",
        "prompt_id, model_a, model_b, gold (model_a, model_b, tie or both_bad): the known answer of an existing "
        "comparison, for checking annotators. Generate the comparisons first.",
    ),
}


STATUS_VERBS: dict[str, str] = {
    Campaign.Status.ACTIVE: "Open",
    Campaign.Status.PAUSED: "Pause",
    Campaign.Status.CLOSED: "Close",
}


def generation_message(report: campaign_setup.GenerationReport) -> str:
    """Return what a generation did, naming its strategy by its label ("All pairs of models per prompt")."""
    label = Campaign.PairingStrategy(report.strategy).label
    return label + report.describe().removeprefix(report.strategy)


def _user_id(request: HttpRequest) -> int:
    assert request.user.pk is not None  # admin views require a signed-in user
    return int(request.user.pk)


def _count(queryset: QuerySet[Any], group_by: str, aggregate: Any) -> Coalesce:
    """Return a correlated COUNT subquery, so the changelist needs one query however many campaigns it shows."""
    counted = queryset.order_by().values(group_by).annotate(n=aggregate).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


def visible_campaigns(request: HttpRequest) -> QuerySet[Any, Any] | None:
    """Return the campaigns a non-superuser may manage (owner or researcher); None means every campaign."""
    return managed_campaigns(request.user)


class CampaignScopedAdmin(ScopedChoicesAdmin[Any]):
    """Show researchers only the rows of their own campaigns, and offer only those in every form and filter."""

    campaign_path = "campaign"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        queryset = super().get_queryset(request)
        mine = visible_campaigns(request)
        return queryset if mine is None else queryset.filter(**{f"{self.campaign_path}__in": mine})


def with_counts(queryset: QuerySet[Campaign]) -> QuerySet[Campaign]:
    """Return the campaigns with the list's counts, each a correlated subquery (one query for the whole page)."""
    return queryset.annotate(
        prompt_count=_count(Prompt.objects.filter(campaign=OuterRef("pk")), "campaign", Count("id")),
        model_count=_count(
            Output.objects.filter(prompt__campaign=OuterRef("pk")),
            "prompt__campaign",
            Count("model_name", distinct=True),
        ),
        comparison_count=_count(Comparison.objects.filter(campaign=OuterRef("pk")), "campaign", Count("id")),
        rating_count=_count(
            Rating.objects.filter(comparison__campaign=OuterRef("pk")), "comparison__campaign", Count("id")
        ),
        regular_count=_count(
            Comparison.objects.filter(campaign=OuterRef("pk"), gold_verdict__isnull=True), "campaign", Count("id")
        ),
        annotated_count=_count(
            Rating.objects.filter(
                comparison__campaign=OuterRef("pk"),
                comparison__gold_verdict__isnull=True,
                source=Rating.Source.ANNOTATOR,
            ),
            "comparison__campaign",
            Count("id"),
        ),
    )


@admin.register(Campaign)
class CampaignAdmin(ScopedChoicesAdmin[Campaign]):
    form = CampaignAdminForm
    # The slug and the date under the name, and the owner by a display method (the admin keeps a foreign key on
    # one line): the list fits a 1440 px screen beside the navigation and the filters (test_admin_browser.py).
    list_display = [
        "name_and_slug",
        "status",
        "owner_name",
        "prompt_count",
        "model_count",
        "comparison_count",
        "rating_count",
        "annotated",
        "results",
    ]
    list_filter = ["status", "label_scheme"]
    list_select_related = ["owner"]
    prepopulated_fields = {"slug": ["name"]}
    search_fields = ["name", "slug"]
    readonly_fields = ["status", "annotation_progress", "created_at", "updated_at"]
    actions = ["open_campaigns", "pause_campaigns", "close_campaigns"]
    fieldsets = [
        (None, {"fields": ["name", "slug", "status", "annotation_progress", "owner", "instructions"]}),
        ("Labels", {"fields": ["label_scheme", "strength_levels", "require_rationale", "ratings_per_comparison"]}),
        (
            "Pairing",
            {
                "fields": ["pairing_strategy", "pairs_per_prompt", "baseline_model"],
                "description": "The defaults of Generate comparisons (and of the API's and the "
                "generate_comparisons command's). Its page may choose otherwise for one generation: that choice "
                "wins for the comparisons it makes, and these settings stay as they are.",
            },
        ),
        ("Assignments", {"fields": ["lease_seconds", "quota_per_annotator"]}),
        ("Gold pairs", {"fields": ["gold_rate", "gold_min_answered", "gold_min_accuracy"]}),
        ("Who may annotate", {"fields": ["annotator_group", "annotators"]}),
        ("Researchers", {"fields": ["researchers"]}),
        ("History", {"fields": ["created_at", "updated_at"], "classes": ["collapse"]}),
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Campaign]:
        queryset = super().get_queryset(request)
        mine = visible_campaigns(request)
        queryset = queryset if mine is None else queryset.filter(pk__in=mine)
        # The counts are the list's columns: a campaign's own page (and every other view) does without them,
        # which on a campaign of 1,000,000 comparisons is most of a second.
        match = request.resolver_match
        if match is not None and match.url_name == "annotation_campaign_changelist":
            queryset = with_counts(queryset)
        return queryset

    @admin.display(description="name", ordering="name")
    def name_and_slug(self, campaign: Campaign) -> SafeString:
        return format_html(
            '{}<br><span class="quiet">{} &middot; <span style="white-space: nowrap">{}</span></span>',
            campaign.name,
            campaign.slug,
            f"{campaign.created_at:%Y-%m-%d}",
        )

    @admin.display(description="owner", ordering="owner__username")
    def owner_name(self, campaign: Campaign) -> str:
        return campaign.owner.get_username()

    @admin.display(description="prompts", ordering="prompt_count")
    def prompt_count(self, campaign: Any) -> int:
        return int(campaign.prompt_count)

    @admin.display(description="models", ordering="model_count")
    def model_count(self, campaign: Any) -> int:
        return int(campaign.model_count)

    @admin.display(description="comparisons", ordering="comparison_count")
    def comparison_count(self, campaign: Any) -> int:
        return int(campaign.comparison_count)

    @admin.display(description="ratings", ordering="rating_count")
    def rating_count(self, campaign: Any) -> int:
        return int(campaign.rating_count)

    @admin.display(description="annotated", ordering="annotated_count")
    def annotated(self, campaign: Any) -> str:
        """Annotator ratings of the regular comparisons against what the campaign asks for."""
        needed = int(campaign.regular_count) * campaign.ratings_per_comparison
        done = int(campaign.annotated_count)
        return f"{done:,} / {needed:,} ({done / needed:.0%})" if needed else "-"

    @admin.display(description="results")
    def results(self, campaign: Campaign) -> SafeString:
        return format_html('<a href="{}">Results</a>', reverse("results:leaderboard", args=[campaign.slug]))

    @admin.display(description="Annotation progress")
    def annotation_progress(self, campaign: Campaign) -> str:
        return str(selectors.campaign_progress(campaign)) if campaign.pk else "-"

    def get_readonly_fields(self, request: HttpRequest, obj: Campaign | None = None) -> list[str]:
        fields = list(self.readonly_fields)
        if not getattr(request.user, "is_superuser", False):
            fields.append("owner")  # researchers own what they create
        return fields

    def save_model(self, request: HttpRequest, obj: Campaign, form: Any, change: bool) -> None:
        if not change and obj.owner_id is None and isinstance(request.user, User):
            obj.owner = request.user
        super().save_model(request, obj, form, change)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        for warning in selectors.campaign_warnings(form.instance):  # with its people saved
            self.message_user(request, warning, messages.WARNING)

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        initial = super().get_changeform_initial_data(request)
        initial.setdefault("owner", str(request.user.pk))
        return initial

    # Status: actions on the changelist, buttons on the change page; the service enforces the transitions.

    def _change_status(self, request: HttpRequest, queryset: QuerySet[Campaign], status: str) -> None:
        changed = 0
        for campaign in queryset:
            try:
                campaign_setup.change_campaign_status(campaign=campaign, status=status)
                changed += 1
            except DomainError as error:
                self.message_user(request, error.message, messages.ERROR)
        if changed:
            label = Campaign.Status(status).label.lower()
            self.message_user(request, f"{changed} campaign(s) now {label}.", messages.SUCCESS)

    @admin.action(description="Open selected campaigns", permissions=["change"])
    def open_campaigns(self, request: HttpRequest, queryset: QuerySet[Campaign]) -> None:
        self._change_status(request, queryset, Campaign.Status.ACTIVE)

    @admin.action(description="Pause selected campaigns", permissions=["change"])
    def pause_campaigns(self, request: HttpRequest, queryset: QuerySet[Campaign]) -> None:
        self._change_status(request, queryset, Campaign.Status.PAUSED)

    @admin.action(description="Close selected campaigns", permissions=["change"])
    def close_campaigns(self, request: HttpRequest, queryset: QuerySet[Campaign]) -> None:
        self._change_status(request, queryset, Campaign.Status.CLOSED)

    def get_urls(self) -> list[URLPattern]:
        def view(fn: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
            return self.admin_site.admin_view(fn)

        # Before the default URLs: their "<path:object_id>/" would swallow these.
        return [
            path("<path:object_id>/import/<str:kind>/", view(self.import_view), name="annotation_campaign_import"),
            path(
                "<path:object_id>/import/<str:kind>/job/<int:job_id>/",
                view(self.import_job_view),
                name="annotation_campaign_import_job",
            ),
            path("<path:object_id>/generate/", view(self.generate_view), name="annotation_campaign_generate"),
            path("<path:object_id>/status/<str:status>/", view(self.status_view), name="annotation_campaign_status"),
            *super().get_urls(),
        ]

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Campaign | None = None,
    ) -> HttpResponse:
        if obj is not None:
            # Opening needs comparisons (the service refuses it): no button before they exist.
            openable = obj.comparisons.exists()
            context["import_kinds"] = [(kind, spec.title) for kind, spec in IMPORT_KINDS.items()]
            context["next_statuses"] = [
                (status, STATUS_VERBS[status])
                for status in STATUS_VERBS
                if status in campaign_setup.TRANSITIONS[obj.status] and (openable or status != Campaign.Status.ACTIVE)
            ]
            context["campaign_warnings"] = selectors.campaign_warnings(obj)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def _campaign_for_change(self, request: HttpRequest, object_id: str) -> Campaign:
        campaign = self.get_object(request, object_id)
        if campaign is None:
            raise Http404("No such campaign.")
        if not self.has_change_permission(request, campaign):
            raise PermissionDenied
        return campaign

    def _page(
        self, request: HttpRequest, campaign: Campaign, template: str, title: str, **context: Any
    ) -> HttpResponse:
        context.update(
            self.admin_site.each_context(request),
            opts=self.opts,
            original=campaign,
            title=title,
            change_url=reverse("admin:annotation_campaign_change", args=[campaign.pk]),
        )
        return TemplateResponse(request, f"admin/annotation/campaign/{template}", context)

    def import_view(self, request: HttpRequest, object_id: str, kind: str) -> HttpResponse:
        """Upload a file, preview its validation (line errors or a summary), then confirm to store it atomically.

        A file over IMPORT_LIMITS["inline_max_bytes"] is checked, then imported, by a worker: the page follows it.
        """
        campaign = self._campaign_for_change(request, object_id)
        spec = IMPORT_KINDS.get(kind)
        if spec is None:
            raise Http404("No such import.")
        page = {"kind": kind, "spec": spec, "inline_max_mb": import_limits().inline_max_bytes // 1024 // 1024}
        if request.method == "POST" and "token" in request.POST:
            return self._confirm_import(request, campaign, kind, spec, page)
        form = ImportUploadForm(request.POST or None, request.FILES or None)
        if request.method != "POST" or not form.is_valid():
            return self._page(request, campaign, "import.html", spec.title, form=form, **page)
        upload = form.cleaned_data["file"]
        user_id = _user_id(request)
        token = staging.stage_upload(
            name=upload.name, upload=upload, campaign_id=campaign.pk, kind=kind, user_id=user_id
        )
        staged = staging.load_staged(token, campaign_id=campaign.pk, kind=kind, user_id=user_id)
        if not import_jobs.runs_inline(staged.size):
            return self._start_import_job(request, campaign, staged, token, dry_run=True)
        try:
            summary = import_jobs.run_import(
                kind=kind, campaign=campaign, name=staged.name, source=staged.path, dry_run=True
            )
        except importers.ImportRefused as refused:
            staging.discard_staged(token)
            return self._page(
                request, campaign, "import.html", spec.title, form=ImportUploadForm(), refused=refused, **page
            )
        except DomainError as error:
            staging.discard_staged(token)
            return self._page(request, campaign, "import.html", spec.title, form=form, error=error.message, **page)
        confirm = ImportConfirmForm(initial={"token": token})
        return self._page(request, campaign, "import.html", spec.title, summary=summary, confirm=confirm, **page)

    def _confirm_import(
        self, request: HttpRequest, campaign: Campaign, kind: str, spec: ImportKind, page: dict[str, Any]
    ) -> HttpResponse:
        form = ImportConfirmForm(request.POST)
        token = request.POST.get("token", "")
        try:
            if not form.is_valid():
                raise DomainError("the confirmation is missing its upload: upload the file again")
            staged = staging.load_staged(token, campaign_id=campaign.pk, kind=kind, user_id=_user_id(request))
            if not import_jobs.runs_inline(staged.size):
                return self._start_import_job(request, campaign, staged, token, dry_run=False)
            summary = import_jobs.run_import(
                kind=kind, campaign=campaign, name=staged.name, source=staged.path, dry_run=False
            )
        except importers.ImportRefused as refused:
            return self._page(
                request, campaign, "import.html", spec.title, form=ImportUploadForm(), refused=refused, **page
            )
        except DomainError as error:
            upload = ImportUploadForm()
            return self._page(request, campaign, "import.html", spec.title, form=upload, error=error.message, **page)
        staging.discard_staged(token)
        self.log_change(request, campaign, f"{spec.title}: {summary.describe()}")
        self.message_user(request, f"{spec.title}: {summary.describe()}", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:annotation_campaign_change", args=[campaign.pk]))

    def _start_import_job(
        self, request: HttpRequest, campaign: Campaign, staged: staging.StagedFile, token: str, *, dry_run: bool
    ) -> HttpResponse:
        assert isinstance(request.user, User)  # admin views require a signed-in user
        job = import_jobs.start_import_job(
            campaign=campaign, user=request.user, staged=staged, token=token, dry_run=dry_run
        )
        return HttpResponseRedirect(
            reverse("admin:annotation_campaign_import_job", args=[campaign.pk, staged.kind, job.pk])
        )

    def import_job_view(self, request: HttpRequest, object_id: str, kind: str, job_id: int) -> HttpResponse:
        """Follow a background import of the campaign: its progress, then the summary (and Confirm) or the errors."""
        campaign = self._campaign_for_change(request, object_id)
        spec = IMPORT_KINDS.get(kind)
        job = ImportJob.objects.filter(pk=job_id, campaign=campaign, kind=kind).first()
        if spec is None or job is None:
            raise Http404("No such import.")
        context: dict[str, Any] = {"kind": kind, "spec": spec, "job": job}
        if job.status == ImportJob.Status.REFUSED:
            context["refused"] = {"total": job.error_total, "lines": job.errors}
        elif job.status == ImportJob.Status.DONE:
            context["summary"] = import_jobs.job_summary(job)
            # The upload's token is good for the user who sent it only: they alone are offered to confirm.
            mine = job.dry_run and job.user_id == _user_id(request)
            context["confirm"] = ImportConfirmForm(initial={"token": job.token}) if mine else None
        return self._page(request, campaign, "import_job.html", spec.title, **context)

    def generate_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Generate comparisons by strategy; pairs that exist are kept and counted."""
        campaign = self._campaign_for_change(request, object_id)
        models = selectors.campaign_model_names(campaign)
        initial = {
            "strategy": campaign.pairing_strategy,
            "k": campaign.pairs_per_prompt,
            "baseline_model": campaign.baseline_model,
        }
        form = GenerateComparisonsForm(request.POST or None, initial=initial, models=models)
        if request.method == "POST" and form.is_valid():
            try:
                report = campaign_setup.generate_comparisons(campaign=campaign, **form.cleaned_data)
            except DomainError as error:
                form.add_error(error.field if error.field in form.fields else None, error.message)
            else:
                self.log_change(request, campaign, generation_message(report))
                self.message_user(request, generation_message(report), messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:annotation_campaign_change", args=[campaign.pk]))
        return self._page(request, campaign, "generate.html", "Generate comparisons", form=form, models=models)

    def status_view(self, request: HttpRequest, object_id: str, status: str) -> HttpResponse:
        """Confirm, then apply, a status change (open, pause, close)."""
        campaign = self._campaign_for_change(request, object_id)
        if status not in Campaign.Status.values:
            raise Http404("No such status.")
        label = Campaign.Status(status).label
        if request.method == "POST":
            try:
                campaign_setup.change_campaign_status(campaign=campaign, status=status)
            except DomainError as error:
                self.message_user(request, error.message, messages.ERROR)
            else:
                self.log_change(request, campaign, f"Status: {status}")
                self.message_user(request, f"{campaign} is now {label.lower()}.", messages.SUCCESS)
            return HttpResponseRedirect(reverse("admin:annotation_campaign_change", args=[campaign.pk]))
        title = f"{STATUS_VERBS.get(status, 'Change')} {campaign}"
        return self._page(request, campaign, "status.html", title, status=status, label=label)


class RenderedTextAdmin(CampaignScopedAdmin):
    """Store the rendered HTML with the text on every save (the database clears it if the text changes alone)."""

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        obj.html = render_markdown(obj.text)
        super().save_model(request, obj, form, change)


@admin.register(Prompt)
class PromptAdmin(RenderedTextAdmin):
    list_display = ["external_id", "campaign", "short_text"]
    list_filter = [("campaign", ScopedRelatedFieldListFilter)]
    list_select_related = ["campaign"]
    search_fields = ["external_id", "text"]
    autocomplete_fields = ["campaign"]

    def get_readonly_fields(self, request: HttpRequest, obj: Prompt | None = None) -> list[str]:
        # Its outputs and comparisons hang off the campaign too (migration 0002): a prompt stays where it was made.
        return ["campaign"] if obj is not None else []

    @admin.display(description="text")
    def short_text(self, prompt: Prompt) -> str:
        return prompt.text[:100]


@admin.register(Output)
class OutputAdmin(RenderedTextAdmin):
    campaign_path = "prompt__campaign"
    list_display = ["id", "model_name", "prompt"]
    list_filter = ["model_name"]  # AllValuesFieldListFilter reads the scoped get_queryset
    list_select_related = ["prompt"]
    autocomplete_fields = ["prompt"]
    search_fields = ["text", "prompt__external_id"]

    def get_readonly_fields(self, request: HttpRequest, obj: Output | None = None) -> list[str]:
        return ["prompt"] if obj is not None else []  # its comparisons are of its prompt


class ModelFilter(admin.SimpleListFilter):
    """Comparisons in which a model is one of the two sides; the choices are the models of the user's rows."""

    title = "model"
    parameter_name = "model"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        outputs = Output.objects.all()
        mine = visible_campaigns(request)
        if mine is not None:
            outputs = outputs.filter(prompt__campaign__in=mine)
        campaign = request.GET.get("campaign__id__exact", "")
        if campaign.isdigit():
            outputs = outputs.filter(prompt__campaign=int(campaign))
        names = outputs.values_list("model_name", flat=True).distinct().order_by()
        return [(name, name) for name in sorted(name for name in names if name)]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        name = self.value()
        if name:
            return queryset.filter(Q(output_a__model_name=name) | Q(output_b__model_name=name))
        return queryset


class GoldFilter(admin.SimpleListFilter):
    title = "gold"
    parameter_name = "gold"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Gold pairs"), ("no", "Not gold")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() in ("yes", "no"):
            return queryset.filter(gold_verdict__isnull=self.value() == "no")
        return queryset


@admin.register(Comparison)
class ComparisonAdmin(CampaignScopedAdmin):
    """Comparisons come from generation and imports; here researchers set gold answers."""

    form = ComparisonAdminForm
    # Display methods, not the foreign keys, which the admin keeps on one line: the list fits a 1440 px screen.
    list_display = ["id", "campaign_name", "prompt", "side_a", "side_b", "gold"]
    list_filter = [("campaign", ScopedRelatedFieldListFilter), ModelFilter, GoldFilter]
    list_select_related = ["campaign", "prompt", "output_a", "output_b", "gold_winner"]
    search_fields = ["prompt__external_id"]
    search_help_text = "Search by prompt id."
    show_full_result_count = False  # a filtered list counts its own rows, not the whole table's as well
    readonly_fields = ["campaign", "prompt", "output_a", "output_b", "random_key", "created_at"]
    fields = ["campaign", "prompt", "output_a", "output_b", "gold_verdict", "gold_winner", "random_key", "created_at"]
    actions = ["clear_gold"]

    def get_list_display(self, request: HttpRequest) -> list[str | Callable[[Any], str | bool]]:
        columns = list(super().get_list_display(request))
        if "campaign__id__exact" in request.GET:  # one campaign: its name would repeat on every row
            columns.remove("campaign_name")
        return columns

    @admin.display(description="campaign", ordering="campaign__name")
    def campaign_name(self, comparison: Comparison) -> str:
        return comparison.campaign.name

    @admin.display(description="output A", ordering="output_a__model_name")
    def side_a(self, comparison: Comparison) -> str:
        return str(comparison.output_a)

    @admin.display(description="output B", ordering="output_b__model_name")
    def side_b(self, comparison: Comparison) -> str:
        return str(comparison.output_b)

    @admin.display(description="gold", ordering="gold_verdict")
    def gold(self, comparison: Comparison) -> str:
        if comparison.gold_verdict is None:
            return "-"
        verdict = comparison.get_gold_verdict_display()
        return f"{verdict}: {comparison.gold_winner}" if comparison.gold_winner else verdict

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Clear the gold answer of selected comparisons", permissions=["change"])
    def clear_gold(self, request: HttpRequest, queryset: QuerySet[Comparison]) -> None:
        cleared = queryset.update(gold_verdict=None, gold_winner=None)
        self.message_user(request, f"{cleared} comparison(s) are no longer gold.", messages.SUCCESS)


@admin.register(Rater)
class RaterAdmin(ScopedChoicesAdmin[Rater]):
    """Raters seen through the user's campaigns; a researcher renames only imported raters no other team sees."""

    list_display = ["name", "kind", "user", "pseudonym"]
    list_filter = ["kind"]
    list_select_related = ["user"]
    search_fields = ["name"]
    raw_id_fields = ["user"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Rater]:
        queryset = super().get_queryset(request)
        if visible_campaigns(request) is None:
            return queryset
        return queryset.filter(pk__in=visible_raters(request.user).values("pk"))

    def get_readonly_fields(self, request: HttpRequest, obj: Rater | None = None) -> list[str]:
        return [] if getattr(request.user, "is_superuser", False) else ["kind", "user"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Raters come from accounts, judges and imports; a hand-made one would be in no campaign (and its name,
        # unique on the server, would be taken from whoever imports it next).
        return bool(getattr(request.user, "is_superuser", False)) and super().has_add_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: Rater | None = None) -> bool:
        allowed = super().has_change_permission(request, obj)
        return allowed and (obj is None or may_edit_rater(request.user, obj))

    def has_delete_permission(self, request: HttpRequest, obj: Rater | None = None) -> bool:
        allowed = super().has_delete_permission(request, obj)
        return allowed and (obj is None or may_edit_rater(request.user, obj))


class RatingCampaignFilter(ScopedRelatedFieldListFilter):
    """The ratings of one campaign, also bounded by the range of its comparison ids.

    A rating knows its campaign only through its comparison, so PostgreSQL cannot tell where one campaign's ratings
    lie: to fill a page in id order it walked every other campaign's ratings (3.6 s for a campaign of 20,000 in a
    table of 4M), and counted the campaign's with a join over the whole table. The range (the same rows: every
    comparison of the campaign lies in it) lets the page and the count read the index on comparison_id instead.
    """

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any] | None:
        filtered = super().queryset(request, queryset)
        values: list[Any] = list(self.lookup_val or [])
        if filtered is None or len(values) != 1 or not str(values[0]).isdigit():
            return filtered
        bounds = Comparison.objects.filter(campaign_id=int(values[0])).aggregate(low=Min("id"), high=Max("id"))
        if bounds["low"] is None:
            return filtered
        return filtered.filter(comparison_id__gte=bounds["low"], comparison_id__lte=bounds["high"])


@admin.register(Rating)
class RatingAdmin(CampaignScopedAdmin):
    """Ratings are what annotators, judges and imports gave: read (and deleted) here, never written by hand.

    The services that write them check what the admin cannot: the rater's kind, the assignment, the label scheme,
    one rating per annotator and the outputs of the comparison.
    """

    campaign_path = "comparison__campaign"
    list_display = ["id", "comparison", "rater", "verdict", "winner", "source", "created_at"]
    list_filter = ["source", "verdict", ("comparison__campaign", RatingCampaignFilter)]
    list_select_related = ["comparison", "rater", "winner"]
    # A filtered list counts its own rows only: counting the whole table too ("of N") read every rating.
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Rating | None = None) -> bool:
        return False


# --- Annotator status (assignment engine) ---
from annotation.models import AnnotatorStatus  # noqa: E402
from annotation.rater_admin import RaterActionsMixin  # noqa: E402


@admin.register(AnnotatorStatus)
class AnnotatorStatusAdmin(RaterActionsMixin, CampaignScopedAdmin):
    """Each rater's standing in a campaign with the rater report's flags, and the logged actions on it (pause,
    resume, exclude from results, include again: annotation.rater_admin)."""

    list_filter = ["paused", "excluded", ("campaign", ScopedRelatedFieldListFilter)]
    search_fields = ["rater__name"]
    readonly_fields = [
        "campaign",
        "rater",
        "rated_count",
        "gold_answered",
        "gold_correct",
        "paused",
        "paused_reason",
        "paused_at",
        "excluded",
        "excluded_reason",
        "excluded_at",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        # The assignment engine keeps one per annotator and campaign, with counts it derives from the ratings.
        return False
