"""Annotator HTTP API: one APIView per operation; services do the writes.

Responses never carry a model name, an output id or a comparison id: an annotator sees assignment ids and sides.
`next` and `rating` are each one function (`next_assignment`, `create_rating`: input in, status and payload out)
served by their APIView and, for token-authenticated requests, by annotation.fastpath in front of Django; the
serializers below document them in the schema and validate the input, the payloads are built as plain dicts.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation import selectors, services
from annotation.access import access_own_assignment
from annotation.selectors import AssignmentView, Progress
from evalplatform.api import validated
from evalplatform.jsonbody import BoundedJSONParser

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

    JSON bodies are parsed with bounded size and depth (evalplatform.jsonbody). The API is documented and
    browsable at /api/docs/.
    """

    renderer_classes = [JSONRenderer]
    parser_classes = [BoundedJSONParser, FormParser, MultiPartParser]


class AssignmentIdField(serializers.IntegerField):
    """An assignment id: a JSON integer (not a string, a float or a boolean) within a bigint's range."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(min_value=1, max_value=2**63 - 1, **kwargs)

    def to_internal_value(self, data: Any) -> int:
        if type(data) is not int:
            self.fail("invalid")
        return int(super().to_internal_value(data))


def _lease_response(lease: services.Lease) -> Response:
    code, payload = lease_payload(lease)
    return Response(payload, status=code)


# The payloads as plain dicts (the serializers' output, checked by the tests): DRF's fields cost more per request
# than the rest of the response. Datetimes go through DRF's field, so they read exactly as before.
_DATETIME = serializers.DateTimeField()


def progress_payload(progress: Progress) -> dict[str, Any]:
    return {"done": progress.done, "quota": progress.quota, "remaining": progress.remaining, "paused": progress.paused}


def assignment_payload(view: AssignmentView) -> dict[str, Any]:
    return {
        "assignment": view.assignment,
        "prompt": {"text": view.prompt.text, "html": view.prompt.html},
        "left": {"text": view.left.text, "html": view.left.html},
        "right": {"text": view.right.text, "html": view.right.html},
        "lease_expires": _DATETIME.to_representation(view.lease_expires),
        "progress": progress_payload(view.progress),
    }


def rating_payload(result: services.RatingResult) -> dict[str, Any]:
    return {
        "assignment": result.assignment_id,
        "choice": result.choice,
        "strength": result.strength,
        "time_ms": result.time_ms,
        "created_at": _DATETIME.to_representation(result.created_at),
        "undo_until": _undo_until(result.created_at),
        "progress": progress_payload(result.progress),
    }


def _undo_until(created_at: datetime) -> str:
    return (created_at + services.UNDO_WINDOW).isoformat()


def lease_payload(lease: services.Lease) -> tuple[int, dict[str, Any] | None]:
    """Return the status and body that show a lease: 200 with the comparison, or 204 when there is none."""
    if lease.shown is None or lease.progress is None:
        return status.HTTP_204_NO_CONTENT, None
    return status.HTTP_200_OK, assignment_payload(selectors.assignment_view(lease.shown, progress=lease.progress))


def next_assignment(*, user: Any, campaign_id: int, data: Any) -> tuple[int, dict[str, Any] | None]:
    """Serve `POST campaigns/{id}/next/` for an authenticated user: validate, claim or renew, show it.

    Raises DRF's ValidationError (400) or a DomainError, as the view would.
    """
    fields = validated(NEXT_INPUT, data)
    return lease_payload(services.claim_next(user=user, campaign_id=campaign_id, exclude=set(fields["exclude"])))


def create_rating(
    *, user: Any, assignment_id: int, data: Any, headers: Mapping[str, str]
) -> tuple[int, dict[str, Any]]:
    """Serve `POST assignments/{id}/rating/` for an authenticated user: 201 (or 200 for a replay) and the rating.

    `headers` are the request's (for `Idempotency-Key`). Raises DRF's ValidationError (400) or a DomainError.
    """
    fields = validated(RATING_INPUT, data)
    fields["idempotency_key"] = fields["idempotency_key"] or headers.get("Idempotency-Key", "")[:100]
    result = services.submit_rating(user=user, assignment_id=assignment_id, answer=services.RatingInput(**fields))
    return (status.HTTP_201_CREATED if result.created else status.HTTP_200_OK), rating_payload(result)


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
            child=AssignmentIdField(),
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
        code, payload = next_assignment(user=request.user, campaign_id=campaign_id, data=request.data)
        return Response(payload, status=code)


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
            return progress_payload(result.progress)

        def get_choice(self, result: services.RatingResult) -> str:
            return result.choice

        def get_undo_until(self, result: services.RatingResult) -> str:
            return _undo_until(result.created_at)

    @extend_schema(
        operation_id="rating_create",
        request=RatingInputSerializer,
        parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False)],
        responses={
            201: RatingOutputSerializer,
            200: OpenApiResponse(RatingOutputSerializer, description="Replay of an accepted request."),
            400: OpenApiResponse(description="Field errors: a choice outside the scheme, a missing rationale."),
            404: OpenApiResponse(description="Not your assignment, or you no longer annotate its campaign."),
            409: OpenApiResponse(
                description="The lease expired, the comparison is already rated, the campaign is not active "
                "(code campaign_not_active) or you are paused in it (code annotator_paused)."
            ),
        },
    )
    def post(self, request: Request, assignment_id: int) -> Response:
        code, payload = create_rating(
            user=request.user, assignment_id=assignment_id, data=request.data, headers=request.headers
        )
        return Response(payload, status=code)


class AssignmentSkipApi(AnnotatorApi):
    @extend_schema(
        operation_id="assignment_skip",
        request=None,
        responses={
            204: OpenApiResponse(description="Skipped."),
            404: OpenApiResponse(description="Not your assignment, or you no longer annotate its campaign."),
            409: OpenApiResponse(description="Not leased, the campaign is not active or you are paused in it."),
        },
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
            404: OpenApiResponse(description="Not your assignment, or you no longer annotate its campaign."),
            409: OpenApiResponse(
                description="No rating, older than 15 seconds, the campaign is not active or you are paused in it."
            ),
        },
    )
    def post(self, request: Request, assignment_id: int) -> Response:
        assignment = access_own_assignment(user=request.user, assignment_id=assignment_id)
        return _lease_response(services.undo_rating(assignment=assignment))


class LeaseRenewApi(AnnotatorApi):
    class LeaseSerializer(serializers.Serializer[Any]):
        assignment = serializers.IntegerField(source="assignment_id")
        lease_expires = serializers.DateTimeField(source="lease_expires_at")

    @extend_schema(
        operation_id="lease_renew",
        request=None,
        responses={
            200: LeaseSerializer,
            404: OpenApiResponse(description="Not your assignment, or you no longer annotate its campaign."),
            409: OpenApiResponse(
                description="The lease has expired, the campaign is not active (code campaign_not_active) or you "
                "are paused in it (code annotator_paused)."
            ),
        },
    )
    def post(self, request: Request, assignment_id: int) -> Response:
        renewed = services.renew_lease(user=request.user, assignment_id=assignment_id)
        return Response(self.LeaseSerializer(renewed).data)


# Shared by every request: DRF deep-copies a serializer's fields for each new instance, which costs more than
# the rest of an annotator's request. These are stateless once built (see evalplatform.api.validated).
NEXT_INPUT = AssignmentNextApi.NextInputSerializer()
RATING_INPUT = RatingCreateApi.RatingInputSerializer()
