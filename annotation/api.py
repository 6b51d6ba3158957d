"""Annotator HTTP API: one APIView per operation; services do the writes.

Responses never carry a model name, an output id or a comparison id: an annotator sees assignment ids and sides.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation import selectors, services
from annotation.access import access_own_assignment
from evalplatform.api import validated

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


class AnnotatorApi(APIView):
    """Base of the annotator endpoints: JSON only (the browsable renderer would only add negotiation per request).

    The API is documented and browsable at /api/docs/.
    """

    renderer_classes = [JSONRenderer]


def _lease_response(lease: services.Lease) -> Response:
    if lease.shown is None or lease.progress is None:
        return Response(status=status.HTTP_204_NO_CONTENT)
    view = selectors.assignment_view(lease.shown, progress=lease.progress)
    return Response(ASSIGNMENT_OUTPUT.to_representation(view))


class CampaignMineListApi(AnnotatorApi):
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


class AssignmentNextApi(AnnotatorApi):
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
        data = validated(NEXT_INPUT, request.data)
        lease = services.claim_next(
            user=request.user,  # type: ignore[arg-type]
            campaign_id=campaign_id,
            exclude=set(data["exclude"]),
        )
        return _lease_response(lease)


class RatingCreateApi(AnnotatorApi):
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
        def get_progress(self, result: services.RatingResult) -> dict[str, Any]:
            return dict(PROGRESS_OUTPUT.to_representation(result.progress))

        def get_choice(self, result: services.RatingResult) -> str:
            return result.choice

        def get_undo_until(self, result: services.RatingResult) -> str:
            return (result.created_at + services.UNDO_WINDOW).isoformat()

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
        fields = validated(RATING_INPUT, request.data)
        fields["idempotency_key"] = fields["idempotency_key"] or request.headers.get("Idempotency-Key", "")[:100]
        result = services.submit_rating(
            user=request.user,  # type: ignore[arg-type]
            assignment_id=assignment_id,
            answer=services.RatingInput(**fields),
        )
        code = status.HTTP_201_CREATED if result.created else status.HTTP_200_OK
        return Response(RATING_OUTPUT.to_representation(result), status=code)


class AssignmentSkipApi(AnnotatorApi):
    @extend_schema(
        operation_id="assignment_skip",
        request=None,
        responses={204: OpenApiResponse(description="Skipped."), 409: OpenApiResponse(description="Not leased.")},
    )
    def post(self, request: Request, assignment_id: int) -> Response:
        assignment = access_own_assignment(user=request.user, assignment_id=assignment_id)
        services.skip_assignment(assignment=assignment)
        return Response(status=status.HTTP_204_NO_CONTENT)


class RatingUndoApi(AnnotatorApi):
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
        return _lease_response(services.undo_rating(assignment=assignment))


class LeaseRenewApi(AnnotatorApi):
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


# Shared by every request: DRF deep-copies a serializer's fields for each new instance, which costs more than
# the rest of an annotator's request. These are stateless once built (see evalplatform.api.validated).
NEXT_INPUT = AssignmentNextApi.NextInputSerializer()
RATING_INPUT = RatingCreateApi.RatingInputSerializer()
ASSIGNMENT_OUTPUT = AssignmentOutputSerializer()
RATING_OUTPUT = RatingCreateApi.RatingOutputSerializer()
PROGRESS_OUTPUT = ProgressSerializer()
