"""bench/bench_judge_report.py: a quick run seeds its campaign, times the judge report and finds the flips it seeded."""

from __future__ import annotations

import importlib

import pytest

from results.judge_report import build_report

bench = importlib.import_module("bench.bench_judge_report")  # by name, as the other bench tests


@pytest.mark.django_db
def test_seeded_campaign_gives_the_seeded_report() -> None:
    campaign, judge = bench.seed(200)
    report = build_report(judge, [campaign], bootstrap=50)
    (version,) = report["versions"]
    assert (version["version"], version["n_ratings"], report["n_human_ratings"]) == ("bench", 400, 600)
    assert version["stability"]["repeats"] == 2
    assert 0.05 < version["stability"]["flip_rate"]["value"] < 0.22  # 0.127 expected
    assert version["self_preference"]["family"] == "bench-fam-x"
    assert version["self_preference"]["comparisons"] == 80  # 4 of each prompt's 10 pairs have fam-x-0
