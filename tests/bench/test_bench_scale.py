"""The 10M-rating benchmark at a tiny size: the seeded campaign has the mix it promises, and each timed operation
runs on it."""

from __future__ import annotations

import importlib
import itertools
from pathlib import Path

import pytest
from django.db.models import Count

from annotation.models import AnnotatorStatus, Assignment, Campaign, Comparison, Rating

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
def test_each_operation_runs_on_the_seeded_campaign(
    seeded: Campaign, name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bench, "SMALL", 500)
    small = bench.seed(500, models=10, prompts=50, judges=2, humans=10)  # after the large one, as the bench does
    assert Rating.objects.filter(comparison__campaign=small).count() == 500
    rows = bench.operation(name, seeded, str(tmp_path))()
    expected = {"agreement": 2_000, "agreement_rows": 1_100, "export_ratings": 2_000, "export_arena": 2_000}
    assert rows == expected.get(name, rows)
    assert rows > 0
    assert Rating.objects.filter(comparison__campaign=seeded).count() == 2_000  # the refresh removes what it adds
    assert Rating.objects.filter(comparison__campaign=small).count() == 500


def test_disk_per_rating_counts_the_table_and_its_indexes(seeded: Campaign) -> None:
    count, table, indexes = bench.disk_per_rating()
    assert count >= 2_000
    assert table > 0
    assert indexes > 0


def test_the_humans_rate_through_assignments_that_fill_their_comparisons(seeded: Campaign) -> None:
    humans = Rating.objects.filter(comparison__campaign=seeded, rater_kind="human")
    assert not humans.filter(assignment__isnull=True).exists()
    assert set(humans.values_list("source", flat=True)) == {"annotator"}
    filled = Comparison.objects.filter(campaign=seeded, filled__gt=0)
    assert filled.count() == humans.values("comparison").distinct().count()
    assert not filled.filter(last_claimed_by__isnull=True).exists()
    for comparison in filled[:20]:
        assert comparison.filled == Assignment.objects.filter(comparison=comparison, state="rated").count()
    counts = AnnotatorStatus.objects.filter(campaign=seeded).values_list("rater_id", "rated_count")
    assert sum(n for _, n in counts) == humans.count()
    assert len(counts) == seeded.annotators.count() == 10


def test_the_claims_leave_their_figures_and_give_every_slot_and_count_back(seeded: Campaign, tmp_path: Path) -> None:
    before = (
        list(Comparison.objects.filter(campaign=seeded).order_by("id").values_list("id", "filled")),
        list(AnnotatorStatus.objects.filter(campaign=seeded).order_by("id").values_list("rated_count", flat=True)),
        Assignment.objects.count(),
    )
    bench.EXTRA.clear()
    assert bench.operation("claim", seeded, str(tmp_path), claims=25)() == 25
    assert bench.EXTRA["p95_ms"] >= bench.EXTRA["p50_ms"] > 0
    assert bench.EXTRA["client_cpu_ms"] > 0
    assert bench.EXTRA["wal_b"] > 0
    after = (
        list(Comparison.objects.filter(campaign=seeded).order_by("id").values_list("id", "filled")),
        list(AnnotatorStatus.objects.filter(campaign=seeded).order_by("id").values_list("rated_count", flat=True)),
        Assignment.objects.count(),
    )
    assert after == before


def test_each_size_has_its_own_database_named_after_the_base() -> None:
    base = "postgres://postgres@127.0.0.1:5432/ep_scale"
    assert bench.database_url(base, 10_000_000) == "postgres://postgres@127.0.0.1:5432/ep_scale_10000000"


def test_the_ratio_is_per_pair_for_claims_per_rating_for_disk_and_of_time_otherwise() -> None:
    small = {"p50_ms": 2.0, "p95_ms": 4.0, "client_cpu_ms": 1.0, "db_cpu_ms": 1.0}
    large = {"p50_ms": 3.0, "p95_ms": 4.0, "client_cpu_ms": 1.0, "db_cpu_ms": 2.0}
    assert bench.ratio("claim", small, large) == "p50 1.50x p95 1.00x client_cpu 1.00x db_cpu 2.00x"
    assert bench.ratio("disk", {"table_b": 100, "indexes_b": 100}, {"table_b": 110, "indexes_b": 110}) == (
        "1.10x per rating"
    )
    assert bench.ratio("recount", {"seconds": 2.0}, {"seconds": 25.0}) == "12.5x time"
    assert bench.ratio("recount", None, {"seconds": 25.0}) == ""
    assert bench.cell("recount", None) == "failed"


def test_the_small_campaigns_list_before_the_bound_is_the_same_page_without_it(
    seeded: Campaign, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(bench, "SMALL", 500)
    bench.seed(500, models=10, prompts=50, judges=2, humans=10)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as before:
        bench.operation("admin_ratings_small_before", seeded, str(tmp_path))()
    with CaptureQueriesContext(connection) as after:
        bench.operation("admin_ratings_small", seeded, str(tmp_path))()
    assert not [q for q in before if '"annotation_rating"."comparison_id" >=' in q["sql"]]
    assert [q for q in before if q["sql"] == 'SELECT COUNT(*) AS "__count" FROM "annotation_rating"']
    assert [q for q in after if '"annotation_rating"."comparison_id" >=' in q["sql"]]


def test_an_annotators_history_is_not_where_their_next_claim_looks_first(seeded: Campaign) -> None:
    """The claim walks the comparisons last given to the next annotator id first: a seed whose annotators rate in a
    fixed rotation put each one's own comparisons exactly there, so every claim skipped them one by one."""
    humans = sorted(AnnotatorStatus.objects.filter(campaign=seeded).values_list("rater_id", flat=True))
    rated = walked = 0
    for mine, theirs in itertools.pairwise(humans):
        band = Comparison.objects.filter(campaign=seeded, filled=2, last_claimed_by=theirs)
        rated += band.filter(assignments__rater_id=mine).count()
        walked += band.count()
    assert walked > 20
    assert rated / walked < 0.5  # about 1/4 with 10 annotators drawn at random; all of them in a rotation
