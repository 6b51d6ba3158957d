"""Annotator HTTP API: one APIView per operation; services do the writes.

Responses never carry a model name, an output id or a comparison id: an annotator sees assignment ids and sides.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation import selectors, services
from annotation.access import access_campaign_for_annotation, access_own_assignment
from annotation.models import Campaign, Rating

CHOICES = ["left", "right", "tie", "both_bad"]


class SideSerializer(serializers.Serializer[Any]):
    text = serializers.CharField()
    html = serializers.CharField(help_text="Sanitised HTML rendered from the markdown text.")


class ProgressSerializer(serializers.Serializer[Any]):
    done = serializers.IntegerField(help_text="Ratings given in this campaign.")
    quota = serializers.IntegerField(allow_null=True, help_text="Most ratings allowed; null for no limit.")
    remaining = serializers.IntegerField(allow_null=True, help_text="quota - done; null for no limit.")
    paused = serializers.BooleanField(help_text="Paused annotators get no more comparisons in this campaign.")


class AssignmentOutputSerializer(serializers.Serializer[Any]):
    assignment = serializers.IntegerField(help_text="Id to rate, skip, undo or renew.")
    prompt = SideSerializer()
    left = SideSerializer()
    right = SideSerializer()
    lease_expires = serializers.DateTimeField()
    progress = ProgressSerializer()


def _lease_response(lease: services.Lease, campaign: Campaign) -> Response:
    if lease.assignment is None:
        return Response(status=status.HTTP_204_NO_CONTENT)
    progress = selectors.progress_from(campaign=campaign, status=lease.status)
    return Response(AssignmentOutputSerializer(selectors.assignment_view(lease.assignment, progress=progress)).data)


class CampaignMineListApi(APIView):
    class AnnotatorCampaignSerializer(serializers.Serializer[Any]):
        id = serializers.IntegerField()
        name = serializers.CharField()
        status = serializers.CharField()
        instructions_html = serializers.CharField()
        progress = ProgressSerializer()
        available = serializers.IntegerField(help_text="Comparisons still open to this annotator (an upper bound).")

    @extend_schema(operation_id="annotator_campaigns_list", responses=AnnotatorCampaignSerializer(many=True))
    def get(self, request: Request) -> Response:
        cards = selectors.my_campaigns(request.user)
        return Response(self.AnnotatorCampaignSerializer(cards, many=True).data)


class AssignmentNextApi(APIView):
    class NextInputSerializer(serializers.Serializer[Any]):
        exclude = serializers.ListField(
            child=serializers.IntegerField(),
            required=False,
            default=list,
            max_length=10,
            help_text="Assignment ids the client already shows (for prefetching the following one).",
        )

    @extend_schema(
        operation_id="assignment_next",
        request=NextInputSerializer,
        responses={
            200: AssignmentOutputSerializer,
            204: OpenApiResponse(description="Nothing left for this annotator (or the campaign is not active)."),
            404: OpenApiResponse(description="Not an annotator of this campaign."),
            409: OpenApiResponse(description="Already holding the most comparisons allowed at once."),
        },
    )
    def post(self, request: Request, campaign_id: int) -> Response:
        data = self.NextInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        campaign = access_campaign_for_annotation(user=request.user, campaign_id=campaign_id)
        lease = services.claim_next(
            campaign=campaign,
            user=request.user,  # type: ignore[arg-type]
            exclude=set(data.validated_data["exclude"]),
        )
        return _lease_response(lease, campaign)


class RatingCreateApi(APIView):
    class RatingInputSerializer(serializers.Serializer[Any]):
        choice = serializers.ChoiceField(choices=CHOICES)
        strength = serializers.IntegerField(required=False, allow_null=True, default=None)
        rationale = serializers.CharField(required=False, allow_blank=True, default="", trim_whitespace=False)
        time_ms = serializers.IntegerField(required=False, allow_null=True, default=None, min_value=0)
        idempotency_key = serializers.CharField(
            required=False,
            allow_blank=True,
            default="",
            max_length=100,
            help_text="Repeat a request with the same key to get the stored rating back (200) instead of a 409.",
        )

    class RatingOutputSerializer(serializers.Serializer[Any]):
        assignment = serializers.IntegerField(source="assignment_id")
        choice = serializers.SerializerMethodField()
        strength = serializers.IntegerField(allow_null=True)
        time_ms = serializers.IntegerField(allow_null=True)
        created_at = serializers.DateTimeField()
        undo_until = serializers.SerializerMethodField()
        progress = serializers.SerializerMethodField()

        @extend_schema_field(ProgressSerializer)
        def get_progress(self, rating: Rating) -> dict[str, Any]:
            return dict(ProgressSerializer(self.context["progress"]).data)

        def get_choice(self, rating: Rating) -> str:
            if rating.verdict != "win":
                return rating.verdict
            return "left" if rating.winner_id == rating.left_output_id else "right"

        def get_undo_until(self, rating: Rating) -> str:
            return (rating.created_at + services.UNDO_WINDOW).isoformat()

    @extend_schema(
        operation_id="rating_create",
        request=RatingInputSerializer,
        parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False)],
        responses={
            201: RatingOutputSerializer,
            200: OpenApiResponse(RatingOutputSerializer, description="Replay of an accepted request."),
            400: OpenApiResponse(description="Field errors: a choice outside the scheme, a missing rationale."),
            404: OpenApiResponse(description="Not your assignment."),
            409: OpenApiResponse(description="The lease expired or the comparison is already rated."),
        },
    )
    def post(self, request: Request, assignment_id: int) -> Response:
        data = self.RatingInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        assignment = access_own_assignment(user=request.user, assignment_id=assignment_id)
        fields = dict(data.validated_data)
        fields["idempotency_key"] = fields["idempotency_key"] or request.headers.get("Idempotency-Key", "")[:100]
        result = services.submit_rating(assignment=assignment, answer=services.RatingInput(**fields))
        code = status.HTTP_201_CREATED if result.created else status.HTTP_200_OK
        progress = selectors.progress_from(campaign=assignment.comparison.campaign, status=result.status)
        return Response(self.RatingOutputSerializer(result.rating, context={"progress": progress}).data, status=code)


class AssignmentSkipApi(APIView):
    @extend_schema(
        operation_id="assignment_skip",
        request=None,
        responses={204: OpenApiResponse(description="Skipped."), 409: OpenApiResponse(description="Not leased.")},
    )
    def post(self, request: Request, assignment_id: int) -> Response:
        assignment = access_own_assignment(user=request.user, assignment_id=assignment_id)
        services.skip_assignment(assignment=assignment)
        return Response(status=status.HTTP_204_NO_CONTENT)


class RatingUndoApi(APIView):
    @extend_schema(
        operation_id="rating_undo",
        request=None,
        responses={
            200: AssignmentOutputSerializer,
            409: OpenApiResponse(description="No rating, or older than 15 seconds."),
        },
    )
    def post(self, request: Request, assignment_id: int) -> Response:
        assignment = access_own_assignment(user=request.user, assignment_id=assignment_id)
        lease = services.undo_rating(assignment=assignment)
        return _lease_response(lease, assignment.comparison.campaign)


class LeaseRenewApi(APIView):
    class LeaseSerializer(serializers.Serializer[Any]):
        assignment = serializers.IntegerField(source="pk")
        lease_expires = serializers.DateTimeField(source="lease_expires_at")

    @extend_schema(
        operation_id="lease_renew",
        request=None,
        responses={200: LeaseSerializer, 409: OpenApiResponse(description="The lease has expired.")},
    )
    def post(self, request: Request, assignment_id: int) -> Response:
        assignment = access_own_assignment(user=request.user, assignment_id=assignment_id)
        assignment = services.renew_lease(assignment=assignment)
        return Response(self.LeaseSerializer(assignment).data)
