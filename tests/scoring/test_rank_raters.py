"""``python -m scoring rank FILE --cluster rater|prompt`` and ``--rater-model``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from scoring import bt_fit
from scoring.battles import aggregate_battles
from scoring.bradley_terry import bradley_terry_from_counts
from scoring.cli import main


@pytest.fixture
def battle_log(tmp_path: Path) -> Path:
    """Write a log of 12 raters (judge) over 20 prompts (question_id); rater u0 always votes for the left side."""
    rng = np.random.default_rng(4)
    theta = np.linspace(1, -1, 5)
    records = []
    for k in range(12):
        for q in range(50):
            a, b = rng.choice(5, 2, replace=False)
            p = 1.0 if k == 0 else 1 / (1 + np.exp(-(theta[a] - theta[b])))
            winner = "tie" if rng.random() < 0.05 else ("model_a" if rng.random() < p else "model_b")
            records.append(
                {
                    "model_a": f"m{a}",
                    "model_b": f"m{b}",
                    "winner": winner,
                    "judge": f"u{k}",
                    "question_id": f"q{q % 20}",
                }
            )
    path = tmp_path / "battles.jsonl"
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any, str]:
    status = main(["rank", *args])
    out, err = capsys.readouterr()
    return status, (json.loads(out) if status == 0 and out.lstrip().startswith("{") else out), err


@pytest.mark.parametrize(("by", "key"), [("rater", "judge"), ("prompt", "question_id")])
def test_cluster_gives_the_clustered_standard_errors_of_the_library(
    capsys: pytest.CaptureFixture[str], battle_log: Path, by: str, key: str
) -> None:
    status, payload, err = _run(capsys, str(battle_log), "--cluster", by)
    assert status == 0, err
    assert payload["cluster"] == by
    assert payload["interval"] == "sandwich"
    records = [json.loads(line) for line in battle_log.read_text().splitlines()]
    battles = [(r["model_a"], r["model_b"], r["winner"]) for r in records]
    counts = aggregate_battles(battles)
    index = {name: i for i, name in enumerate(counts.models)}
    outcome = {"model_a": 1, "model_b": 2, "tie": 0}
    cells = bt_fit.cluster_cells(
        by,
        [r[key] for r in records],
        [index[a] for a, _, _ in battles],
        [index[b] for _, b, _ in battles],
        [outcome[w] for _, _, w in battles],
    )
    expected = bradley_terry_from_counts(counts, clusters=cells)
    plain = bradley_terry_from_counts(counts)
    for row in payload["ratings"]:
        assert row["se"] == pytest.approx(expected.rating(row["model"]).se)
        assert row["rating"] == pytest.approx(plain.rating(row["model"]).rating)


def test_rater_model_reports_each_raters_reliability_and_left_bias(
    capsys: pytest.CaptureFixture[str], battle_log: Path
) -> None:
    status, payload, err = _run(capsys, str(battle_log), "--rater-model")
    assert status == 0, err
    assert payload["method"] == "rater_bradley_terry"
    assert len(payload["rater_model"]["raters"]) == 12
    assert max(payload["rater_model"]["raters"], key=lambda row: row["left_bias"])["rater"] == "u0"
    assert all(0 <= row["reliability"] <= 1 for row in payload["rater_model"]["raters"])
    assert sum(row["votes"] for row in payload["ratings"]) == 2 * 600
    status, table, _ = _run(capsys, str(battle_log), "--rater-model", "--cluster", "rater", "--format", "table")
    assert status == 0
    assert "reliability" in table
    assert "clustered by rater" in table


def test_filters_apply_before_the_fit(capsys: pytest.CaptureFixture[str], battle_log: Path) -> None:
    _, everything, _ = _run(capsys, str(battle_log), "--cluster", "rater")
    status, decisive, err = _run(capsys, str(battle_log), "--cluster", "rater", "--exclude-ties")
    assert status == 0, err
    ties = sum(row["ties"] for row in everything["ratings"]) // 2
    assert decisive["n_battles"] == everything["n_battles"] - ties
    assert decisive["filters"] == {"exclude_ties": True}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cluster", "rater", "--bootstrap", "10"], "--cluster does not take --bootstrap"),
        (["--rater-model", "--ties", "davidson"], "--ties davidson"),
        (["--rater-model", "--cluster", "prompt"], "--cluster prompt"),
        (["--rater-model", "--reweight", "pairs"], "--reweight"),
    ],
)
def test_options_that_do_not_combine_are_refused(
    capsys: pytest.CaptureFixture[str], battle_log: Path, args: list[str], message: str
) -> None:
    status, _, err = _run(capsys, str(battle_log), *args)
    assert status == 1
    assert message in err


def test_a_battle_without_the_key_is_an_error_naming_its_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "log.jsonl"
    path.write_text(
        json.dumps({"model_a": "a", "model_b": "b", "winner": "model_a", "judge": "x"})
        + "\n"
        + json.dumps({"model_a": "a", "model_b": "b", "winner": "model_b"})
        + "\n"
    )
    status, _, err = _run(capsys, str(path), "--cluster", "prompt")
    assert status == 1
    assert "line 1: no 'question_id' (read by --cluster prompt)" in err
    status, _, err = _run(capsys, str(path), "--rater-model")
    assert "line 2: no 'judge' (read by --rater-model)" in err
    with pytest.raises(SystemExit):
        main(["rank", str(path), "--cluster", "annotator"])
