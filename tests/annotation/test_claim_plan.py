"""The claim's cost does not grow with the rater's own history, and the order of what it hands out still holds.

Cost is checked by counting the comparison rows the claim statement reads (EXPLAIN ANALYZE), never by timing.
"""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from annotation import engine, services
from annotation.models import Assignment, Campaign, Comparison, Rater
from tests import factories

pytestmark = pytest.mark.django_db

T0 = timezone.make_aware(datetime(2026, 1, 5, 9, 0, 0))


def _campaign(researcher: User, *annotators: User, required: int, prompts: int) -> Campaign:
    campaign = factories.CampaignFactory.create(owner=researcher, status="active", ratings_per_comparison=required)
    campaign.annotators.add(*annotators)
    factories.populate_campaign(campaign, prompts=prompts, models=["m1", "m2", "m3", "m4"])  # 6 pairs per prompt
    return campaign


def _rate_next(campaign: Campaign, user: User, *, now: datetime = T0) -> Assignment:
    assignment = services.claim_next(user=user, campaign_id=campaign.pk, now=now).assignment
    assert assignment is not None
    services.submit_rating(user=user, assignment_id=assignment.pk, answer=services.RatingInput("left"), now=now)
    return assignment


def _rows(node: dict[str, Any], *, in_arm: bool = False) -> int:
    """Comparison rows read by the claim's arms: rows each scan returned (before the anti-join) or filtered out."""
    in_arm = in_arm or str(node.get("Subplan Name", "")).startswith("CTE arm")
    rows = 0
    if in_arm and node.get("Relation Name") == "annotation_comparison":
        rows += node["Actual Rows"] * node["Actual Loops"] + node.get("Rows Removed by Filter", 0)
    return rows + sum(_rows(child, in_arm=in_arm) for child in node.get("Plans", []))


def _claim_rows(campaign: Campaign, user: User, *, start: float) -> tuple[int, int | None]:
    """Return how many comparison rows a claim for `user` reads and what level it takes from (then roll back)."""
    rater = Rater.objects.get(user=user)
    request = engine.ClaimRequest(
        campaign_id=campaign.pk,
        rater_id=rater.pk,
        required=campaign.ratings_per_comparison,
        gold=False,
        now=T0,
        expires=T0 + timedelta(minutes=5),
        left_is_a=True,
        start=start,
    )
    with transaction.atomic():
        with connection.cursor() as cursor:
            sql = engine.claim_sql(required=request.required, gold=False)
            cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, engine.claim_params(request))
            plan = cursor.fetchone()[0]
        taken = Assignment.objects.filter(rater=rater).order_by("-id").values_list("comparison__filled", flat=True)
        level = taken.first() if taken.count() else None
        transaction.set_rollback(True)
    plan = json.loads(plan) if isinstance(plan, str) else plan
    return _rows(plan[0]["Plan"]), level


@pytest.mark.parametrize("history", [6, 30])
def test_a_claim_does_not_walk_past_the_comparisons_only_the_rater_has_rated(
    researcher: User, annotator: User, history: int
) -> None:
    campaign = _campaign(researcher, annotator, required=3, prompts=8)  # 48 comparisons
    for _ in range(history):
        _rate_next(campaign, annotator)
    assert Comparison.objects.filter(campaign=campaign, filled=1).count() == history  # all theirs, nobody else's

    for start in (0.0, 0.5, 0.999):
        rows, level = _claim_rows(campaign, annotator, start=start)
        # The claim reads the one comparison it takes: the rater's own level-1 comparisons are one skipped range.
        assert rows == 1
        assert level == 1  # a new comparison, taken to level 1


def test_a_claim_reads_at_most_the_others_comparisons_it_has_seen(
    researcher: User, annotator: User, other_annotator: User
) -> None:
    campaign = _campaign(researcher, annotator, other_annotator, required=3, prompts=8)
    for _ in range(20):
        _rate_next(campaign, annotator)
    joined = _rate_next(campaign, other_annotator)  # one of the annotator's, now at level 2, last given to the other
    assert Comparison.objects.get(pk=joined.comparison_id).filled == 2

    rows, level = _claim_rows(campaign, annotator, start=0.5)

    assert rows == 2  # the one at level 2 (theirs already: refused by the anti-join), then the new one it takes
    assert level == 1


def test_partially_rated_comparisons_available_to_a_rater_always_come_first(
    researcher: User, annotator: User, other_annotator: User, outsider: User
) -> None:
    users = [annotator, other_annotator, outsider]
    campaign = _campaign(researcher, *users, required=3, prompts=4)  # 24 comparisons, 72 slots
    rng = random.Random(7)
    for step in range(90):
        user = rng.choice(users)
        rater = Rater.objects.filter(user=user).first()
        open_to_them = Comparison.objects.filter(campaign=campaign, filled__lt=3)
        if rater is not None:
            open_to_them = open_to_them.exclude(assignments__rater=rater)
        fullest = open_to_them.aggregate(m=Max("filled"))["m"]

        assignment = services.claim_next(user=user, campaign_id=campaign.pk, now=T0).assignment

        if assignment is None:
            assert fullest is None, f"step {step}: nothing given to {user} while a comparison was open to them"
            continue
        taken_from = Comparison.objects.get(pk=assignment.comparison_id).filled - 1
        assert taken_from == fullest, f"step {step}: level {taken_from} taken while level {fullest} was open"
        if rng.random() < 0.8:
            services.submit_rating(user=user, assignment_id=assignment.pk, answer=services.RatingInput("left"), now=T0)
        else:
            services.skip_assignment(assignment=assignment, now=T0)
    assert Comparison.objects.filter(campaign=campaign, filled=3).exists()
