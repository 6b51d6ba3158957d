from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from django.core.management import CommandError, call_command

from tests.results.conftest import Rated


def export(rated: Rated, tmp_path: Path, fmt: str, name: str, *args: str) -> Path:
    out = tmp_path / name
    call_command("export", rated.campaign.slug, "--format", fmt, "--out", str(out), *args)
    return out


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_ratings_export_has_one_row_per_rating_with_pseudonyms_not_user_names(rated: Rated, tmp_path: Path) -> None:
    rows = read_jsonl(export(rated, tmp_path, "ratings", "r.jsonl"))

    assert len(rows) == 4 * len(rated.comparisons)
    raters = {row["rater"] for row in rows}
    assert rated.alice.pseudonym in raters
    text = json.dumps(rows)
    assert "alice" not in text
    assert "alice@example.org" not in text
    first = rows[0]
    assert first["model_a"] == "model-x"
    assert first["choice"] == "a"
    assert first["winner_model"] == "model-x"
    assert first["shown_left"] == "b"
    assert first["choice_side"] == "right"
    assert first["time_ms"] == 1000
    assert first["prompt"].startswith("Question 0")


def test_arena_export_gives_battles_with_the_shown_left_model_as_model_a(rated: Rated, tmp_path: Path) -> None:
    rows = read_jsonl(export(rated, tmp_path, "arena", "a.jsonl", "--raters", "humans"))

    assert len(rows) == 2 * len(rated.comparisons)
    assert set(rows[0]) == {"model_a", "model_b", "winner", "judge", "question_id", "tstamp"}
    assert rows[0] == {**rows[0], "model_a": "model-y", "model_b": "model-x", "winner": "model_b"}
    assert rows[1]["judge"] == "expert_1"
    assert rows[0]["judge"] == rated.alice.pseudonym
    assert rows[1]["winner"] == "tie"


def test_dpo_majority_keeps_comparisons_a_strict_majority_of_ratings_prefers(rated: Rated, tmp_path: Path) -> None:
    rows = read_jsonl(export(rated, tmp_path, "dpo", "d.jsonl"))

    # alice, the expert (ties on every 4th) and the judge twice (reversed on every 5th): 4 votes each.
    assert len(rows) == len(rated.comparisons) - 1  # comparison 0: 2 of 4 for the better model, no majority
    assert all(r["chosen_model"] < r["rejected_model"] for r in rows)
    assert {r["policy"] for r in rows} == {"majority"}
    assert rows[0]["votes_chosen"] + rows[0]["votes_rejected"] + rows[0]["votes_tie"] == rows[0]["n_ratings"]


def test_dpo_unanimous_and_each_policies(rated: Rated, tmp_path: Path) -> None:
    unanimous = read_jsonl(export(rated, tmp_path, "dpo", "u.jsonl", "--aggregate", "unanimous"))
    each = read_jsonl(export(rated, tmp_path, "dpo", "e.jsonl", "--aggregate", "each", "--raters", "alice"))

    n = len(rated.comparisons)
    assert len(unanimous) == len([i for i in range(n) if i % 4 and i % 5])
    assert len(each) == n
    assert {r["rater"] for r in each} == {rated.alice.pseudonym}


def test_csv_and_parquet_exports_carry_the_same_rows(rated: Rated, tmp_path: Path) -> None:
    jsonl = read_jsonl(export(rated, tmp_path, "alpaca_eval", "x.jsonl"))
    with export(rated, tmp_path, "alpaca_eval", "x.csv").open() as handle:
        csv_rows = list(csv.DictReader(handle))
    table = pq.read_table(export(rated, tmp_path, "alpaca_eval", "x.parquet")).to_pylist()

    assert len(jsonl) == len(csv_rows) == len(table) == 4 * len(rated.comparisons)
    assert table == jsonl
    assert csv_rows[0]["instruction"] == jsonl[0]["instruction"]
    assert {r["preference"] for r in jsonl} == {1.0, 2.0, 1.5}


def test_export_rejects_an_unknown_file_type_and_an_unknown_rater(rated: Rated, tmp_path: Path) -> None:
    with pytest.raises(CommandError, match=r"unknown file type \.txt"):
        export(rated, tmp_path, "ratings", "r.txt")
    with pytest.raises(CommandError, match="no rater named nobody"):
        export(rated, tmp_path, "ratings", "r.jsonl", "--raters", "nobody")
    with pytest.raises(CommandError, match="ratings exports take each"):
        export(rated, tmp_path, "ratings", "r.jsonl", "--aggregate", "majority")
    assert not (tmp_path / "r.txt").exists()


def test_exports_keep_quotes_backslashes_newlines_and_unicode_intact(rated: Rated, tmp_path: Path) -> None:
    tricky = 'He said "no"\\n, then\ttabbed\nnewline \\ backslash, café 😀, comma,'
    rated.comparisons[0].prompt.__class__.objects.filter(pk=rated.comparisons[0].prompt_id).update(text=tricky)

    jsonl = read_jsonl(export(rated, tmp_path, "ratings", "t.jsonl"))
    with export(rated, tmp_path, "ratings", "t.csv").open(newline="") as handle:
        csv_rows = list(csv.DictReader(handle))
    table = pq.read_table(export(rated, tmp_path, "ratings", "t.parquet")).to_pylist()

    assert jsonl[0]["prompt"] == csv_rows[0]["prompt"] == table[0]["prompt"] == tricky
    assert jsonl[0]["rationale"] == table[0]["rationale"] == ""
    assert jsonl[0]["strength"] is None
    assert table[0]["strength"] is None
