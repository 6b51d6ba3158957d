"""The annotator benchmark's history: a finished campaign its annotators rated, which the reset between runs keeps."""

from __future__ import annotations

import importlib
from collections import Counter

import pytest
from django.contrib.auth.models import User
from django.db import connection

from annotation.models import Assignment, Campaign, Comparison, Rating

bench = importlib.import_module("bench.bench_assignment")  # by name, as in test_bench_assignment

pytestmark = pytest.mark.django_db(transaction=True)  # the seed and the reset VACUUM, outside a transaction


@pytest.fixture
def users() -> list[User]:
    return [User.objects.create(username=f"bench-annotator-{i}") for i in range(4)]


@pytest.fixture
def owner(users: list[User], monkeypatch: pytest.MonkeyPatch) -> User:
    """The bench owner, after a history of 20 comparisons was seeded for `users`."""
    monkeypatch.setattr(bench, "HISTORY_COMPARISONS", 20)
    owner = User.objects.create(username="bench-owner", is_staff=True)
    bench._seed_history(owner, users)
    return owner


def test_every_history_comparison_is_rated_by_the_required_number_of_distinct_annotators(
    users: list[User], owner: User
) -> None:
    history = Campaign.objects.get(slug="bench-history-20")
    assert history.status == "closed"
    comparisons = Comparison.objects.filter(campaign=history)
    assert comparisons.count() == 20
    assert set(comparisons.values_list("filled", flat=True)) == {bench.REQUIRED}
    ratings = Rating.objects.filter(comparison__campaign=history)
    assert ratings.count() == 20 * bench.REQUIRED
    per_comparison = Counter(ratings.values_list("comparison_id", flat=True))
    assert set(per_comparison.values()) == {bench.REQUIRED}
    pairs = set(ratings.values_list("comparison_id", "rater__user__username"))
    assert len(pairs) == 20 * bench.REQUIRED  # no annotator rated a comparison twice
    assert {username for _, username in pairs} == {user.username for user in users}  # spread over all of them
    assert set(Assignment.objects.filter(comparison__campaign=history).values_list("state", flat=True)) == {"rated"}
    for comparison in comparisons:
        raters = set(Assignment.objects.filter(comparison=comparison).values_list("rater_id", flat=True))
        assert comparison.last_claimed_by in raters


def test_a_second_seed_adds_nothing_and_the_reset_keeps_the_history(users: list[User], owner: User) -> None:
    bench._seed_history(owner, users)
    assert Rating.objects.count() == 20 * bench.REQUIRED

    measured = Campaign.objects.create(name="Bench", slug="bench", status="active", owner=owner)
    with connection.cursor() as cursor:
        bench._seed_rows(cursor, measured.pk, 1)
    claimed = Comparison.objects.filter(campaign=measured).first()
    assert claimed is not None
    history_assignment = Assignment.objects.filter(comparison__campaign__slug="bench-history-20").first()
    assert history_assignment is not None
    Assignment.objects.create(
        comparison=claimed,
        rater=history_assignment.rater,
        left_output_id=claimed.output_a_id,
        state="leased",
        lease_expires_at=history_assignment.lease_expires_at,
    )
    Comparison.objects.filter(pk=claimed.pk).update(filled=1, last_claimed_by=history_assignment.rater_id)

    bench.reset(measured.pk)

    assert not Assignment.objects.filter(comparison__campaign=measured).exists()
    assert Comparison.objects.get(pk=claimed.pk).filled == 0
    assert Rating.objects.count() == Assignment.objects.count() == 20 * bench.REQUIRED
