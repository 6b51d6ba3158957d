"""Researcher API: campaigns, comparisons, ratings, leaderboard, agreement and export downloads.

Only a campaign's owner, its researchers and superusers reach it; the campaign's annotators get 403, anyone else 404.
Raters appear by pseudonym (judges and imported raters by name), never by a user's name or email.
"""

from __future__ import annotations

import math
from typing import Any

from django.db.models import Count
from django.http import StreamingHttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.models import Campaign, Rating, Verdict
from annotation.research.api import CampaignCreateApi, CampaignUpdateApi
from evalplatform.api import validated
from evalplatform.pagination import BoundedPagination
from results import selectors
from results.access import access_campaign_results, researcher_campaigns
from results.categories import check_category
from results.exports import CONTENT_TYPES, RowCounter, export_format, file_type_for, started
from results.leaderboards import campaign_leaderboard, side_by_side
from results.length_controlled import campaign_lc_winrates
from results.manifest import (
    agreement_with_manifest,
    export_manifest,
    iter_export_with_digest,
    leaderboard_with_manifest,
)
from results.rater_exclusions import parse_include_excluded, with_exclusions
from results.rater_mix import mix_note, rater_mix
from results.rater_model import check_rater_options
from results.raters import RaterSelection, parse_raters
from results.report_slots import one_report_at_a_slot
from results.reproduce import MAX_SEED, reproduce

RATERS_PARAM = OpenApiParameter("raters", str, description="humans, judges, all (default) or NAME,NAME,...")
EXCLUDE_PARAM = OpenApiParameter("exclude_raters", str, description="Leave out raters whose name matches this glob.")
INCLUDE_EXCLUDED_PARAM = OpenApiParameter(
    "include_excluded", str, enum=["0", "1"], description="1: count raters the researchers excluded from results."
)
# An export's rows left out (dpo: pairs without texts), sent before the body: a trailer would be lost on most clients.
SKIPPED_HEADER, WARNING_HEADER, RATERS_HEADER = "X-Export-Skipped-Rows", "X-Export-Warning", "X-Export-Raters"
# SHA-256 of the exact ratings a download holds (its manifest's ratings.sha256), read in the export's snapshot.
DIGEST_HEADER = "X-Export-Ratings-Sha256"


def selection_from(request: Request, campaign: Campaign) -> RaterSelection:
    """Parse and check the rater selection of a request's query string (names among the campaign's raters)."""
    selection = parse_raters(request.query_params.get("raters"), request.query_params.getlist("exclude_raters"))
    selectors.check_rater_names(selection, campaign=campaign)
    include = parse_include_excluded(request.query_params.get("include_excluded"))
    return with_exclusions(selection, campaign, include_excluded=include)


def json_safe(value: Any) -> Any:
    """Return the report with its non-finite numbers as null: JSON has no NaN, and an undefined figure (a clustered
    interval over fewer than two clusters, ``scoring.bt_fit.cluster_factor``) would otherwise make the answer a 500."""
    if isinstance(value, float):  # numpy's float64 too
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    return value


def public_rater(rating: Rating) -> str:
    """Return how a rater may appear in results: a pseudonym for account holders, else the rater's name."""
    return rating.rater.pseudonym if rating.rater.user_id else rating.rater.name


class CampaignOutput(serializers.Serializer[Any]):
    class Meta:
        ref_name = "ResearchCampaign"

    slug = serializers.CharField()
    name = serializers.CharField()
    status = serializers.CharField()
    label_scheme = serializers.CharField()
    ratings_per_comparison = serializers.IntegerField()
    n_comparisons = serializers.IntegerField()
    created_at = serializers.DateTimeField()


class CampaignListApi(CampaignCreateApi):  # POST: create (annotation.research.api)
    @extend_schema(responses=CampaignOutput(many=True))
    def get(self, request: Request) -> Response:
        campaigns = researcher_campaigns(request.user).annotate(n_comparisons=Count("comparisons")).order_by("-id")
        return Response(CampaignOutput(campaigns, many=True).data)


class CampaignDetailApi(CampaignUpdateApi):  # PATCH: change (annotation.research.api)
    class Output(CampaignOutput):
        class Meta:
            ref_name = "ResearchCampaignDetail"

        instructions = serializers.CharField()
        n_prompts = serializers.IntegerField()
        n_ratings = serializers.IntegerField()
        models = serializers.ListField(child=serializers.CharField())

    @extend_schema(responses=Output)
    def get(self, request: Request, slug: str) -> Response:
        campaign = access_campaign_results(user=request.user, slug=slug)
        return Response(self.Output(selectors.campaign_summary(campaign)).data)


class ComparisonListApi(APIView):
    class Output(serializers.Serializer[Any]):
        class Meta:
            ref_name = "ResearchComparison"

        id = serializers.IntegerField()
        question_id = serializers.CharField(source="prompt.external_id")
        prompt = serializers.CharField(source="prompt.text")
        output_a_id = serializers.IntegerField()
        output_b_id = serializers.IntegerField()
        model_a = serializers.CharField(source="output_a.model_name", allow_null=True)
        model_b = serializers.CharField(source="output_b.model_name", allow_null=True)
        gold_verdict = serializers.CharField(allow_null=True)
        n_ratings = serializers.IntegerField()

    class Query(serializers.Serializer[Any]):
        model = serializers.CharField(required=False, allow_blank=True, help_text="Comparisons showing this model.")
        question_id = serializers.CharField(
            required=False, allow_blank=True, help_text="Comparisons of this prompt (its external id)."
        )
        gold = serializers.BooleanField(required=False, allow_null=True, default=None, help_text="Gold or not.")

    QUERY = Query()

    @extend_schema(parameters=[Query], responses=Output(many=True))
    def get(self, request: Request, slug: str) -> Response:
        campaign = access_campaign_results(user=request.user, slug=slug)
        filters = validated(self.QUERY, request.query_params.dict())
        rows = selectors.comparisons(
            campaign, model=filters.get("model"), prompt=filters.get("question_id"), gold=filters["gold"]
        )
        return paginate(request, self, rows, self.Output)


class RatingListApi(APIView):
    class Output(serializers.Serializer[Any]):
        class Meta:
            ref_name = "ResearchRating"

        id = serializers.IntegerField()
        comparison_id = serializers.IntegerField()
        rater = serializers.SerializerMethodField()
        rater_kind = serializers.CharField()
        source = serializers.CharField()  # type: ignore[assignment]
        verdict = serializers.CharField()
        winner_id = serializers.IntegerField(allow_null=True)
        left_output_id = serializers.IntegerField(allow_null=True)
        strength = serializers.IntegerField(allow_null=True)
        rationale = serializers.CharField()
        time_ms = serializers.IntegerField(allow_null=True)
        created_at = serializers.DateTimeField()

        def get_rater(self, rating: Rating) -> str:
            return public_rater(rating)

    class Query(serializers.Serializer[Any]):
        comparison = serializers.IntegerField(required=False, min_value=1, help_text="Ratings of this comparison.")
        verdict = serializers.ChoiceField(choices=Verdict.choices, required=False)
        source = serializers.ChoiceField(choices=Rating.Source.choices, required=False)  # type: ignore[assignment]

    QUERY = Query()

    @extend_schema(parameters=[RATERS_PARAM, EXCLUDE_PARAM, INCLUDE_EXCLUDED_PARAM, Query], responses=Output(many=True))
    def get(self, request: Request, slug: str) -> Response:
        campaign = access_campaign_results(user=request.user, slug=slug)
        filters = validated(self.QUERY, request.query_params.dict())
        rows = selectors.ratings(
            campaign,
            selection_from(request, campaign),
            comparison=filters.get("comparison"),
            verdict=filters.get("verdict"),
            source=filters.get("source"),
        )
        return paginate(request, self, rows, self.Output)


def paginate(request: Request, view: APIView, rows: Any, output: type[serializers.Serializer[Any]]) -> Response:
    """Return one limit/offset page of rows, serialized."""
    paginator = BoundedPagination()
    page: list[Any] | None = paginator.paginate_queryset(rows, request, view=view)
    return paginator.get_paginated_response(output(page, many=True).data)


def style_leaderboard_report(campaign: Campaign, selection: RaterSelection, options: dict[str, Any]) -> dict[str, Any]:
    """Return the style-controlled leaderboard the query asks for (DomainError on options it does not take)."""
    return campaign_leaderboard(
        campaign,
        selection,
        bootstrap=options["bootstrap"],
        seed=options["seed"],
        combine=options.get("combine"),
        consistent=options["consistent"],
        category=options.get("category"),
        style_control=True,
        style_reg=options["style_reg"],
    )


class LeaderboardApi(APIView):
    class Query(serializers.Serializer[Any]):
        bootstrap = serializers.IntegerField(
            min_value=0, max_value=2000, default=0, help_text="Bootstrap rounds for the intervals (0: sandwich)."
        )
        seed = serializers.IntegerField(
            min_value=0, max_value=MAX_SEED, default=0, help_text="Seed of the bootstrap (up to 2^63-1, as a manifest)."
        )
        combine = serializers.ChoiceField(
            choices=["ppi"],
            required=False,
            help_text="ppi: rank humans and judges together (prediction-powered; sandwich intervals, bootstrap 0).",
        )
        consistent = serializers.BooleanField(
            default=False,
            help_text="Consistency gate: a comparison a judge decided differently in its two orders counts as one tie.",
        )
        category = serializers.CharField(
            required=False,
            max_length=100,
            help_text="Only the ratings on prompts with this tag (a category: GET .../categories/ lists them).",
        )
        style_control = serializers.BooleanField(
            default=False,
            help_text="Fit the ratings jointly with the outputs' length, headers, lists and bold (Chatbot Arena's "
            "style control); the report adds the style coefficients. Up to 1000 bootstrap rounds.",
        )
        style_reg = serializers.FloatField(
            min_value=0,
            max_value=1e6,
            default=0.5,
            help_text="With style_control: L2 regularisation (FastChat's 0.5; 0 for the maximum likelihood).",
        )
        cluster = serializers.ChoiceField(
            choices=["rater", "prompt"],
            required=False,
            help_text="Sandwich intervals clustered by rater or by prompt (bootstrap 0).",
        )
        rater_model = serializers.BooleanField(
            default=False,
            help_text="Rater-aware Bradley-Terry: each rater's reliability and left bias fitted with the ratings "
            "(rater_model.raters in the report; bootstrap 0; cluster=rater for rater-clustered intervals).",
        )
        influence = serializers.BooleanField(
            default=False,
            help_text="Add each model's n_votes_to_flip (the fewest votes whose removal swaps it with the next "
            "model, confirmed by refitting) and fragile; the pairs under influence.",
        )
        downsample = serializers.BooleanField(
            default=False,
            help_text="Chatbot Arena's high-frequency downsampling: a prompt rated more often than the 99.9th "
            "percentile of the prompts keeps a seeded random sample of that many ratings (plain Bradley-Terry only).",
        )

    QUERY = Query()

    @extend_schema(parameters=[RATERS_PARAM, EXCLUDE_PARAM, INCLUDE_EXCLUDED_PARAM, Query], responses=dict)
    @one_report_at_a_slot
    def get(self, request: Request, slug: str) -> Response:
        campaign = access_campaign_results(user=request.user, slug=slug)
        options = validated(self.QUERY, request.query_params.dict())
        selection = selection_from(request, campaign)
        check_rater_options(
            cluster=options.get("cluster"),
            rater_model=options["rater_model"],
            bootstrap=options["bootstrap"],
            consistent=options["consistent"],
            combine=options.get("combine"),
            style_control=options["style_control"],
        )
        if options["style_control"]:
            return Response(json_safe(style_leaderboard_report(campaign, selection, options)))
        combine = options.get("combine")
        category = options.get("category")
        if category is not None:
            check_category(campaign, category)
        board = leaderboard_with_manifest(
            campaign,
            selection,
            bootstrap=options["bootstrap"],
            seed=options["seed"],
            combine=combine,
            consistent=options["consistent"],
            category=category,
            cluster=options.get("cluster"),
            rater_model=options["rater_model"],
            influence=options["influence"],
            downsample=options["downsample"],
        )
        if not combine:
            board["side_by_side"] = side_by_side(campaign, selection)
        return Response(json_safe(board))


class LengthControlledApi(APIView):
    class Query(serializers.Serializer[Any]):
        baseline = serializers.CharField(max_length=200, help_text="The model every other model is compared with.")
        difficulty = serializers.ChoiceField(
            choices=["auto", "none"],
            default="auto",
            help_text="auto: the GLM's instruction difficulty estimated from the campaign's prompts; none: left out.",
        )

    QUERY = Query()

    @extend_schema(parameters=[RATERS_PARAM, EXCLUDE_PARAM, INCLUDE_EXCLUDED_PARAM, Query], responses=dict)
    @one_report_at_a_slot
    def get(self, request: Request, slug: str) -> Response:
        """AlpacaEval 2's raw and length-controlled win rates of each model against a baseline."""
        campaign = access_campaign_results(user=request.user, slug=slug)
        options = validated(self.QUERY, request.query_params.dict())
        selection = selection_from(request, campaign)
        report = campaign_lc_winrates(
            campaign, selection, baseline=options["baseline"], difficulty=options["difficulty"]
        )
        return Response(json_safe(report))


class AgreementApi(APIView):
    class Query(serializers.Serializer[Any]):
        bootstrap = serializers.IntegerField(
            min_value=0, max_value=2000, default=200, help_text="Bootstrap rounds for the intervals."
        )
        consistent = serializers.BooleanField(
            default=False,
            help_text="Consistency gate: a comparison a judge decided differently in its two orders counts as one tie.",
        )

    QUERY = Query()

    @extend_schema(parameters=[RATERS_PARAM, EXCLUDE_PARAM, INCLUDE_EXCLUDED_PARAM, Query], responses=dict)
    @one_report_at_a_slot
    def get(self, request: Request, slug: str) -> Response:
        campaign = access_campaign_results(user=request.user, slug=slug)
        options = validated(self.QUERY, request.query_params.dict())
        selection = selection_from(request, campaign)
        return Response(
            json_safe(
                agreement_with_manifest(
                    campaign, selection, bootstrap=options["bootstrap"], consistent=options["consistent"]
                )
            )
        )


class ExportQuery(serializers.Serializer[Any]):
    min_confidence = serializers.FloatField(
        min_value=0.0,
        max_value=1.0,
        required=False,
        help_text="aggregate=posterior only: leave out (and count) pairs whose verdict has a posterior probability "
        "below this (default 0.5).",
    )
    consistent = serializers.BooleanField(
        default=False,
        help_text="Consistency gate: a comparison a judge decided differently in its two orders is a tie (ratings: "
        "both marked inconsistent; arena, alpaca_eval: one tie record; dpo each: no pair).",
    )


EXPORT_QUERY = ExportQuery()
AGGREGATE_PARAM = OpenApiParameter("aggregate", str, enum=["majority", "unanimous", "each", "posterior"])


def min_confidence_from(request: Request) -> float | None:
    """Return the export's min_confidence query parameter, or None when not given."""
    value: float | None = validated(EXPORT_QUERY, request.query_params.dict()).get("min_confidence")
    return value


def consistent_from(request: Request) -> bool:
    """Return the export's consistent query parameter (the consistency gate)."""
    return bool(validated(EXPORT_QUERY, request.query_params.dict())["consistent"])


class ExportDownloadApi(APIView):
    @extend_schema(
        parameters=[
            RATERS_PARAM,
            EXCLUDE_PARAM,
            INCLUDE_EXCLUDED_PARAM,
            AGGREGATE_PARAM,
            ExportQuery,
            OpenApiParameter(
                SKIPPED_HEADER,
                int,
                OpenApiParameter.HEADER,
                response=[200],
                description="Rows left out of the file (dpo: pairs whose prompt, chosen or rejected text is empty).",
            ),
            OpenApiParameter(
                WARNING_HEADER,
                str,
                OpenApiParameter.HEADER,
                response=[200],
                description="Says what was left out, when something was.",
            ),
            OpenApiParameter(
                RATERS_HEADER,
                str,
                OpenApiParameter.HEADER,
                response=[200],
                description="The rater selection (all, the default, counts every human and judge), its numbers of "
                "humans and judges, and whether it mixes them.",
            ),
            OpenApiParameter(
                DIGEST_HEADER,
                str,
                OpenApiParameter.HEADER,
                response=[200],
                description="SHA-256 of the exact ratings in the file (read in the export's snapshot): its manifest's "
                "ratings.sha256 (GET .../export/<dataset>.<file_type>/manifest/ gives the whole manifest).",
            ),
        ],
        responses={(200, "application/octet-stream"): bytes},
        description="Stream an export: file_type jsonl (JSON Lines), json (one JSON array), csv or parquet.",
    )
    def get(self, request: Request, slug: str, dataset: str, file_type: str) -> StreamingHttpResponse:
        campaign = access_campaign_results(user=request.user, slug=slug)
        aggregate = request.query_params.get("aggregate")
        min_confidence = min_confidence_from(request)
        file_type = file_type_for(f"{dataset}.{file_type}")
        export_format(dataset, aggregate, min_confidence)
        counter = RowCounter()
        selection = selection_from(request, campaign)
        digest: dict[str, Any] = {}
        # Started here: the rows left out are counted, and the ratings digested, in the export's snapshot, before the
        # headers are sent.
        stream = started(
            iter_export_with_digest(
                campaign, format=dataset, file_type=file_type, selection=selection, aggregate=aggregate,
                min_confidence=min_confidence, counter=counter, digest=digest, consistent=consistent_from(request),
            )
        )  # fmt: skip
        response = StreamingHttpResponse(stream, content_type=CONTENT_TYPES[file_type])
        response["Content-Disposition"] = f'attachment; filename="{campaign.slug}-{dataset}.{file_type}"'
        response[SKIPPED_HEADER] = str(counter.skipped)
        if counter.warning:
            response[WARNING_HEADER] = counter.warning
        response[RATERS_HEADER] = mix_note(rater_mix(campaign, selection))
        response[DIGEST_HEADER] = digest["sha256"]
        return response


class ExportManifestApi(APIView):
    @extend_schema(
        parameters=[
            RATERS_PARAM,
            EXCLUDE_PARAM,
            INCLUDE_EXCLUDED_PARAM,
            AGGREGATE_PARAM,
            ExportQuery,
        ],
        responses=dict,
        description="Return the reproducibility manifest of an export (computed like the download, which it does not "
        "send: the file's SHA-256 and size, the ratings' digest, selection, options, judges, code version).",
    )
    @one_report_at_a_slot
    def get(self, request: Request, slug: str, dataset: str, file_type: str) -> Response:
        campaign = access_campaign_results(user=request.user, slug=slug)
        aggregate = request.query_params.get("aggregate")
        min_confidence = min_confidence_from(request)
        file_type = file_type_for(f"{dataset}.{file_type}")
        export_format(dataset, aggregate, min_confidence)
        selection = selection_from(request, campaign)
        return Response(
            export_manifest(
                campaign, format=dataset, file_type=file_type, selection=selection, aggregate=aggregate,
                min_confidence=min_confidence, consistent=consistent_from(request),
            )
        )  # fmt: skip


class ReproduceApi(APIView):
    @extend_schema(
        request=dict,
        responses=dict,
        description="Recompute the result a manifest describes (a leaderboard's, agreement report's or export's "
        "`manifest`, sent as the body) and say whether it is identical, and what changed if not.",
    )
    @one_report_at_a_slot
    def post(self, request: Request, slug: str) -> Response:
        campaign = access_campaign_results(user=request.user, slug=slug)
        return Response(reproduce(request.data, campaign=campaign))
