"""``python -m scoring`` refuses option values it would otherwise misuse, naming the option: a negative or
fractional seed (numpy's "expected non-negative integer" named nothing), a percentile out of (0, 1], an empty
filter (which kept every battle), and --since not before --until (which reported only "no battles pass")."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "scoring", *args], cwd=REPO_ROOT, capture_output=True, text=True)


@pytest.fixture
def arena_log(tmp_path: Path) -> Path:
    """Write a small Arena-shaped log with the fields the filters read."""
    rows = [("gpt", "llama", "model_a"), ("llama", "gpt", "tie"), ("llama", "mistral", "model_a")] * 3
    path = tmp_path / "arena.jsonl"
    path.write_text(
        "".join(
            json.dumps({"model_a": a, "model_b": b, "winner": w, "language": "English", "tstamp": 1.7e9 + i}) + "\n"
            for i, (a, b, w) in enumerate(rows)
        )
    )
    return path


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--seed", "-1", "--bootstrap", "10"], "argument --seed: must be >= 0"),
        (["--seed", "1.5"], "argument --seed: '1.5' is not a whole number"),
        (["--bootstrap", "many"], "argument --bootstrap: 'many' is not a whole number"),
        (["--downsample-high-freq", "--downsample-percentile", "2"], "argument --downsample-percentile: must be a"),
        (["--downsample-high-freq", "--downsample-percentile", "0"], "argument --downsample-percentile: must be a"),
        (["--category", ""], "argument --category: must not be empty"),
        (["--language", " "], "argument --language: must not be empty"),
    ],
)
def test_rank_names_the_option_with_a_bad_value(arena_log: Path, args: list[str], message: str) -> None:
    done = run("rank", str(arena_log), *args)

    assert done.returncode == 2
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_agreement_names_a_negative_seed(tmp_path: Path) -> None:
    path = tmp_path / "ratings.jsonl"
    path.write_text("".join(json.dumps({"unit": u, "rater": r, "value": "a"}) + "\n" for u in "xy" for r in "pq"))

    done = run("agreement", str(path), "--metric", "percent_agreement", "--bootstrap", "5", "--seed", "-3")

    assert done.returncode == 2
    assert "argument --seed: must be >= 0" in done.stderr


def test_since_after_until_is_an_error_naming_both_options(arena_log: Path) -> None:
    done = run("rank", str(arena_log), "--since", "2024-01-01", "--until", "2023-01-01")

    assert done.returncode == 1
    assert done.stderr == "error: --since (1704067200) must be before --until (1672531200), in Unix seconds\n"


def test_the_filters_still_work_with_good_values(arena_log: Path) -> None:
    done = run("rank", str(arena_log), "--language", "English", "--since", "1700000000", "--seed", "0")

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["filters"]["language"] == "English"


@pytest.mark.parametrize(
    ("command", "name", "message"),
    [
        (["rank"], "arena.parquet", "rank reads JSON Lines or a JSON array, not parquet files (manage.py export"),
        (["rank"], "arena.csv", "rank reads JSON Lines or a JSON array, not csv files (manage.py export"),
        (["lc-winrate", "--baseline", "m"], "ae.CSV", "lc-winrate reads JSON Lines or a JSON array, not csv files"),
        (["raters"], "arena.parquet", "raters reads JSON Lines, a JSON array or CSV, not parquet files"),
        (["agreement", "--metric", "fleiss_kappa"], "r.csv", "agreement reads JSON Lines or a JSON array, not csv"),
    ],
)
def test_an_export_file_type_a_command_cannot_read_is_named(
    tmp_path: Path, command: list[str], name: str, message: str
) -> None:
    path = tmp_path / name
    path.write_bytes(b"PAR1\x15\x04\x15" if name.endswith("parquet") else b"model_a,model_b,winner\nx,y,model_a\n")

    done = run(command[0], str(path), *command[1:])

    assert done.returncode == 1
    assert done.stderr.startswith(f"error: {path}: {message}")
    assert "invalid JSON" not in done.stderr


def test_raters_still_reads_csv(tmp_path: Path) -> None:
    path = tmp_path / "arena.csv"
    path.write_text("model_a,model_b,winner,judge\n" + "x,y,model_a,r1\ny,x,model_b,r2\nx,y,tie,r1\n")

    done = run("raters", str(path))

    assert done.returncode == 0, done.stderr
    assert {row["rater"] for row in json.loads(done.stdout)["raters"]} == {"r1", "r2"}


def test_lc_winrate_and_agreement_name_the_file_of_a_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "annotations.jsonl"
    path.write_text('{"instruction": "a", "generator_1": 3}\n')

    lc = run("lc-winrate", str(path), "--baseline", "m")
    agreement = run("agreement", str(path), "--metric", "fleiss_kappa")
    unknown = run("agreement", str(path), "--metric", "nope")

    assert lc.stderr == f"error: {path}: line 1: 'generator_1' must be a string\n"
    assert agreement.stderr == f"error: {path}: line 1: missing field 'unit'\n"
    assert unknown.stderr.startswith("error: unknown metric 'nope'")  # an option's error names no file


def test_the_help_names_the_downsampling_prompt_key_in_the_order_the_code_reads_it() -> None:
    done = run("rank", "--help")

    assert "prompt = conversation_a's user turns, else question_id" in " ".join(done.stdout.split())
