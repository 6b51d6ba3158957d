"""Researcher API for rater quality: the rater report of a campaign, and the actions on a rater.

``GET research/campaigns/{slug}/raters/``: per rater its votes, competence, left bias, p-values, gold accuracy,
flags with their reasons, and standing (paused, excluded from results), plus the latest actions of the audit trail.
``POST research/campaigns/{slug}/raters/actions/``: pause, resume, exclude or include one rater, with a reason.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.models import RaterAction
from annotation.rater_actions import ACTIONS, MAX_REASON_CHARS, act_on_rater, find_rater
from annotation.research.access import access_campaign_for_change
from evalplatform.api import validated
from evalplatform.jsonbody import BoundedJSONParser
from results.access import access_campaign_results
from results.rater_status import rater_rows
from results.report_slots import one_report_at_a_slot

RECENT_ACTIONS = 50


class RaterRow(serializers.Serializer[Any]):
    rater = serializers.CharField(help_text="The rater as results show it: a name, or an account holder's pseudonym.")
    kind = serializers.CharField(allow_null=True, help_text="human or judge.")
    votes = serializers.IntegerField(help_text="Votes between named models (ties included).")
    competence = serializers.FloatField(allow_null=True, help_text="Dawid-Skene competence (shared comparisons).")
    left_bias = serializers.FloatField(allow_null=True, help_text="Share of decisive votes for the left side.")
    left_p_value = serializers.FloatField(allow_null=True, help_text="Corrected p-value of the left-bias test.")
    p_value = serializers.FloatField(allow_null=True, help_text="Corrected p-value of the fit test (Chatbot Arena's).")
    gold_answered = serializers.IntegerField(help_text="Ratings of gold comparisons.")
    gold_correct = serializers.IntegerField(help_text="Of which agree with the gold answer.")
    gold_accuracy = serializers.FloatField(allow_null=True)
    flagged = serializers.BooleanField()
    reasons = serializers.ListField(child=serializers.CharField())
    paused = serializers.BooleanField(help_text="Gets no new work in this campaign.")
    excluded = serializers.BooleanField(help_text="Left out of this campaign's results.")


class ActionRow(serializers.Serializer[Any]):
    class Meta:
        ref_name = "RaterActionLogEntry"

    rater = serializers.CharField(source="label")
    action = serializers.CharField()
    reason = serializers.CharField()
    actor = serializers.CharField(allow_null=True, source="actor_name")
    created_at = serializers.DateTimeField()


class RaterListApi(APIView):
    class Query(serializers.Serializer[Any]):
        alpha = serializers.FloatField(
            min_value=1e-12, max_value=0.5, default=0.05, help_text="Flag below this corrected p-value."
        )
        correction = serializers.ChoiceField(choices=["bh", "holm"], default="bh", help_text="Multiple testing.")

    class Output(serializers.Serializer[Any]):
        class Meta:
            ref_name = "RaterReport"

        campaign = serializers.CharField()
        alpha = serializers.FloatField()
        correction = serializers.CharField()
        gold_min_answered = serializers.IntegerField()
        gold_min_accuracy = serializers.FloatField()
        n_votes = serializers.IntegerField()
        raters = RaterRow(many=True)
        actions = ActionRow(many=True, help_text=f"The latest {RECENT_ACTIONS} actions on raters, newest first.")

    QUERY = Query()

    @extend_schema(
        parameters=[Query],
        responses={200: Output},
        description="Every rater of the campaign (excluded ones too), most suspect first: the anomalous-rater "
        "tests, Dawid-Skene competence, gold accuracy (flagged below the campaign's gold bar) and standing.",
    )
    @one_report_at_a_slot
    def get(self, request: Request, slug: str) -> Response:
        campaign = access_campaign_results(user=request.user, slug=slug)
        options = validated(self.QUERY, request.query_params.dict())
        report = rater_rows(campaign, alpha=options["alpha"], correction=options["correction"])
        report["actions"] = recent_actions(campaign.pk)
        return Response(self.Output(report).data)


def recent_actions(campaign_id: int) -> list[dict[str, Any]]:
    """Return the campaign's latest actions on raters, newest first."""
    actions = RaterAction.objects.filter(campaign_id=campaign_id).select_related("rater", "actor")
    return [
        {
            "label": action.rater.pseudonym if action.rater.user_id else action.rater.name,
            "action": action.action,
            "reason": action.reason,
            "actor_name": action.actor.get_username() if action.actor else None,
            "created_at": action.created_at,
        }
        for action in actions[:RECENT_ACTIONS]
    ]


class RaterActionApi(APIView):
    parser_classes = [BoundedJSONParser]

    class Input(serializers.Serializer[Any]):
        class Meta:
            ref_name = "RaterActionInput"

        rater = serializers.CharField(max_length=200, help_text="The rater's name or pseudonym, as the report shows.")
        action = serializers.ChoiceField(choices=list(ACTIONS))
        reason = serializers.CharField(max_length=MAX_REASON_CHARS, help_text="Why: kept in the audit trail.")

    class Output(serializers.Serializer[Any]):
        class Meta:
            ref_name = "RaterActionResult"

        rater = serializers.CharField()
        action = serializers.CharField()
        changed = serializers.BooleanField(help_text="False when the rater already was so (nothing logged).")
        paused = serializers.BooleanField()
        excluded = serializers.BooleanField()

    INPUT = Input()

    @extend_schema(
        request=Input,
        responses={
            200: Output,
            400: OpenApiResponse(description="Field errors."),
            403: OpenApiResponse(description="An annotator of the campaign, or no permission to change campaigns."),
            404: OpenApiResponse(description="No campaign with this slug that you manage, or no such rater in it."),
            409: OpenApiResponse(description="Pausing or resuming a judge (cancel its runs instead)."),
        },
        examples=[
            OpenApiExample(
                "Exclude a flagged rater",
                value={"rater": "rater-3f2a1b9c0d", "action": "exclude", "reason": "always votes left"},
            )
        ],
        description="Pause (no new work, live leases end), resume, exclude from results or include again one "
        "rater of the campaign. Ratings are never deleted; every change is logged with who, when and why.",
    )
    def post(self, request: Request, slug: str) -> Response:
        campaign = access_campaign_for_change(user=request.user, slug=slug)
        data = validated(self.INPUT, request.data)
        rater = find_rater(campaign=campaign, label=data["rater"])
        outcome = act_on_rater(
            campaign=campaign, rater=rater, action=data["action"], reason=data["reason"], actor=request.user
        )
        answer = {
            "rater": data["rater"],
            "action": data["action"],
            "changed": outcome.changed,
            "paused": outcome.status.paused,
            "excluded": outcome.status.excluded,
        }
        return Response(self.Output(answer).data)
