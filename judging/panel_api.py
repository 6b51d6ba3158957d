"""Judge panel API: list and create panels; start, watch, cancel and resume a campaign's panel runs.

Scoped as judges and runs (judging.api): a researcher lists, creates and runs their own panels and the operator's,
made of judges they may use; a campaign's panel runs are reached by whoever reads its results (annotators 403,
others 404).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from evalplatform.api import validated
from evalplatform.exceptions import NotFound
from judging import panels, services
from judging.access import access_judges, access_usable_judge
from judging.api import MAX_RUN_LIMIT, paginate
from judging.models import JudgePanel, PanelRun
from results.access import access_campaign_results


class PanelOutput(serializers.Serializer[Any]):
    class Meta:
        ref_name = "JudgePanel"

    id = serializers.IntegerField()
    name = serializers.CharField()
    owner = serializers.CharField(
        source="owner.username", allow_null=True, help_text="Who may change it; null: the operator's panel."
    )
    aggregation = serializers.CharField()
    members = serializers.SerializerMethodField(help_text="The member judges' names.")
    created_at = serializers.DateTimeField()

    def get_members(self, panel: JudgePanel) -> list[str]:
        return sorted(judge.name for judge in panel.members.all())


class PanelListApi(APIView):
    class Input(serializers.Serializer[Any]):
        class Meta:
            ref_name = "JudgePanelCreate"

        name = serializers.CharField(max_length=200, help_text="The panel's name, also its rater's.")
        members = serializers.ListField(
            child=serializers.CharField(max_length=200),
            min_length=panels.MIN_MEMBERS,
            max_length=panels.MAX_MEMBERS,
            help_text="Names of judges you may use (see /api/v1/judges/).",
        )
        aggregation = serializers.ChoiceField(
            choices=JudgePanel.Aggregation.choices,
            default=JudgePanel.Aggregation.MAJORITY,
            help_text="majority, or mean_probability (refused unless every member's template yields a probability).",
        )

    @extend_schema(operation_id="judge_panels_list", responses=PanelOutput(many=True))
    def get(self, request: Request) -> Response:
        access_judges(user=request.user)  # researchers only, as for judges
        return Response(PanelOutput(panels.usable_panels(request.user), many=True).data)

    @extend_schema(
        operation_id="judge_panels_create",
        request=Input,
        responses={201: PanelOutput, 400: OpenApiResponse(description="Field errors: unknown member, bad name...")},
    )
    def post(self, request: Request) -> Response:
        access_judges(user=request.user)
        data = validated(self.Input(), request.data)
        members = [access_usable_judge(user=request.user, name=name) for name in data["members"]]
        panel = panels.create_panel(
            name=data["name"], members=members, owner=request.user, aggregation=data["aggregation"]
        )
        return Response(PanelOutput(panel).data, status=status.HTTP_201_CREATED)


class MemberRunOutput(serializers.Serializer[Any]):
    run = serializers.IntegerField()
    judge = serializers.CharField()
    status = serializers.CharField()
    total = serializers.IntegerField()
    finished = serializers.IntegerField()
    done = serializers.IntegerField()
    failed = serializers.IntegerField()
    tokens_in = serializers.IntegerField()
    tokens_out = serializers.IntegerField()
    cost = serializers.DecimalField(max_digits=14, decimal_places=6)


class PanelRunOutput(serializers.Serializer[Any]):
    class Meta:
        ref_name = "PanelRun"

    id = serializers.IntegerField(source="run.id")
    campaign = serializers.CharField(source="run.campaign.slug")
    panel = serializers.CharField(source="run.panel.name")
    aggregation = serializers.CharField(source="run.panel.aggregation")
    status = serializers.CharField(source="run.status")
    limit = serializers.IntegerField(source="run.limit", allow_null=True)
    error = serializers.CharField(source="run.error")
    created_at = serializers.DateTimeField(source="run.created_at")
    finished_at = serializers.DateTimeField(source="run.finished_at", allow_null=True)
    members = MemberRunOutput(many=True, source="progress.members")
    total = serializers.IntegerField(source="progress.total", help_text="The member runs' verdicts.")
    finished = serializers.IntegerField(source="progress.finished")
    n_verdicts = serializers.IntegerField(source="run.n_verdicts", help_text="The panel's verdicts, once finished.")
    tokens_in = serializers.IntegerField(source="progress.tokens_in", help_text="Summed over the member runs.")
    tokens_out = serializers.IntegerField(source="progress.tokens_out")
    cost = serializers.DecimalField(source="progress.cost", max_digits=14, decimal_places=6)
    verdict_tokens_in = serializers.IntegerField(
        source="run.tokens_in", help_text="Summed over the members' verdicts on the panel's verdicts, once finished."
    )
    verdict_tokens_out = serializers.IntegerField(source="run.tokens_out")
    verdict_cost = serializers.DecimalField(source="run.cost", max_digits=14, decimal_places=6)


def panel_run_response(run: PanelRun, code: int = status.HTTP_200_OK) -> Response:
    return Response(PanelRunOutput({"run": run, "progress": panels.panel_progress(run)}).data, status=code)


def access_panel_run(*, user: Any, slug: str, run_id: int) -> PanelRun:
    """Return the campaign's panel run if the user may read the campaign's results (403 annotators, else 404)."""
    campaign = access_campaign_results(user=user, slug=slug)
    run = PanelRun.objects.filter(pk=run_id, campaign=campaign).select_related("campaign", "panel").first()
    if run is None:
        raise NotFound(f"No panel run #{run_id} in campaign {slug!r}.")
    return run


class PanelRunListApi(APIView):
    class Input(serializers.Serializer[Any]):
        class Meta:
            ref_name = "PanelRunStart"

        panel = serializers.CharField(max_length=200, help_text="The panel's name: one you may use.")
        limit = serializers.IntegerField(
            min_value=1, max_value=MAX_RUN_LIMIT, required=False, allow_null=True, help_text="Most comparisons."
        )
        orders = serializers.ChoiceField(
            choices=services.ORDERS, required=False, allow_null=True, help_text="both, one; default: each judge's."
        )

    @extend_schema(operation_id="panel_runs_list", responses=PanelRunOutput(many=True))
    def get(self, request: Request, slug: str) -> Response:
        campaign = access_campaign_results(user=request.user, slug=slug)
        runs = PanelRun.objects.filter(campaign=campaign).select_related("campaign", "panel").order_by("-id")
        paginator, page = paginate(request, self, runs)
        rows = [{"run": run, "progress": panels.panel_progress(run)} for run in page]
        return paginator.get_paginated_response(PanelRunOutput(rows, many=True).data)

    @extend_schema(
        operation_id="panel_runs_create",
        request=Input,
        responses={201: PanelRunOutput, 400: OpenApiResponse(description="Field errors: unknown panel, bad limit.")},
    )
    def post(self, request: Request, slug: str) -> Response:
        campaign = access_campaign_results(user=request.user, slug=slug)
        data = validated(self.Input(), request.data)
        panel = panels.access_usable_panel(user=request.user, name=data["panel"])
        user = request.user if request.user.is_authenticated else None
        run = panels.start_panel_run(
            campaign=campaign, panel=panel, limit=data.get("limit"), orders=data.get("orders"), requested_by=user
        )
        return panel_run_response(run, status.HTTP_201_CREATED)


class PanelRunDetailApi(APIView):
    @extend_schema(operation_id="panel_runs_retrieve", responses=PanelRunOutput)
    def get(self, request: Request, slug: str, run_id: int) -> Response:
        return panel_run_response(access_panel_run(user=request.user, slug=slug, run_id=run_id))


class PanelRunCancelApi(APIView):
    @extend_schema(
        operation_id="panel_runs_cancel",
        request=None,
        responses={200: PanelRunOutput, 409: OpenApiResponse(description="The panel run is not running.")},
    )
    def post(self, request: Request, slug: str, run_id: int) -> Response:
        run = access_panel_run(user=request.user, slug=slug, run_id=run_id)
        return panel_run_response(panels.cancel_panel_run(run=run))


class PanelRunResumeApi(APIView):
    class Input(serializers.Serializer[Any]):
        class Meta:
            ref_name = "PanelRunResume"

        retry_failed = serializers.BooleanField(default=False, help_text="Also judge the members' failed verdicts.")

    @extend_schema(
        operation_id="panel_runs_resume",
        request=Input,
        responses={200: PanelRunOutput, 409: OpenApiResponse(description="The panel run has ended.")},
    )
    def post(self, request: Request, slug: str, run_id: int) -> Response:
        run = access_panel_run(user=request.user, slug=slug, run_id=run_id)
        data = validated(self.Input(), request.data)
        return panel_run_response(panels.resume_panel_run(run=run, retry_failed=data["retry_failed"]))
