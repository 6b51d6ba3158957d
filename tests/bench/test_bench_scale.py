"""The 10M-rating benchmark at a tiny size: the seeded campaign has the mix it promises, and each timed operation
runs on it."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
from django.db.models import Count

from annotation.models import Campaign, Comparison, Rating

bench = importlib.import_module("bench.bench_scale")

pytestmark = pytest.mark.django_db


@pytest.fixture
def seeded() -> Campaign:
    campaign: Campaign = bench.seed(2_000, models=10, prompts=200, judges=2, humans=10)
    return campaign


def test_the_seed_makes_the_asked_ratings_mostly_judges_in_both_orders_and_humans_with_overlap(
    seeded: Campaign,
) -> None:
    ratings = Rating.objects.filter(comparison__campaign=seeded)
    assert ratings.count() == 2_000
    judges = ratings.filter(rater_kind="judge")
    assert judges.count() == 1_800
    per_order = judges.values("comparison", "rater").annotate(n=Count("id")).values_list("n", flat=True)
    assert set(per_order) == {2}
    humans = ratings.filter(rater_kind="human")
    judged = set(judges.values_list("comparison", flat=True))
    human_comparisons = set(humans.values_list("comparison", flat=True))
    assert 0 < len(human_comparisons & judged) < len(human_comparisons)
    assert set(humans.values("comparison").annotate(n=Count("rater", distinct=True)).values_list("n", flat=True)) >= {2}
    assert Comparison.objects.filter(campaign=seeded, gold_verdict="win").exists()
    assert Rating.objects.filter(comparison__campaign=seeded, verdict="win").count() > 1_500


def test_the_seed_refuses_too_few_prompts_for_the_ratings() -> None:
    with pytest.raises(SystemExit, match="too few"):
        bench.seed(2_000, models=10, prompts=20, judges=2, humans=10)


@pytest.mark.parametrize("name", bench.OPERATIONS)
def test_each_operation_runs_on_the_seeded_campaign(seeded: Campaign, name: str, tmp_path: Path) -> None:
    rows = bench.operation(name, seeded, str(tmp_path))()
    expected = {"agreement": 2_000, "agreement_rows": 1_100, "export_ratings": 2_000, "export_arena": 2_000}
    assert rows == expected.get(name, rows)
    assert rows > 0
    assert Rating.objects.filter(comparison__campaign=seeded).count() == 2_000  # the refresh removes what it adds


def test_disk_per_rating_counts_the_table_and_its_indexes(seeded: Campaign) -> None:
    count, table, indexes = bench.disk_per_rating()
    assert count >= 2_000
    assert table > 0
    assert indexes > 0
