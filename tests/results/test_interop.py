"""Exports read as they are by the other tools' own code: FastChat's Elo analysis and AlpacaEval's analyzer.

Both are test-only dependencies (pyproject's ``dev`` extra); these tests call their real loading and analysis
functions on our files.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from annotation.models import Campaign, Rating
from results.leaderboards import compute_leaderboard
from results.raters import parse_raters
from tests import factories
from tests.results.conftest import Rated
from tests.results.test_api import ClientFor, url

MT_BENCH = factories.SHARED_DATA / "mt_bench_human_judgments_turn1.jsonl"
ALPACA = factories.SHARED_DATA / "alpaca_farm_human_crossannotations.json"


def fastchat_elo_analysis() -> types.ModuleType:
    """Import FastChat's ``elo_analysis`` module without torch.

    ``fastchat/model/__init__.py`` imports torch for its model adapters; ``elo_analysis`` needs only
    ``fastchat.model.model_registry`` (plain Python), so where torch is absent the package is entered without running
    that ``__init__``. Every function used is FastChat's own, unchanged.
    """
    if importlib.util.find_spec("torch") is None and "fastchat.model" not in sys.modules:
        fastchat = importlib.util.find_spec("fastchat")
        assert fastchat is not None, "fschat is a dev dependency"
        assert fastchat.origin is not None
        package = types.ModuleType("fastchat.model")
        package.__path__ = [str(Path(fastchat.origin).parent / "model")]
        sys.modules["fastchat.model"] = package
    return importlib.import_module("fastchat.serve.monitor.elo_analysis")


def test_arena_json_export_is_read_by_fastchats_elo_analysis_and_gives_our_ratings(
    researcher: User, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    elo_analysis = fastchat_elo_analysis()
    call_command("import_battles", str(MT_BENCH), "--campaign", "mt-bench", "--owner", researcher.username)
    out = tmp_path / "battles.json"
    call_command("export", "mt-bench", "--format", "arena", "--out", str(out))
    capsys.readouterr()

    battles = pd.read_json(out)  # what `elo_analysis.py --clean-battle-file battles.json` does
    np.random.seed(42)  # as its main does
    results = elo_analysis.report_elo_analysis_results(battles, rating_system="bt", num_bootstrap=3)

    theirs = dict(results["elo_rating_final"])
    board = compute_leaderboard(Campaign.objects.get(slug="mt-bench"), parse_raters("all"), with_elo=False)
    ours = {row["model"]: row["rating"] for row in board["ratings"]}
    assert len(battles) == board["n_battles"] == 1689
    assert battles["anony"].all()
    assert theirs.keys() == ours.keys()
    # FastChat pins llama-13b at 800, we centre on 1000: compare gaps. Its fit is scikit-learn's logistic regression,
    # whose default L2 penalty (C=1) pulls ratings towards each other a little (on these 1,689 battles).
    gaps = {m: (theirs[m] - theirs["llama-13b"], ours[m] - ours["llama-13b"]) for m in ours}
    assert all(abs(t - o) < 1.0 for t, o in gaps.values()), gaps  # measured: at most 0.46 (gpt-4)
    assert sorted(ours, key=ours.__getitem__) == sorted(theirs, key=theirs.__getitem__)
    ranked = subprocess.run([sys.executable, "-m", "scoring", "rank", str(out)], capture_output=True, text=True)
    assert ranked.returncode == 0, ranked.stderr  # our own command line reads the same file
    assert {r["model"]: r["rating"] for r in json.loads(ranked.stdout)["ratings"]} == pytest.approx(ours, abs=1e-6)


def test_arena_jsonl_is_not_what_fastchat_reads(rated: Rated, tmp_path: Path) -> None:
    out = tmp_path / "battles.jsonl"
    call_command("export", rated.campaign.slug, "--format", "arena", "--out", str(out))

    with pytest.raises(ValueError, match="Trailing data"):
        pd.read_json(out)
    assert len(pd.read_json(out, lines=True)) == 4 * len(rated.comparisons)


def test_arena_keeps_the_anony_of_an_imported_battle(researcher: User, tmp_path: Path) -> None:
    battles = tmp_path / "arena.json"
    rows = [
        {"model_a": "x", "model_b": "y", "winner": "model_a", "question_id": "q1", "anony": False, "tstamp": 1.5e9},
        {"model_a": "y", "model_b": "x", "winner": "tie", "question_id": "q2", "anony": True, "tstamp": 1.6e9},
        {"model_a": "x", "model_b": "y", "winner": "model_b", "question_id": "q3", "tstamp": 1.7e9},
    ]
    battles.write_text(json.dumps(rows))
    call_command("import_battles", str(battles), "--campaign", "arena", "--owner", researcher.username)
    out = tmp_path / "out.json"

    call_command("export", "arena", "--format", "arena", "--out", str(out))

    exported = json.loads(out.read_text())
    assert [(r["question_id"], r["anony"], r["tstamp"]) for r in exported] == [
        ("q1", False, 1.5e9),
        ("q2", True, 1.6e9),
        ("q3", True, 1.7e9),
    ]


@pytest.mark.parametrize("fmt", ["ratings", "arena", "dpo", "alpaca_eval"])
def test_every_json_export_is_one_json_array_of_the_json_lines_rows(rated: Rated, tmp_path: Path, fmt: str) -> None:
    call_command("export", rated.campaign.slug, "--format", fmt, "--out", str(tmp_path / "x.json"))
    call_command("export", rated.campaign.slug, "--format", fmt, "--out", str(tmp_path / "x.jsonl"))

    lines = [json.loads(line) for line in (tmp_path / "x.jsonl").read_text().splitlines()]
    assert json.loads((tmp_path / "x.json").read_text()) == lines
    assert lines


def test_an_empty_json_export_is_an_empty_array(campaign: Campaign, tmp_path: Path) -> None:
    call_command("export", campaign.slug, "--format", "arena", "--out", str(tmp_path / "e.json"))

    assert json.loads((tmp_path / "e.json").read_text()) == []


def test_the_api_streams_the_json_array(
    rated: Rated, researcher: User, api_client_for: ClientFor, monkeypatch: pytest.MonkeyPatch
) -> None:
    from results.exports import reading

    monkeypatch.setattr(reading, "BLOCK_ROWS", 5)  # several batches: commas between them, none after the last
    response = api_client_for(researcher).get(url(rated, "export/arena.json"), {"raters": "humans"})

    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "application/json"
    assert 'filename="' + rated.campaign.slug + '-arena.json"' in response["Content-Disposition"]
    pieces = list(response.streaming_content)  # type: ignore[attr-defined]
    assert len(pieces) > 4
    battles = json.loads(b"".join(pieces))
    assert len(battles) == 2 * len(rated.comparisons)
    assert battles[0]["judge"] == rated.alice.pseudonym


def alpaca_analyzer(path: Path) -> Any:
    from alpaca_eval.analyze import Analyzer

    return Analyzer(gold_crossannotations=str(path), gold_annotations=None, n_annotators=4)


def test_alpaca_eval_json_export_is_read_by_alpaca_evals_analyzer_with_the_published_agreement(
    researcher: User, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    call_command("import_alpaca_eval", str(ALPACA), "--campaign", "alpaca-farm", "--owner", researcher.username)
    out = tmp_path / "annotations.json"
    call_command("export", "alpaca-farm", "--format", "alpaca_eval", "--out", str(out))
    capsys.readouterr()
    call_command("agreement", "alpaca-farm", "--json", "--bootstrap", "0")
    report = json.loads(capsys.readouterr().out)

    analyzer = alpaca_analyzer(out)  # alpaca_eval.utils.load_or_convert_to_dataframe reads the .json by path
    human = analyzer.agreement_of_annotations(annotations_1="gold_crossannotations", n_majority_vote_1=1)

    assert round(human["score"] * 100, 2) == 65.66  # AlpacaEval's own "Human agreement" of these annotations
    assert human["score"] == pytest.approx(report["loo_mode_agreement"]["value"], abs=1e-6)
    assert human["counts"] == 648
    raters = Rating.objects.filter(comparison__campaign__slug="alpaca-farm").values("rater").distinct().count()
    assert sorted(analyzer.df_gold_crossannotations["annotator_index"].unique()) == list(range(raters))
    assert len(analyzer.df_gold_annotations) > 0  # its gold annotations are annotator_index 0's


def test_alpaca_eval_annotator_index_numbers_the_campaigns_raters_whatever_the_selection(
    rated: Rated, tmp_path: Path
) -> None:
    everyone, humans = tmp_path / "all.json", tmp_path / "humans.json"
    call_command("export", rated.campaign.slug, "--format", "alpaca_eval", "--out", str(everyone))
    call_command("export", rated.campaign.slug, "--format", "alpaca_eval", "--out", str(humans), "--raters", "humans")

    index = {(r["annotator"], r["annotator_index"]) for r in json.loads(everyone.read_text())}
    assert index == {(rated.alice.pseudonym, 0), ("expert_1", 1), ("gpt-judge", 2)}  # raters in creation order
    assert {(r["annotator"], r["annotator_index"]) for r in json.loads(humans.read_text())} == index - {
        ("gpt-judge", 2)
    }
