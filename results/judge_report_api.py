"""GET /api/v1/judges/<judge>/report/: the judge validation report (results.judge_report) over the API."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from evalplatform.api import validated
from results.judge_report import MAX_BOOTSTRAP, access_judge_report, build_report
from results.report_slots import one_report_at_a_slot


class JudgeReportApi(APIView):
    class Query(serializers.Serializer[Any]):
        campaign = serializers.SlugField(
            required=False, max_length=100, help_text="One campaign (default: every campaign you read the judge rated)."
        )
        bootstrap = serializers.IntegerField(
            min_value=0, max_value=MAX_BOOTSTRAP, default=500, help_text="Bootstrap rounds for the intervals."
        )
        seed = serializers.IntegerField(min_value=0, max_value=2**32 - 1, default=0)

    QUERY = Query()

    @extend_schema(operation_id="judge_report", parameters=[Query], responses=dict)
    @one_report_at_a_slot
    def get(self, request: Request, judge: str) -> Response:
        options = validated(self.QUERY, request.query_params.dict())
        found, campaigns = access_judge_report(user=request.user, judge=judge, campaign=options.get("campaign"))
        return Response(build_report(found, campaigns, bootstrap=options["bootstrap"], seed=options["seed"]))
