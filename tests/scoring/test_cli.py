"""The ``python -m scoring`` command line, run as a subprocess like its users do."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m scoring`` from the repository root."""
    return subprocess.run([sys.executable, "-m", "scoring", *args], cwd=REPO_ROOT, capture_output=True, text=True)


@pytest.fixture
def battle_log(tmp_path: Path) -> Path:
    """Write a small battle log."""
    rows = [("gpt", "llama", "model_a")] * 6 + [("llama", "gpt", "model_a")] * 2 + [("gpt", "llama", "tie")] * 2
    rows += [("llama", "mistral", "model_a")] * 3 + [
        ("mistral", "llama", "tie (bothbad)"),
        ("mistral", "gpt", "model_a"),
    ]
    path = tmp_path / "battles.jsonl"
    path.write_text("".join(json.dumps({"model_a": a, "model_b": b, "winner": w}) + "\n" for a, b, w in rows))
    return path


def test_rank_prints_the_documented_json(battle_log: Path) -> None:
    done = run("rank", str(battle_log), "--bootstrap", "50", "--seed", "1")
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    keys = {"model", "rating", "lower", "upper", "rank", "rank_ub", "votes", "wins", "losses", "ties"}
    assert [row["model"] for row in payload["ratings"]] == ["gpt", "llama", "mistral"]
    assert all(keys <= set(row) for row in payload["ratings"])
    assert payload["interval"] == "bootstrap"
    again = json.loads(run("rank", str(battle_log), "--bootstrap", "50", "--seed", "1").stdout)
    assert again == payload


def test_rank_options_anchor_davidson_elo_and_table(battle_log: Path) -> None:
    done = run("rank", str(battle_log), "--anchor", "llama=1100", "--ties", "davidson", "--elo")
    payload = json.loads(done.stdout)
    llama = next(row for row in payload["ratings"] if row["model"] == "llama")
    assert llama["rating"] == pytest.approx(1100)
    assert "elo" in llama
    assert payload["ties"] == "davidson"
    table = run("rank", str(battle_log), "--format", "table")
    assert table.returncode == 0
    assert "gpt" in table.stdout
    assert "rating" in table.stdout


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"model_a": "x", "model_b": "y", "winner": "model_a"}\n{oops}\n', "line 2: invalid JSON"),
        ('{"model_a": "x", "winner": "model_a"}\n', "line 1: missing field 'model_b'"),
        ('{"model_a": "x", "model_b": "y", "winner": "win"}\n', "line 1: unknown winner label 'win'"),
    ],
)
def test_rank_reports_bad_input_on_one_line_without_traceback(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    done = run("rank", str(path))
    assert done.returncode != 0
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert "Traceback" not in done.stderr


def test_unreadable_file_and_bad_options_exit_non_zero(tmp_path: Path) -> None:
    done = run("rank", str(tmp_path / "nope.jsonl"))
    assert done.returncode == 1
    assert done.stderr.startswith("error: cannot read")
    bad_anchor = run("rank", str(tmp_path / "nope.jsonl"), "--anchor", "gpt")
    assert bad_anchor.returncode == 2
    assert len(bad_anchor.stderr.strip().splitlines()) == 1


@pytest.fixture
def rating_file(tmp_path: Path) -> Path:
    """Write (unit, rater, value) ratings by three raters."""
    rows = [(u, r, (u + (r == "c")) % 3) for u in range(12) for r in ("a", "b", "c")]
    path = tmp_path / "ratings.jsonl"
    path.write_text("".join(json.dumps({"unit": u, "rater": r, "value": v}) + "\n" for u, r, v in rows))
    return path


@pytest.mark.parametrize(
    "metric",
    [
        "krippendorff_alpha",
        "fleiss_kappa",
        "conger_kappa",
        "gwet_ac1",
        "brennan_prediger",
        "percent_agreement",
    ],
)
def test_agreement_prints_the_documented_json(rating_file: Path, metric: str) -> None:
    done = run("agreement", str(rating_file), "--metric", metric, "--bootstrap", "100", "--seed", "2")
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    assert {"metric", "value", "n_units", "n_raters", "n_ratings", "ci"} <= set(payload)
    assert (payload["metric"], payload["n_units"], payload["n_raters"], payload["n_ratings"]) == (
        metric,
        12,
        3,
        36,
    )
    assert len(payload["ci"]) == 2


def test_agreement_llm_metrics_report_their_counts(rating_file: Path) -> None:
    payload = json.loads(run("agreement", str(rating_file), "--metric", "mtbench_agreement").stdout)
    assert {"agree", "pairs", "agree_without_ties", "pairs_without_ties"} <= set(payload)
    payload = json.loads(run("agreement", str(rating_file), "--metric", "loo_mode_agreement").stdout)
    assert {"agree", "compared"} <= set(payload)


def test_agreement_options_level_weights_and_categories(tmp_path: Path, rating_file: Path) -> None:
    alpha = json.loads(
        run("agreement", str(rating_file), "--metric", "krippendorff_alpha", "--level", "interval").stdout
    )
    assert alpha["value"] is not None
    wide = json.loads(run("agreement", str(rating_file), "--metric", "gwet_ac1", "--categories", "0,1,2,3").stdout)
    narrow = json.loads(run("agreement", str(rating_file), "--metric", "gwet_ac1").stdout)
    # AC1's chance agreement divides by q - 1: an unused fourth category turns 1/2 into 1/3.
    assert wide["expected"] == pytest.approx(narrow["expected"] * 2 / 3)
    two = tmp_path / "two.jsonl"
    two.write_text(
        "".join(
            json.dumps({"unit": u, "rater": r, "value": (u * (r == "a")) % 3}) + "\n" for u in range(9) for r in "ab"
        )
    )
    weighted = run("agreement", str(two), "--metric", "cohen_kappa", "--weights", "quadratic")
    assert weighted.returncode == 0, weighted.stderr


def test_agreement_errors_are_one_line(tmp_path: Path) -> None:
    single = tmp_path / "single.jsonl"
    single.write_text('{"unit": 1, "rater": "a", "value": 1}\n{"unit": 2, "rater": "a", "value": 2}\n')
    done = run("agreement", str(single), "--metric", "fleiss_kappa")
    assert done.returncode == 1
    assert "at least 2 raters" in done.stderr
    unknown = run("agreement", str(single), "--metric", "kendall_w")
    assert unknown.returncode == 1
    assert "unknown metric 'kendall_w'" in unknown.stderr
    missing = tmp_path / "missing.jsonl"
    missing.write_text('{"unit": 1, "rater": "a"}\n')
    done = run("agreement", str(missing), "--metric", "fleiss_kappa")
    assert done.returncode == 1
    assert "line 1: missing field 'value'" in done.stderr


def test_agreement_rejects_options_the_metric_would_ignore(rating_file: Path) -> None:
    done = run("agreement", str(rating_file), "--metric", "fleiss_kappa", "--weights", "linear")
    assert done.returncode == 1
    assert "--weights applies to cohen_kappa and scott_pi only" in done.stderr
    done = run("agreement", str(rating_file), "--metric", "gwet_ac1", "--level", "ordinal")
    assert done.returncode == 1
    assert "--level applies to krippendorff_alpha only" in done.stderr


@pytest.mark.parametrize("names", [["a", "b", "c"], ["\u0000matrix\u0000", "x"], ["solo"]])
def test_json_output_is_the_standard_indented_encoding(names: list[str]) -> None:
    from scoring.cli import _finite, _json_with_matrix

    rng = np.random.default_rng(len(names))
    matrix = rng.random((len(names), len(names))).tolist()
    payload: dict[str, Any] = {"ratings": [{"model": n, "rating": 1000.0 + i} for i, n in enumerate(names)]}
    payload["win_probability"] = {"models": names, "matrix": matrix}
    payload["seed"] = 3
    assert _json_with_matrix(payload, ("win_probability", "matrix")) == json.dumps(_finite(payload), indent=1)
    payload["win_probability"]["matrix"][0][0] = float("nan")
    assert _json_with_matrix(payload, ("win_probability", "matrix")) == json.dumps(_finite(payload), indent=1)


@pytest.fixture
def label_file(tmp_path: Path) -> Path:
    """Write text-labelled votes where tie lies between a and b: raters split a/tie more than a/b."""
    votes = [("a", "a"), ("a", "tie"), ("b", "tie"), ("b", "b"), ("a", "tie"), ("tie", "tie"), ("a", "b"), ("b", "b")]
    path = tmp_path / "labels.jsonl"
    path.write_text(
        "".join(
            json.dumps({"unit": u, "rater": r, "value": v}) + "\n"
            for u, pair in enumerate(votes)
            for r, v in zip("xy", pair, strict=True)
        )
    )
    return path


@pytest.mark.parametrize(
    ("options", "named"),
    [
        (("--metric", "krippendorff_alpha", "--level", "ordinal"), "--level ordinal"),
        (("--metric", "cohen_kappa", "--weights", "quadratic"), "--weights quadratic"),
    ],
)
def test_text_labels_at_an_ordered_level_need_their_order_given(
    label_file: Path, options: tuple[str, ...], named: str
) -> None:
    refused = run("agreement", str(label_file), *options)

    assert refused.returncode == 1
    assert refused.stdout == ""
    assert f"error: {named} orders the values, and they are text labels (a, b, tie)" in refused.stderr
    assert "--categories" in refused.stderr
    given = run("agreement", str(label_file), *options, "--categories", "a,tie,b")
    assert given.returncode == 0, given.stderr
    numbers = label_file.with_name("numbers.jsonl")  # the same scale as numbers, which need no order
    scale = {"a": 0, "tie": 1, "b": 2}
    rows = [json.loads(line) for line in label_file.read_text().splitlines()]
    numbers.write_text("".join(json.dumps({**row, "value": scale[row["value"]]}) + "\n" for row in rows))
    assert json.loads(given.stdout)["value"] == pytest.approx(
        json.loads(run("agreement", str(numbers), *options).stdout)["value"]
    )
    alphabetical = run("agreement", str(label_file), *options, "--categories", "a,b,tie")
    assert json.loads(alphabetical.stdout)["value"] != pytest.approx(json.loads(given.stdout)["value"])


def test_text_labels_at_the_nominal_level_need_no_order(label_file: Path) -> None:
    done = run("agreement", str(label_file), "--metric", "krippendorff_alpha", "--level", "nominal")
    assert done.returncode == 0, done.stderr
