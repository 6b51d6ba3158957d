from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from annotation import api

urlpatterns: list[URLPattern | URLResolver] = [
    path("annotator/campaigns/", api.CampaignMineListApi.as_view(), name="annotator-campaigns"),
    path("campaigns/<int:campaign_id>/next/", api.AssignmentNextApi.as_view(), name="assignment-next"),
    path("assignments/<int:assignment_id>/rating/", api.RatingCreateApi.as_view(), name="rating-create"),
    path("assignments/<int:assignment_id>/skip/", api.AssignmentSkipApi.as_view(), name="assignment-skip"),
    path("assignments/<int:assignment_id>/undo/", api.RatingUndoApi.as_view(), name="rating-undo"),
    path("assignments/<int:assignment_id>/heartbeat/", api.LeaseRenewApi.as_view(), name="lease-renew"),
]
