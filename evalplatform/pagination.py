"""Limit/offset pages with bounds: the research API's lists (ratings, comparisons, judge and panel runs)."""

from __future__ import annotations

from rest_framework import serializers
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request

MAX_PAGE = 1000  # rows of one page: a larger limit gets this many, with a next link
MAX_OFFSET = 2**63 - 1  # PostgreSQL's OFFSET is a bigint: past it the query fails


class BoundedPagination(LimitOffsetPagination):
    """DRF's limit/offset pages of at most MAX_PAGE rows; an offset past PostgreSQL's bigint is a 400 naming it."""

    max_limit = MAX_PAGE

    def get_offset(self, request: Request) -> int:
        offset = super().get_offset(request)
        if offset > MAX_OFFSET:
            raise serializers.ValidationError({"offset": [f"Ensure this value is less than or equal to {MAX_OFFSET}."]})
        return offset
