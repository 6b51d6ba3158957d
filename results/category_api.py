"""Researcher API: a campaign's categories (prompt tags) with their prompts and battles.

``GET research/campaigns/{slug}/categories/``; a category's leaderboard is ``.../leaderboard/?category=NAME``.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from results.access import access_campaign_results
from results.api import EXCLUDE_PARAM, INCLUDE_EXCLUDED_PARAM, RATERS_PARAM, selection_from
from results.categories import campaign_categories
from results.report_slots import one_report_at_a_slot


class CategoryRow(serializers.Serializer[Any]):
    category = serializers.CharField(help_text="A prompt tag: the file's tags/category, category_tag paths, auto:...")
    n_prompts = serializers.IntegerField(help_text="Prompts with this tag.")
    n_battles = serializers.IntegerField(help_text="Selected ratings between named models on those prompts.")
    provisional = serializers.BooleanField(help_text="Fewer battles than min_battles: read its leaderboard with care.")


class CategoryListApi(APIView):
    class Output(serializers.Serializer[Any]):
        campaign = serializers.CharField()
        raters = serializers.CharField(help_text="The rater selection the battles count.")
        min_battles = serializers.IntegerField(help_text="Categories with fewer battles are provisional.")
        categories = CategoryRow(many=True)
        truncated = serializers.BooleanField(help_text="More categories than listed (at most 1,000).")

    @extend_schema(parameters=[RATERS_PARAM, EXCLUDE_PARAM, INCLUDE_EXCLUDED_PARAM], responses=Output)
    @one_report_at_a_slot
    def get(self, request: Request, slug: str) -> Response:
        """List the campaign's categories by battles, each with its prompts and whether it is provisional."""
        campaign = access_campaign_results(user=request.user, slug=slug)
        return Response(self.Output(campaign_categories(campaign, selection_from(request, campaign))).data)
