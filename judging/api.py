"""Judge API: list judges; start, watch, cancel and resume a campaign's judge runs; read their verdicts.

Scoped like the researcher API: a campaign's owner, its researchers and superusers reach its runs; its annotators
get 403, anyone else 404. Judges are listed without secrets: only the NAME of the variable holding the API key; a
researcher lists and starts runs with their own judges and the operator's only (judging.access).
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import Max, QuerySet
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.models import Campaign
from evalplatform.api import validated
from evalplatform.exceptions import Conflict
from evalplatform.pagination import BoundedPagination
from judging import selectors, services
from judging.access import access_judge_run, access_judges, access_usable_judge
from judging.models import JudgeConfig, JudgeRun, JudgeVerdict
from results.access import access_campaign_results

OUTCOMES = ["A", "B", "tie", "both_bad"]

MAX_RUN_LIMIT = 2**31 - 1  # a run's limit column (PositiveIntegerField): past it the insert fails
MAX_ACTIVE_REPEATS = 20  # stability repeats of one judge going at once on a campaign (manage.py judge --repeat's)
MAX_REPEAT_NUMBER = 32767  # a run's repeat column (PositiveSmallIntegerField)
ACTIVE_STATUSES = (JudgeRun.Status.QUEUED, JudgeRun.Status.RUNNING)


class JudgeListApi(APIView):
    class Output(serializers.Serializer[Any]):
        class Meta:
            ref_name = "Judge"

        id = serializers.IntegerField()
        name = serializers.CharField()
        owner = serializers.CharField(
            source="owner.username", allow_null=True, help_text="Who may change it; null: the operator's judge."
        )
        base_url = serializers.CharField()
        model = serializers.CharField()
        api_key_env = serializers.CharField(help_text="NAME of the workers' environment variable holding the key.")
        template = serializers.CharField()
        system_prompt = serializers.CharField()
        custom_template = serializers.CharField()
        verdict_format = serializers.CharField()
        verdict_pattern = serializers.CharField()
        temperature = serializers.FloatField()
        max_tokens = serializers.IntegerField()
        both_orders = serializers.BooleanField()
        max_concurrency = serializers.IntegerField()
        requests_per_minute = serializers.IntegerField()
        timeout_seconds = serializers.FloatField()
        max_attempts = serializers.IntegerField()
        price_input_per_million = serializers.DecimalField(max_digits=10, decimal_places=4)
        price_output_per_million = serializers.DecimalField(max_digits=10, decimal_places=4)

    @extend_schema(operation_id="judges_list", responses=Output(many=True))
    def get(self, request: Request) -> Response:
        return Response(self.Output(access_judges(user=request.user), many=True).data)


class ProgressOutput(serializers.Serializer[Any]):
    total = serializers.IntegerField(help_text="Verdicts in the run (comparisons x orders).")
    finished = serializers.IntegerField(help_text="done + parse_failed + failed")
    pending = serializers.IntegerField()
    in_flight = serializers.IntegerField(source="claimed", help_text="Claimed by a worker now.")
    done = serializers.IntegerField()
    parse_failed = serializers.IntegerField(help_text="Replies with no readable verdict (kept with their text).")
    failed = serializers.IntegerField()
    from_cache = serializers.IntegerField(help_text="Answered from stored identical calls, not paid again.")


class ConsistencyOutput(serializers.Serializer[Any]):
    pairs = serializers.IntegerField(help_text="Comparisons judged in both orders.")
    consistent = serializers.IntegerField(help_text="Of those, how many name the same winner in both orders.")
    rate = serializers.FloatField(allow_null=True)


class RunOutput(serializers.Serializer[Any]):
    class Meta:
        ref_name = "JudgeRun"

    id = serializers.IntegerField(source="run.id")
    campaign = serializers.CharField(source="run.campaign.slug")
    judge = serializers.CharField(source="run.judge.name")
    status = serializers.CharField(source="run.status")
    limit = serializers.IntegerField(source="run.limit", allow_null=True)
    error = serializers.CharField(source="run.error")
    created_at = serializers.DateTimeField(source="run.created_at")
    started_at = serializers.DateTimeField(source="run.started_at", allow_null=True)
    finished_at = serializers.DateTimeField(source="run.finished_at", allow_null=True)
    config_version = serializers.CharField(source="run.config_version", help_text="The judge's settings version.")
    temperature = serializers.FloatField(source="run.temperature", allow_null=True)
    seed = serializers.IntegerField(source="run.seed", allow_null=True)
    repeat = serializers.IntegerField(source="run.repeat", help_text="0: the rating run; k: the k-th stability repeat.")
    progress = ProgressOutput()
    tokens_in = serializers.IntegerField(source="progress.tokens_in")
    tokens_out = serializers.IntegerField(source="progress.tokens_out")
    cost = serializers.DecimalField(source="progress.cost", max_digits=14, decimal_places=6)
    mean_latency_ms = serializers.FloatField(source="progress.mean_latency_ms", allow_null=True)
    consistency = ConsistencyOutput()


def run_views(runs: list[JudgeRun]) -> list[dict[str, Any]]:
    """Return what RunOutput shows of each run: the run, its progress and its position consistency."""
    consistency = selectors.runs_consistency(runs)
    return [{"run": r, "progress": selectors.progress_of(r), "consistency": consistency[r.pk]} for r in runs]


def run_response(run: JudgeRun, code: int = status.HTTP_200_OK) -> Response:
    return Response(RunOutput(run_views([run])[0]).data, status=code)


def page_of(output: serializers.Serializer[Any], name: str) -> serializers.Serializer[Any]:
    """Return the schema of one limit/offset page of `output` rows, as LimitOffsetPagination returns it."""

    class Page(serializers.Serializer[Any]):
        class Meta:
            ref_name = name

        count = serializers.IntegerField()
        next = serializers.URLField(allow_null=True)
        previous = serializers.URLField(allow_null=True)
        results = output

    return Page()


def paginate(request: Request, view: APIView, rows: QuerySet[Any]) -> tuple[LimitOffsetPagination, list[Any]]:
    paginator = BoundedPagination()
    return paginator, list(paginator.paginate_queryset(rows, request, view=view) or [])


class RunListApi(APIView):
    class Filter(serializers.Serializer[Any]):
        status = serializers.ChoiceField(choices=JudgeRun.Status.choices, required=False)

    class Input(serializers.Serializer[Any]):
        class Meta:
            ref_name = "JudgeRunStart"

        judge = serializers.CharField(help_text="The judge's name (see /api/v1/judges/): one you may use.")
        limit = serializers.IntegerField(
            min_value=1, max_value=MAX_RUN_LIMIT, required=False, allow_null=True, help_text="Most comparisons."
        )
        orders = serializers.ChoiceField(
            choices=services.ORDERS,
            required=False,
            allow_null=True,
            help_text="both: each output shown first once; one: one order per comparison; default: the judge's.",
        )
        seed = serializers.IntegerField(
            min_value=-(2**63), max_value=2**63 - 1, required=False, allow_null=True, help_text="Sent with each call."
        )
        repeat = serializers.BooleanField(
            default=False,
            help_text="A stability repeat for the judge report: every verdict judged again, bypassing the call cache, "
            "never a rating.",
        )

    @extend_schema(
        operation_id="judge_runs_list",
        parameters=[OpenApiParameter("status", str, enum=JudgeRun.Status.values)],
        responses=page_of(RunOutput(many=True), "PaginatedJudgeRunList"),
    )
    def get(self, request: Request, slug: str) -> Response:
        campaign = access_campaign_results(user=request.user, slug=slug)
        filters = validated(self.Filter(), request.query_params.dict())
        runs = selectors.with_progress(campaign.judge_runs.select_related("campaign", "judge").filter(**filters))
        paginator, page = paginate(request, self, runs.order_by("-created_at", "-id"))
        return paginator.get_paginated_response(RunOutput(run_views(page), many=True).data)

    @extend_schema(
        operation_id="judge_runs_create",
        request=Input,
        responses={
            201: RunOutput,
            400: OpenApiResponse(description="Field errors: unknown judge, bad limit..."),
            409: OpenApiResponse(description="repeat: the judge's repeats on the campaign are at their bound."),
        },
    )
    def post(self, request: Request, slug: str) -> Response:
        campaign = access_campaign_results(user=request.user, slug=slug)
        data = validated(self.Input(), request.data)
        judge = access_usable_judge(user=request.user, name=data["judge"])
        user = request.user if request.user.is_authenticated else None
        with transaction.atomic():
            if data["repeat"]:
                check_repeat_allowed(judge=judge, campaign=campaign)
            run = services.start_run(
                campaign=campaign, judge=judge, limit=data.get("limit"), orders=data.get("orders"),
                requested_by=user, seed=data.get("seed"), repeat=data["repeat"],
            )  # fmt: skip
        run.refresh_from_db(fields=["status", "finished_at"])  # a run with nothing new to judge ended on commit
        return run_response(run, status.HTTP_201_CREATED)


def check_repeat_allowed(*, judge: JudgeConfig, campaign: Campaign) -> None:
    """Raise Conflict on ``repeat`` when the judge already has MAX_ACTIVE_REPEATS stability repeats going on the
    campaign, or has used every repeat number; hold the judge's row so that concurrent requests count each other.

    Each repeat judges every verdict again, bypassing the call cache, at the judge's owner's (or the operator's)
    expense: without a bound one request after another queued them without end.
    """
    JudgeConfig.objects.select_for_update().filter(pk=judge.pk).first()
    runs = JudgeRun.objects.filter(judge=judge)
    active = runs.filter(campaign=campaign, repeat__gt=0, status__in=ACTIVE_STATUSES).count()
    if active >= MAX_ACTIVE_REPEATS:
        raise Conflict(
            f"repeat: {judge.name} already has {active} stability repeats running on {campaign.slug}; wait for them "
            f"to finish or cancel some (at most {MAX_ACTIVE_REPEATS} at a time)",
            field="repeat",
        )
    if (runs.aggregate(last=Max("repeat"))["last"] or 0) >= MAX_REPEAT_NUMBER:
        raise Conflict(f"repeat: {judge.name} has used all {MAX_REPEAT_NUMBER} repeat numbers", field="repeat")


class RunDetailApi(APIView):
    @extend_schema(operation_id="judge_runs_retrieve", responses=RunOutput)
    def get(self, request: Request, slug: str, run_id: int) -> Response:
        return run_response(access_judge_run(user=request.user, slug=slug, run_id=run_id))


class RunCancelApi(APIView):
    @extend_schema(
        operation_id="judge_runs_cancel",
        request=None,
        responses={200: RunOutput, 409: OpenApiResponse(description="The run is not running.")},
    )
    def post(self, request: Request, slug: str, run_id: int) -> Response:
        run = access_judge_run(user=request.user, slug=slug, run_id=run_id)
        return run_response(services.cancel_run(run=run))


class RunResumeApi(APIView):
    class Input(serializers.Serializer[Any]):
        class Meta:
            ref_name = "JudgeRunResume"

        retry_failed = serializers.BooleanField(default=False, help_text="Also judge failed verdicts again.")

    @extend_schema(
        operation_id="judge_runs_resume",
        request=Input,
        responses={200: RunOutput, 409: OpenApiResponse(description="The run has nothing left to judge.")},
    )
    def post(self, request: Request, slug: str, run_id: int) -> Response:
        run = access_judge_run(user=request.user, slug=slug, run_id=run_id)
        data = validated(self.Input(), request.data)
        return run_response(services.resume_run(run=run, retry_failed=data["retry_failed"]))


class VerdictListApi(APIView):
    class Filter(serializers.Serializer[Any]):
        state = serializers.ChoiceField(choices=JudgeVerdict.State.choices, required=False)
        outcome = serializers.ChoiceField(choices=OUTCOMES, required=False)
        parse_failed = serializers.BooleanField(required=False, allow_null=True, default=None)

    class Output(serializers.Serializer[Any]):
        class Meta:
            ref_name = "JudgeVerdict"

        id = serializers.IntegerField()
        comparison_id = serializers.IntegerField()
        order = serializers.CharField(help_text="ab: the comparison's output_a shown as A; ba: output_b shown as A.")
        state = serializers.CharField()
        outcome = serializers.SerializerMethodField(help_text="A, B, tie or both_bad, as the judge saw the pair.")
        strength = serializers.SerializerMethodField()
        label = serializers.SerializerMethodField(help_text="The verdict label read from the reply.")  # type: ignore[assignment]
        probability = serializers.FloatField(
            allow_null=True, help_text="P(the answer shown first is better): probability templates only."
        )
        shown_first_output_id = serializers.IntegerField(source="shown_first_id")
        winner_output_id = serializers.SerializerMethodField()
        attempts = serializers.IntegerField()
        reason = serializers.CharField(help_text="Why it failed or could not be parsed, or the last transient error.")
        raw_response = serializers.CharField()
        tokens_in = serializers.IntegerField()
        tokens_out = serializers.IntegerField()
        latency_ms = serializers.IntegerField(allow_null=True)
        cost = serializers.DecimalField(max_digits=12, decimal_places=6)
        cached = serializers.BooleanField()
        finished_at = serializers.DateTimeField(allow_null=True)

        def get_outcome(self, verdict: JudgeVerdict) -> str | None:
            return verdict.parsed.get("outcome") if verdict.parsed else None

        def get_strength(self, verdict: JudgeVerdict) -> int | None:
            return verdict.parsed.get("strength") if verdict.parsed else None

        def get_label(self, verdict: JudgeVerdict) -> str | None:
            return verdict.parsed.get("label") if verdict.parsed else None

        def get_winner_output_id(self, verdict: JudgeVerdict) -> int | None:
            outcome = self.get_outcome(verdict)
            if outcome not in ("A", "B"):
                return None
            a, b = verdict.comparison.output_a_id, verdict.comparison.output_b_id
            shown_first, shown_second = (a, b) if verdict.order == JudgeVerdict.Order.AB else (b, a)
            return shown_first if outcome == "A" else shown_second

    @extend_schema(
        operation_id="judge_run_verdicts_list",
        parameters=[
            OpenApiParameter("state", str, enum=JudgeVerdict.State.values),
            OpenApiParameter("outcome", str, enum=OUTCOMES),
            OpenApiParameter("parse_failed", bool),
        ],
        responses=page_of(Output(many=True), "PaginatedJudgeVerdictList"),
    )
    def get(self, request: Request, slug: str, run_id: int) -> Response:
        run = access_judge_run(user=request.user, slug=slug, run_id=run_id)
        filters = validated(self.Filter(), request.query_params.dict())
        paginator, page = paginate(request, self, selectors.run_verdicts(run, **filters))
        return paginator.get_paginated_response(self.Output(page, many=True).data)
