"""``python -m scoring rank FILE --combine ppi`` (scoring/ppi_cli.py, scoring/ppi_votes.py), run as a subprocess."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from scoring.ppi import ppi_bradley_terry
from scoring.ppi_votes import read_paired_votes
from tests.scoring.test_cli import run

MODELS = ("gpt", "llama", "mistral")
STRENGTH = {"gpt": 0.6, "llama": 0.0, "mistral": -0.4}


def votes(seed: int = 0) -> list[dict[str, Any]]:
    """Return 150 comparisons with a human and a judge vote each, plus 1,500 with a judge vote only."""
    rng = np.random.default_rng(seed)
    rows: list[dict[str, Any]] = []
    for q in range(1650):
        a, b = rng.choice(MODELS, 2, replace=False)
        p = 1 / (1 + np.exp(STRENGTH[b] - STRENGTH[a]))
        human = "model_a" if rng.random() < p else "model_b"
        judge = human if rng.random() < 0.85 else "tie"
        base = {"question_id": f"q{q}", "model_a": str(a), "model_b": str(b)}
        # The judge saw the pair in the other order half of the time: its vote names the sides it was shown.
        if rng.random() < 0.5:
            swapped = {"model_a": "model_b", "model_b": "model_a", "tie": "tie"}[judge]
            rows.append({**base, "model_a": str(b), "model_b": str(a), "winner": swapped, "judge": "gpt-4"})
        else:
            rows.append({**base, "winner": judge, "judge": "gpt-4"})
        rows[-1]["rater_kind"] = "llm"
        if q < 150:
            rows.append({**base, "winner": human, "judge": f"annotator-{q % 7}", "rater_kind": "human"})
    return rows


def write(tmp_path: Path, rows: list[dict[str, Any]]) -> Path:
    """Write rows as JSON Lines."""
    path = tmp_path / "votes.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_rank_combine_ppi_prints_the_library_leaderboard(tmp_path: Path) -> None:
    rows = votes()
    path = write(tmp_path, rows)
    result = run("rank", str(path), "--combine", "ppi")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    paired = read_paired_votes(path)
    expected = ppi_bradley_terry(paired.labelled, paired.unlabelled).to_dict()
    assert payload["n_labelled"] == 150
    assert payload["n_unlabelled"] == 1500
    assert payload["judges"] == ["gpt-4"]
    assert payload["human_votes"] == 150
    assert payload["judge_votes"] == 1650
    for got, want in zip(payload["ratings"], expected["ratings"], strict=True):
        assert got["model"] == want["model"]
        assert got["rating"] == pytest.approx(want["rating"], abs=1e-9)
        assert got["upper"] - got["lower"] < 2 * 1.96 * got["se_human"]
    assert [row["model"] for row in payload["ratings"]] == ["gpt", "llama", "mistral"]


def test_votes_in_either_order_pair_as_one_comparison(tmp_path: Path) -> None:
    rows = [
        {"question_id": 1, "model_a": "x", "model_b": "y", "winner": "model_a", "judge": "h", "rater_kind": "human"},
        {"question_id": 1, "model_a": "y", "model_b": "x", "winner": "model_b", "judge": "j", "rater_kind": "llm"},
        {"question_id": 1, "model_a": "x", "model_b": "y", "winner": "tie", "judge": "k", "rater_kind": "llm"},
        {"question_id": 2, "model_a": "x", "model_b": "y", "winner": "model_b", "judge": "h", "rater_kind": "human"},
        {"question_id": 3, "model_a": "y", "model_b": "x", "winner": "model_a", "judge": "j", "rater_kind": "llm"},
    ]
    paired = read_paired_votes(write(tmp_path, rows))
    assert paired.labelled == [("x", "y", 1.0, 0.75)]
    assert paired.unlabelled == [("x", "y", 0.0)]
    assert paired.human_only == 1
    assert paired.judges == ["j", "k"]
    assert read_paired_votes(write(tmp_path, rows), judges=["k"]).unlabelled == []


def test_table_format_names_lambda_and_the_human_only_width(tmp_path: Path) -> None:
    result = run("rank", str(write(tmp_path, votes())), "--combine", "ppi", "--format", "table")
    assert result.returncode == 0, result.stderr
    assert "lambda=" in result.stdout
    assert "humans only" in result.stdout


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"rater_kind": "robot"}, "line 1: rater_kind must be 'human' or 'llm'"),
        ({"question_id": None}, "line 1: question_id must be a string or an integer"),
        ({"winner": "left"}, "line 1: unknown winner 'left'"),
    ],
)
def test_bad_records_end_with_the_line_at_fault(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    rows = votes()
    rows[0] = {**rows[0], **change}
    result = run("rank", str(write(tmp_path, rows)), "--combine", "ppi")
    assert result.returncode == 1
    assert message in result.stderr


def test_a_missing_field_is_named(tmp_path: Path) -> None:
    rows = votes()
    del rows[0]["rater_kind"]
    result = run("rank", str(write(tmp_path, rows)), "--combine", "ppi")
    assert result.returncode == 1
    assert "missing field 'rater_kind'" in result.stderr


@pytest.mark.parametrize("option", [["--bootstrap", "100"], ["--elo"], ["--ties", "davidson"], ["--exclude-ties"]])
def test_options_ppi_does_not_take_are_refused(tmp_path: Path, option: list[str]) -> None:
    result = run("rank", str(write(tmp_path, votes())), "--combine", "ppi", *option)
    assert result.returncode == 1
    assert "--combine ppi does not take" in result.stderr


def test_judge_without_combine_is_refused(tmp_path: Path) -> None:
    result = run("rank", str(write(tmp_path, votes())), "--judge", "gpt-4")
    assert result.returncode == 1
    assert "--judge needs --combine ppi" in result.stderr


def test_no_human_votes_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    rows = [row for row in votes() if row["rater_kind"] == "llm"]
    result = run("rank", str(write(tmp_path, rows)), "--combine", "ppi")
    assert result.returncode == 1
    assert "rated by both humans and the judge" in result.stderr
