"""Published agreement figures reproduced from the real human preference data in shared/data, imported with the
project's importers; and an Arena export that imports back to the same leaderboard."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from annotation.models import Campaign
from results.leaderboards import compute_leaderboard
from results.raters import parse_raters
from tests import factories

MT_BENCH = factories.SHARED_DATA / "mt_bench_human_judgments_turn1.jsonl"
ALPACA = factories.SHARED_DATA / "alpaca_farm_human_crossannotations.json"


def agreement(slug: str, *args: str, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    call_command("agreement", slug, "--json", "--bootstrap", "100", *args)
    report: dict[str, Any] = json.loads(capsys.readouterr().out)
    return report


def test_mt_bench_expert_votes_give_the_published_agreement(
    researcher: User, capsys: pytest.CaptureFixture[str]
) -> None:
    call_command("import_battles", str(MT_BENCH), "--campaign", "mt-bench", "--owner", researcher.username)
    capsys.readouterr()

    report = agreement("mt-bench", "--exclude-raters", "author_*", capsys=capsys)

    with_ties = report["mtbench_agreement"]["with_ties"]
    without_ties = report["mtbench_agreement"]["without_ties"]
    assert (with_ties["pairs"], round(with_ties["value"], 2)) == (721, 0.63)
    assert (without_ties["pairs"], round(without_ties["value"], 2)) == (479, 0.81)
    assert with_ties["ci"][0] < with_ties["value"] < with_ties["ci"][1]
    assert report["n_raters"] == 58


def test_alpaca_eval_cross_annotations_give_the_published_leave_one_out_agreement(
    researcher: User, capsys: pytest.CaptureFixture[str]
) -> None:
    call_command("import_alpaca_eval", str(ALPACA), "--campaign", "alpaca-farm", "--owner", researcher.username)
    capsys.readouterr()

    report = agreement("alpaca-farm", capsys=capsys)

    loo = report["loo_mode_agreement"]
    assert round(loo["value"] * 100, 2) == 65.66
    assert loo["compared"] == 2592
    assert report["n_units"] == 648


@pytest.mark.parametrize("suffix", ["jsonl", "json"])
def test_arena_export_imports_back_to_the_same_leaderboard(
    researcher: User, tmp_path: Path, capsys: pytest.CaptureFixture[str], suffix: str
) -> None:
    call_command("import_battles", str(MT_BENCH), "--campaign", "mt-bench", "--owner", researcher.username)
    out = tmp_path / f"battles.{suffix}"
    call_command("export", "mt-bench", "--format", "arena", "--out", str(out))
    call_command("import_battles", str(out), "--campaign", "mt-bench-again", "--owner", researcher.username)
    capsys.readouterr()

    boards = [
        compute_leaderboard(Campaign.objects.get(slug=slug), parse_raters("all"), with_elo=False)
        for slug in ("mt-bench", "mt-bench-again")
    ]

    assert boards[0]["n_battles"] == boards[1]["n_battles"] == 1689
    first, again = ({r["model"]: r["rating"] for r in board["ratings"]} for board in boards)
    assert first.keys() == again.keys()
    assert all(again[m] == pytest.approx(first[m], abs=1e-6) for m in first)


def test_scoring_cli_needs_the_order_of_mt_bench_labels_and_then_agrees_with_the_report(
    researcher: User, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    call_command("import_battles", str(MT_BENCH), "--campaign", "mt-bench", "--owner", researcher.username)
    exported = tmp_path / "ratings.jsonl"
    call_command("export", "mt-bench", "--format", "ratings", "--out", str(exported), "--exclude-raters", "author_*")
    capsys.readouterr()
    report = agreement("mt-bench", "--exclude-raters", "author_*", capsys=capsys)
    votes = tmp_path / "votes.jsonl"
    rows = [json.loads(line) for line in exported.read_text().splitlines()]
    votes.write_text(
        "".join(
            json.dumps({"unit": r["comparison_id"], "rater": r["rater"], "value": r["choice"]}) + "\n" for r in rows
        )
    )

    def scoring_agreement(*options: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "scoring", "agreement", str(votes), "--metric", "krippendorff_alpha"]
        return subprocess.run([*command, "--level", "ordinal", *options], capture_output=True, text=True)

    refused = scoring_agreement()
    assert refused.returncode == 1
    assert "text labels (a, b, tie): give their order with --categories" in refused.stderr
    ordered = json.loads(scoring_agreement("--categories", "a,tie,b").stdout)
    alphabetical = json.loads(scoring_agreement("--categories", "a,b,tie").stdout)
    assert ordered["value"] == pytest.approx(
        report["krippendorff_alpha"]["ordinal"]["value"], abs=1e-6
    )  # the report rounds to 6 places
    assert (round(ordered["value"], 3), round(alphabetical["value"], 3)) == (0.523, 0.387)


def test_mt_bench_battles_without_conversations_make_no_preference_pairs(
    researcher: User, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    call_command("import_battles", str(MT_BENCH), "--campaign", "mt-bench", "--owner", researcher.username)
    capsys.readouterr()
    out = tmp_path / "pairs.jsonl"

    call_command("export", "mt-bench", "--format", "dpo", "--out", str(out))

    assert out.read_text() == ""  # the file has votes but no texts: every majority pair would be empty
    err = capsys.readouterr().err
    assert "warning: skipped 616 preference pairs whose prompt, chosen or rejected text is empty" in err
