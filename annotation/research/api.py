"""Research write API: create and change campaigns, upload outputs and gold, generate comparisons, choose
annotators, open / pause / close, follow background imports. Mounted under /api/v1/research/.

Who may: as in the admin, a campaign's owner, its researchers and superusers, with the `annotation.change_campaign`
permission (`annotation.add_campaign` to create); a campaign's annotators get 403, anyone else 404. Creates and
uploads take an `Idempotency-Key` header (annotation.research.idempotency).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from django.contrib.auth.models import User
from django.urls import reverse
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation import campaign_setup
from annotation.forms import ImportUploadForm
from annotation.importers import ImportRefused
from annotation.importers.limits import import_limits
from annotation.models import Campaign, ImportJob
from annotation.research import idempotency, services
from annotation.research.access import access_campaign_creation, access_campaign_for_change
from evalplatform.api import validated
from evalplatform.exceptions import Conflict, DomainError, NotFound
from evalplatform.jsonbody import BodyTooLarge, BoundedJSONParser
from results.access import access_campaign_results

F = TypeVar("F", bound=Callable[..., Any])
KEY_PARAM = OpenApiParameter(
    idempotency.HEADER,
    str,
    OpenApiParameter.HEADER,
    description="Retry safely: a retry with the same key and request gets the first answer (header "
    "Idempotent-Replayed: true) without the work being done again; the same key with another request is a 422. "
    "Kept 24 hours, per user.",
)
DRY_RUN_PARAM = OpenApiParameter(
    "dry_run", bool, description="Check everything and count what would be created; write nothing (200)."
)
ERROR_400 = OpenApiResponse(description="Field errors: {field: [messages]}, or {detail, code}.")
ERROR_403 = OpenApiResponse(description="An annotator of the campaign, or no permission to change campaigns.")
ERROR_404 = OpenApiResponse(description="No campaign with this slug that you manage.")
ERROR_422 = OpenApiResponse(description="The Idempotency-Key was used for a different request.")


def user_of(request: Request) -> User:
    assert isinstance(request.user, User)  # the views require a signed-in user
    return request.user


def digest_of(request: Request, body: Iterator[bytes] | list[bytes]) -> str:
    return idempotency.request_digest(request.method or "", request.path, request.META.get("QUERY_STRING", ""), body)


# --- campaigns ------------------------------------------------------------------------------------------------


class CampaignInput(serializers.Serializer[Any]):
    """Every field of the admin's campaign form; the form's own rules are checked after these types."""

    class Meta:
        ref_name = "ResearchCampaignWrite"

    name = serializers.CharField(max_length=200)
    slug = serializers.SlugField(max_length=100)
    owner = serializers.CharField(max_length=150, required=False, help_text="Username; superusers only.")
    instructions = serializers.CharField(required=False, allow_blank=True, help_text="Markdown.")
    label_scheme = serializers.ChoiceField(choices=Campaign.LabelScheme.choices, required=False)
    strength_levels = serializers.IntegerField(min_value=0, max_value=5, required=False)
    require_rationale = serializers.BooleanField(required=False)
    ratings_per_comparison = serializers.IntegerField(min_value=1, max_value=32767, required=False)
    pairing_strategy = serializers.ChoiceField(choices=Campaign.PairingStrategy.choices, required=False)
    pairs_per_prompt = serializers.IntegerField(min_value=1, max_value=32767, required=False, allow_null=True)
    baseline_model = serializers.CharField(max_length=200, required=False, allow_blank=True)
    lease_seconds = serializers.IntegerField(min_value=30, max_value=2_147_483_647, required=False)
    quota_per_annotator = serializers.IntegerField(
        min_value=0, max_value=2_147_483_647, required=False, allow_null=True
    )
    gold_rate = serializers.FloatField(min_value=0, max_value=1, required=False)
    gold_min_answered = serializers.IntegerField(min_value=0, max_value=32767, required=False)
    gold_min_accuracy = serializers.FloatField(min_value=0, max_value=1, required=False)
    annotator_group = serializers.CharField(
        max_length=150, required=False, allow_null=True, allow_blank=True, help_text="A group's name, or null."
    )
    annotators = serializers.ListField(
        child=serializers.CharField(max_length=150), max_length=1000, required=False, help_text="Usernames."
    )
    researchers = serializers.ListField(
        child=serializers.CharField(max_length=150), max_length=1000, required=False, help_text="Usernames."
    )


class CampaignOutput(serializers.Serializer[Any]):
    class Meta:
        ref_name = "ResearchCampaignSettings"

    slug = serializers.CharField()
    name = serializers.CharField()
    status = serializers.CharField()
    owner = serializers.CharField(source="owner.username")
    instructions = serializers.CharField()
    label_scheme = serializers.CharField()
    strength_levels = serializers.IntegerField()
    require_rationale = serializers.BooleanField()
    ratings_per_comparison = serializers.IntegerField()
    pairing_strategy = serializers.CharField()
    pairs_per_prompt = serializers.IntegerField(allow_null=True)
    baseline_model = serializers.CharField()
    lease_seconds = serializers.IntegerField()
    quota_per_annotator = serializers.IntegerField(allow_null=True)
    gold_rate = serializers.FloatField()
    gold_min_answered = serializers.IntegerField()
    gold_min_accuracy = serializers.FloatField()
    annotator_group = serializers.CharField(source="annotator_group.name", allow_null=True)
    annotators = serializers.SerializerMethodField()
    researchers = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def get_annotators(self, campaign: Campaign) -> list[str]:
        return sorted(campaign.annotators.values_list("username", flat=True))

    def get_researchers(self, campaign: Campaign) -> list[str]:
        return sorted(campaign.researchers.values_list("username", flat=True))


CREATE_EXAMPLE = OpenApiExample(
    "A campaign against a baseline",
    value={
        "name": "Weekly checkpoint",
        "slug": "weekly-2026-49",
        "instructions": "Which answer is more **helpful**?",
        "label_scheme": "three_way",
        "pairing_strategy": "baseline",
        "baseline_model": "gpt-4o",
        "ratings_per_comparison": 3,
        "annotators": ["alice", "bob"],
        "annotator_group": None,
    },
    request_only=True,
)


def campaign_changes(data: Any, *, partial: bool) -> dict[str, Any]:
    """Return the validated campaign fields of a body; unknown fields and `status` are refused by name."""
    if not isinstance(data, dict):
        raise serializers.ValidationError({"non_field_errors": ["Expected a JSON object of campaign fields."]})
    known = set(CampaignInput().fields)
    unknown = {str(name)[:100]: ["Unknown field."] for name in data if name not in known}
    if "status" in data:
        unknown["status"] = ["Set the status with POST .../status/ (open, pause, close)."]
    if unknown:
        raise serializers.ValidationError(unknown)
    serializer = CampaignInput(data=data, partial=partial)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def save_campaign(request: Request, *, campaign: Campaign | None, changes: dict[str, Any]) -> Campaign:
    """Save through the admin's form; its field errors become a 400 shaped like a serializer's."""
    try:
        return services.save_campaign(user=user_of(request), campaign=campaign, changes=changes)
    except services.FieldErrors as refused:
        raise serializers.ValidationError(refused.errors) from refused


class CampaignCreateApi(APIView):
    """POST research/campaigns/ (results.api.CampaignListApi answers the GET of the same path)."""

    parser_classes = [BoundedJSONParser]

    @extend_schema(
        operation_id="research_campaigns_create",
        request=CampaignInput,
        parameters=[KEY_PARAM],
        examples=[CREATE_EXAMPLE],
        responses={201: CampaignOutput, 400: ERROR_400, 403: ERROR_403, 422: ERROR_422},
        description="Create a draft campaign owned by you, with the admin form's rules (usernames must be active "
        "accounts, the group one you belong to or already use, random_k needs pairs_per_prompt, baseline needs "
        "baseline_model).",
    )
    def post(self, request: Request) -> Response:
        access_campaign_creation(user=request.user)
        changes = campaign_changes(request.data, partial=False)

        def work() -> Response:
            campaign = save_campaign(request, campaign=None, changes=changes)
            return Response(CampaignOutput(campaign).data, status=status.HTTP_201_CREATED)

        key = request.headers.get(idempotency.HEADER)
        digest = digest_of(request, [idempotency.json_body(request.data)])
        return idempotency.idempotent(user=user_of(request), key=key, digest=digest, work=work)


class CampaignUpdateApi(APIView):
    """PATCH research/campaigns/{slug}/ (results.api.CampaignDetailApi answers the GET of the same path)."""

    parser_classes = [BoundedJSONParser]

    @extend_schema(
        operation_id="research_campaigns_partial_update",
        request=CampaignInput,
        examples=[
            OpenApiExample("Rename and ask for rationales", value={"name": "Week 49", "require_rationale": True})
        ],
        responses={200: CampaignOutput, 400: ERROR_400, 403: ERROR_403, 404: ERROR_404},
        description="Change the fields given (any of the creation's; the owner by superusers only), with the "
        "admin form's rules applied to the campaign as it would become.",
    )
    def patch(self, request: Request, slug: str) -> Response:
        campaign = access_campaign_for_change(user=request.user, slug=slug)
        changes = campaign_changes(request.data, partial=True)
        campaign = save_campaign(request, campaign=campaign, changes=changes)
        return Response(CampaignOutput(campaign).data)


# --- uploads --------------------------------------------------------------------------------------------------


class RecordsJSONParser(BoundedJSONParser):
    """JSON bodies up to the size the importers check in the request (IMPORT_LIMITS["inline_max_bytes"])."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        self.max_bytes = import_limits().inline_max_bytes
        try:
            return super().parse(stream, media_type, parser_context)
        except BodyTooLarge as error:
            raise BodyTooLarge(f"{error.detail} For more records, send a file (multipart `file`).") from error


class BoundedMultiPartParser(MultiPartParser):
    """Multipart uploads no larger than the admin accepts (IMPORT_LIMITS["max_upload_bytes"]), refused unread."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        request = (parser_context or {}).get("request")
        limit = import_limits().max_upload_bytes + 64 * 1024  # the form's fields and boundaries
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0) if request is not None else 0
        except ValueError:
            length = 0
        if length > limit:
            raise BodyTooLarge(f"Request body larger than {limit} bytes: the largest upload is {limit // 2**20} MB.")
        return super().parse(stream, media_type, parser_context)


class UploadFileInput(serializers.Serializer[Any]):
    class Meta:
        ref_name = "ResearchUploadFile"

    file = serializers.FileField(help_text="JSON Lines, a JSON array or CSV with a header row, UTF-8.")


class RecordsInput(serializers.Serializer[Any]):
    class Meta:
        ref_name = "ResearchUploadRecords"

    records = serializers.ListField(
        child=serializers.JSONField(), allow_empty=False, help_text="The file's records as JSON objects."
    )


class UploadQuery(serializers.Serializer[Any]):
    dry_run = serializers.BooleanField(default=False)


class SummaryOutput(serializers.Serializer[Any]):
    class Meta:
        ref_name = "ResearchImportSummary"

    file = serializers.CharField()
    records = serializers.IntegerField()
    prompts = serializers.IntegerField()
    models = serializers.IntegerField()
    outputs = serializers.IntegerField()
    comparisons = serializers.IntegerField()
    raters = serializers.IntegerField()
    ratings = serializers.IntegerField()
    created = serializers.DictField(child=serializers.IntegerField(), help_text="New rows by kind.")
    campaign_created = serializers.BooleanField()
    dry_run = serializers.BooleanField(help_text="True: nothing was written.")
    description = serializers.CharField(help_text="The summary in one line.")


class JobOutput(serializers.Serializer[Any]):
    class Meta:
        ref_name = "ResearchImportJob"

    id = serializers.IntegerField()
    url = serializers.SerializerMethodField(help_text="Where to follow the job.")
    kind = serializers.CharField()
    file_name = serializers.CharField()
    dry_run = serializers.BooleanField()
    status = serializers.ChoiceField(choices=ImportJob.Status.choices)
    phase = serializers.CharField(help_text="reading or writing, while running.")
    size_bytes = serializers.IntegerField()
    read_bytes = serializers.IntegerField()
    percent = serializers.IntegerField()
    summary = serializers.JSONField(allow_null=True, help_text="When done: what the file holds and what is new.")
    errors = serializers.ListField(  # type: ignore[assignment]
        child=serializers.CharField(), help_text="When refused: the first line errors."
    )
    error_total = serializers.IntegerField()
    message = serializers.CharField(help_text="When failed: why.")
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)

    def get_url(self, job: ImportJob) -> str:
        return reverse("research-write:import-job", args=[job.campaign.slug, job.pk])


class RefusedOutput(serializers.Serializer[Any]):
    class Meta:
        ref_name = "ResearchImportRefused"

    detail = serializers.CharField()
    code = serializers.CharField()
    errors = serializers.ListField(  # type: ignore[assignment]
        child=serializers.CharField(), help_text="file:line: field: problem"
    )
    error_total = serializers.IntegerField()


UPLOAD_EXAMPLES = [
    OpenApiExample(
        "Outputs as JSON records (long format)",
        value={
            "records": [
                {"prompt_id": "p1", "prompt": "What is 2+2?", "model": "gpt-4o", "output": "4"},
                {"prompt_id": "p1", "prompt": "What is 2+2?", "model": "llama-3", "output": "Four."},
            ]
        },
        request_only=True,
        media_type="application/json",
    ),
    OpenApiExample(
        "Imported",
        value={
            "file": "records.jsonl",
            "records": 2,
            "prompts": 1,
            "models": 2,
            "outputs": 2,
            "comparisons": 0,
            "raters": 0,
            "ratings": 0,
            "created": {"prompts": 1, "outputs": 2},
            "campaign_created": False,
            "dry_run": False,
            "description": "records.jsonl: 2 records: 1 prompts, 2 models, 2 outputs; created 1 prompts, 2 outputs",
        },
        response_only=True,
        status_codes=["201"],
    ),
    OpenApiExample(
        "Refused",
        value={
            "detail": "refused: 1 error(s), nothing was written",
            "code": "import_refused",
            "errors": ["outputs.jsonl:3: output: missing"],
            "error_total": 1,
        },
        response_only=True,
        status_codes=["400"],
    ),
]


def upload_schema(kind: str, what: str) -> Callable[[F], F]:
    return extend_schema(
        operation_id=f"research_campaigns_{kind}_upload",
        request={"multipart/form-data": UploadFileInput, "application/json": RecordsInput},
        parameters=[DRY_RUN_PARAM, KEY_PARAM],
        examples=UPLOAD_EXAMPLES if kind == "outputs" else [],
        responses={
            200: OpenApiResponse(SummaryOutput, description="A dry run: what would be created."),
            201: SummaryOutput,
            202: OpenApiResponse(JobOutput, description="A file over 5 MB: imported by a worker; follow `url`."),
            400: OpenApiResponse(RefusedOutput, description="Every bad line (the first 1,000), or field errors."),
            403: ERROR_403,
            404: ERROR_404,
            413: OpenApiResponse(description="Larger than the importers accept."),
            422: ERROR_422,
        },
        description=f"Import {what}: a multipart `file` in any importer format (docs/guide.md, 'Importers'), or a JSON "
        "body {\"records\": [...]} (record N is line N of 'records.jsonl'). The same atomic importer as the admin: "
        "a refused file writes nothing. Files over IMPORT_LIMITS['inline_max_bytes'] (5 MB) are checked and "
        "imported by a worker (202 with the job to follow).",
    )


def read_upload(request: Request) -> tuple[str, Any, int, list[bytes] | Iterator[bytes]]:
    """Return the upload's name, content (an uploaded file or bytes), size and body parts for its digest."""
    if request.content_type.startswith("multipart/"):
        form = ImportUploadForm(files=request.FILES)
        if not form.is_valid():
            messages = [str(message) for message in form.errors.get("file") or ["Upload a file."]]
            raise serializers.ValidationError({"file": messages})
        upload = form.cleaned_data["file"]
        name = str(upload.name)[-200:]
        return name, upload, int(upload.size), _chunks(name, upload)
    data = validated(RecordsInput(), request.data)
    content = services.records_file(data["records"])
    return "records.jsonl", content, len(content), [content]


def _chunks(name: str, upload: Any) -> Iterator[bytes]:
    yield name.encode() + b"\n"
    upload.seek(0)
    yield from upload.chunks()


def upload_response(request: Request, campaign: Campaign, kind: str) -> Response:
    """Parse the upload, then import it under the request's Idempotency-Key; 400 with the bad lines if refused."""
    dry_run = validated(UploadQuery(), request.query_params.dict())["dry_run"]
    name, upload, size, parts = read_upload(request)

    def work() -> Response:
        try:
            outcome = services.import_upload(
                user=user_of(request),
                campaign=campaign,
                kind=kind,
                name=name,
                upload=upload,
                size=size,
                dry_run=dry_run,
            )
        except ImportRefused as refused:
            body = {
                "detail": f"refused: {refused.total:,} error(s), nothing was written",
                "code": "import_refused",
                "errors": refused.lines,
                "error_total": refused.total,
            }
            return Response(body, status=status.HTTP_400_BAD_REQUEST)
        if outcome.job is not None:
            return Response(JobOutput(outcome.job).data, status=status.HTTP_202_ACCEPTED)
        assert outcome.summary is not None
        summary = {**dataclasses.asdict(outcome.summary), "description": outcome.summary.describe()}
        return Response(SummaryOutput(summary).data, status=200 if dry_run else status.HTTP_201_CREATED)

    key = request.headers.get(idempotency.HEADER)
    return idempotency.idempotent(user=user_of(request), key=key, digest=digest_of(request, parts), work=work)


class OutputsUploadApi(APIView):
    parser_classes = [RecordsJSONParser, BoundedMultiPartParser]

    @upload_schema("outputs", "outputs (prompts and model answers)")
    def post(self, request: Request, slug: str) -> Response:
        campaign = access_campaign_for_change(user=request.user, slug=slug)
        return upload_response(request, campaign, "outputs")


class GoldUploadApi(APIView):
    parser_classes = [RecordsJSONParser, BoundedMultiPartParser]

    @upload_schema("gold", "gold answers (prompt_id, model_a, model_b, gold) of existing comparisons")
    def post(self, request: Request, slug: str) -> Response:
        campaign = access_campaign_for_change(user=request.user, slug=slug)
        return upload_response(request, campaign, "gold")


class ImportJobDetailApi(APIView):
    @extend_schema(operation_id="research_campaigns_imports_retrieve", responses={200: JobOutput, 404: ERROR_404})
    def get(self, request: Request, slug: str, job_id: int) -> Response:
        campaign = access_campaign_results(user=request.user, slug=slug)
        job = ImportJob.objects.select_related("campaign").filter(pk=job_id, campaign=campaign).first()
        if job is None:
            raise NotFound("No such import.")
        return Response(JobOutput(job).data)


# --- comparisons, annotators, status --------------------------------------------------------------------------


class ComparisonsGenerateApi(APIView):
    parser_classes = [BoundedJSONParser]

    class Input(serializers.Serializer[Any]):
        class Meta:
            ref_name = "ResearchGenerateComparisons"

        strategy = serializers.ChoiceField(
            choices=Campaign.PairingStrategy.choices, required=False, help_text="Default: the campaign's."
        )
        k = serializers.IntegerField(
            min_value=1, max_value=32767, required=False, allow_null=True, help_text="Pairs per prompt (random_k)."
        )
        baseline_model = serializers.CharField(
            max_length=200, required=False, allow_blank=True, allow_null=True, help_text="For the baseline strategy."
        )
        seed = serializers.IntegerField(
            min_value=-(2**63), max_value=2**63 - 1, required=False, allow_null=True, help_text="Reproducible draws."
        )

    class Output(serializers.Serializer[Any]):
        class Meta:
            ref_name = "ResearchGenerationReport"

        strategy = serializers.CharField()
        created = serializers.IntegerField()
        existing = serializers.IntegerField(help_text="Pairs that were already there (kept).")
        prompts = serializers.IntegerField()
        skipped_prompts = serializers.DictField(child=serializers.CharField(), help_text="Prompt id: why.")
        description = serializers.CharField()

    @extend_schema(
        operation_id="research_campaigns_comparisons_generate",
        request=Input,
        parameters=[KEY_PARAM],
        examples=[OpenApiExample("Three random pairs per prompt", value={"strategy": "random_k", "k": 3, "seed": 7})],
        responses={201: Output, 400: ERROR_400, 403: ERROR_403, 404: ERROR_404, 422: ERROR_422},
        description="Create comparisons by strategy (default: the campaign's pairing settings). Existing pairs are "
        "kept and counted, so it is safe to run again after importing more outputs. A closed campaign is a 400.",
    )
    def post(self, request: Request, slug: str) -> Response:
        campaign = access_campaign_for_change(user=request.user, slug=slug)
        data = validated(self.Input(), request.data)

        def work() -> Response:
            report = services.generate_comparisons(
                campaign=campaign,
                strategy=data.get("strategy"),
                k=data.get("k"),
                baseline_model=data.get("baseline_model"),
                seed=data.get("seed"),
            )
            body = {**dataclasses.asdict(report), "description": report.describe()}
            return Response(self.Output(body).data, status=status.HTTP_201_CREATED)

        key = request.headers.get(idempotency.HEADER)
        digest = digest_of(request, [idempotency.json_body(request.data)])
        return idempotency.idempotent(user=user_of(request), key=key, digest=digest, work=work)


class AnnotatorsSetApi(APIView):
    parser_classes = [BoundedJSONParser]

    class Input(serializers.Serializer[Any]):
        class Meta:
            ref_name = "ResearchAnnotators"

        users = serializers.ListField(
            child=serializers.CharField(max_length=150), max_length=1000, help_text="Usernames of active accounts."
        )
        group = serializers.CharField(
            max_length=150, allow_null=True, allow_blank=True, help_text="A group's name, or null for none."
        )

    class Output(serializers.Serializer[Any]):
        class Meta:
            ref_name = "ResearchAnnotatorsSet"

        users = serializers.ListField(child=serializers.CharField())
        group = serializers.CharField(allow_null=True)

    @extend_schema(
        operation_id="research_campaigns_annotators_update",
        request=Input,
        examples=[OpenApiExample("Two people and a team", value={"users": ["alice", "bob"], "group": "Raters"})],
        responses={200: Output, 400: ERROR_400, 403: ERROR_403, 404: ERROR_404},
        description="Replace who may annotate: exactly these accounts, and the members of this group (one you "
        "belong to or already use on your campaigns).",
    )
    def put(self, request: Request, slug: str) -> Response:
        campaign = access_campaign_for_change(user=request.user, slug=slug)
        data = validated(self.Input(), request.data)
        services.set_annotators(user=request.user, campaign=campaign, usernames=data["users"], group=data["group"])
        users = sorted(campaign.annotators.values_list("username", flat=True))
        group = campaign.annotator_group.name if campaign.annotator_group else None
        return Response(self.Output({"users": users, "group": group}).data)


class CampaignStatusApi(APIView):
    parser_classes = [BoundedJSONParser]

    class Input(serializers.Serializer[Any]):
        class Meta:
            ref_name = "ResearchCampaignStatus"

        status = serializers.ChoiceField(
            choices=[Campaign.Status.ACTIVE, Campaign.Status.PAUSED, Campaign.Status.CLOSED],
            help_text="active: open (or resume); paused; closed (final).",
        )

    class Output(serializers.Serializer[Any]):
        class Meta:
            ref_name = "ResearchCampaignStatusSet"

        slug = serializers.CharField()
        status = serializers.CharField()

    @extend_schema(
        operation_id="research_campaigns_status_create",
        request=Input,
        examples=[OpenApiExample("Open", value={"status": "active"})],
        responses={
            200: Output,
            400: ERROR_400,
            403: ERROR_403,
            404: ERROR_404,
            409: OpenApiResponse(description="Not allowed from the current status, or no comparisons to open with."),
        },
        description="Open, pause or close: draft -> active (needs a comparison), active <-> paused, active or "
        "paused -> closed (final).",
    )
    def post(self, request: Request, slug: str) -> Response:
        campaign = access_campaign_for_change(user=request.user, slug=slug)
        wanted = validated(self.Input(), request.data)["status"]
        try:
            campaign = campaign_setup.change_campaign_status(campaign=campaign, status=wanted)
        except DomainError as refused:
            raise Conflict(refused.message) from refused
        return Response(self.Output(campaign).data)
