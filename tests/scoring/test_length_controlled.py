"""AlpacaEval's length-controlled win rate against the alpaca_eval package's own computation."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sklearn

from scoring.cli import main
from scoring.length_controlled import LcReference, estimate_difficulty, length_controlled_winrate, raw_winrate
from tests import factories

glm_winrate = pytest.importorskip("alpaca_eval.metrics.glm_winrate")

ALPACA = factories.SHARED_DATA / "alpaca_farm_human_crossannotations.json"


def theirs(
    annotations: pd.DataFrame, glm: str, difficulty: np.ndarray, gamed: pd.DataFrame | None, tmp_path: Path
) -> dict[str, Any]:
    """Return alpaca_eval's metrics, its downloads replaced by a local df_gamed.csv.

    alpaca_eval reads each annotation's difficulty from df_gamed.csv by row position (the labels of its first rows
    per ``index``), and its v1 GLM also trains on that file's rows, the gamed baselines.
    """
    frame = pd.DataFrame({"model": "x", "index": np.arange(difficulty.size), "instruction_difficulty": difficulty})
    if gamed is not None:
        frame = gamed
    path = tmp_path / "df_gamed.csv"
    frame.to_csv(path, index=False)
    with pytest.MonkeyPatch.context() as patch, sklearn.config_context(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        patch.setattr(glm_winrate, "hf_hub_download", lambda **_: str(path))
        result: dict[str, Any] = glm_winrate.get_length_controlled_winrate(
            annotations.copy(), glm_name=glm, save_weights_dir=None, is_warn_extreme_changes=False
        )
    return result


def generated(seed: int, n: int = 300, ties: float = 0.1) -> tuple[pd.DataFrame, np.ndarray]:
    """Return annotations of one verbose model against a baseline, and each row's instruction difficulty."""
    rng = np.random.default_rng(seed)
    difficulty = rng.normal(0, 1, n)
    len_1 = rng.integers(200, 2000, n)
    len_2 = (len_1 * np.exp(rng.normal(0.3, 0.5, n))).astype(int)
    z = 0.4 + 0.5 * difficulty + 0.9 * np.tanh((len_2 - len_1) / 600)
    preference = np.where(rng.random(n) < 1 / (1 + np.exp(-z)), 2.0, 1.0)
    preference[rng.random(n) < ties] = 1.5
    annotations = pd.DataFrame(
        {
            "instruction": [f"q{i}" for i in range(n)],
            "output_1": ["x" * int(length) for length in len_1],
            "output_2": ["y" * int(length) for length in len_2],
            "generator_1": "baseline",
            "generator_2": "verbose",
            "annotator": "judge",
            "preference": preference,
        }
    )
    return annotations, difficulty


def gamed_baselines(difficulty: np.ndarray, seed: int) -> pd.DataFrame:
    """Return annotations of two gamed baselines (a verbose and a concise one) in df_gamed.csv's columns."""
    rng = np.random.default_rng(seed)
    frames = []
    for name, shift in (("gamed_verbose", 1.0), ("gamed_concise", -1.0)):
        std_delta = rng.normal(shift, 1, difficulty.size)
        z = 0.3 * difficulty - 0.8 * np.tanh(std_delta)
        won = rng.random(difficulty.size) < 1 / (1 + np.exp(-z))
        frames.append(
            pd.DataFrame(
                {
                    "model": name,
                    "index": np.arange(difficulty.size),
                    "instruction_difficulty": difficulty,
                    "preference": won.astype(float),
                    "std_delta_len": std_delta,
                    "not_gamed_baseline": False,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def ours(annotations: pd.DataFrame, difficulty: np.ndarray | None, gamed: pd.DataFrame | None = None) -> Any:
    reference = None
    if gamed is not None:
        reference = LcReference(
            preference=gamed["preference"].to_numpy() + 1,
            std_delta_len=gamed["std_delta_len"].to_numpy(),
            difficulty=gamed["instruction_difficulty"].to_numpy(),
            not_gamed=gamed["not_gamed_baseline"].to_numpy(dtype=bool),
        )
    return length_controlled_winrate(
        preference=annotations["preference"].to_numpy(),
        baseline_length=annotations["output_1"].str.len().to_numpy(),
        model_length=annotations["output_2"].str.len().to_numpy(),
        difficulty=difficulty,
        reference=reference,
    )


def assert_same(mine: Any, reference: dict[str, Any]) -> None:
    assert mine.length_controlled_winrate == pytest.approx(reference["length_controlled_winrate"], abs=0.1)
    assert mine.lc_standard_error == pytest.approx(reference["lc_standard_error"], abs=0.1)
    assert mine.win_rate == pytest.approx(reference["win_rate"], abs=1e-9)
    assert mine.standard_error == pytest.approx(reference["standard_error"], abs=1e-9)
    assert (mine.n_wins, mine.n_wins_base, mine.n_draws, mine.n_total) == (
        reference["n_wins"],
        reference["n_wins_base"],
        reference["n_draws"],
        reference["n_total"],
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("glm", ["length_controlled_minimal", "length_controlled_noreg"])
def test_lc_winrate_matches_alpaca_eval_within_a_tenth_of_a_point(glm: str, seed: int, tmp_path: Path) -> None:
    annotations, difficulty = generated(seed)
    mine = ours(annotations, None if glm.endswith("minimal") else difficulty)
    assert_same(mine, theirs(annotations, glm, difficulty, None, tmp_path))
    # the verbose model wins on length: controlling for it lowers its win rate
    assert mine.length_controlled_winrate < mine.win_rate


@pytest.mark.parametrize("seed", [0, 3])
def test_lc_winrate_regularised_to_gamed_baselines_matches_alpaca_eval_v1(seed: int, tmp_path: Path) -> None:
    annotations, difficulty = generated(seed)
    gamed = gamed_baselines(difficulty, seed)
    mine = ours(annotations, difficulty, gamed)
    assert_same(mine, theirs(annotations, "length_controlled_v1", difficulty, gamed, tmp_path))


def test_lc_winrate_on_the_alpaca_farm_human_cross_annotations_matches_alpaca_eval(tmp_path: Path) -> None:
    records = json.loads(ALPACA.read_text())
    annotations = pd.DataFrame(records)
    annotations["generator_1"], annotations["generator_2"], annotations["annotator"] = "output_1", "output_2", "humans"
    difficulty = estimate_difficulty(annotations["instruction"].to_numpy(), annotations["preference"].to_numpy())
    for glm, diff in (("length_controlled_minimal", None), ("length_controlled_noreg", difficulty)):
        mine = ours(annotations, diff)
        assert_same(mine, theirs(annotations, glm, difficulty, None, tmp_path))
    assert mine.n_total == 2596


def test_raw_winrate_counts_draws_as_half() -> None:
    assert raw_winrate([2, 1, 1.5, 0]) == pytest.approx(
        {"win_rate": 50.0, "standard_error": 100 * np.std([1, 0, 0.5, 0.5], ddof=1) / 2, "n_wins": 1}
        | {"n_wins_base": 1, "n_draws": 2, "n_total": 4}
    )


def test_lc_winrate_refuses_preferences_out_of_range() -> None:
    with pytest.raises(ValueError, match=r"\[1, 2\]"):
        length_controlled_winrate(preference=[1, 3], baseline_length=[1, 2], model_length=[2, 1])


def test_too_few_annotations_give_the_win_rate_and_no_lc() -> None:
    result = length_controlled_winrate(preference=[2, 1, 2], baseline_length=[1, 2, 3], model_length=[3, 2, 1])
    assert result.win_rate == pytest.approx(100 * 2 / 3)
    assert np.isnan(result.length_controlled_winrate)


def write_annotations(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps(rows))
    return path


def cli_rows(n: int = 40) -> list[dict[str, Any]]:
    rng = np.random.default_rng(5)
    rows = []
    for model in ("long", "short"):
        for i in range(n):
            base, other = int(rng.integers(50, 400)), int(rng.integers(50, 400)) * (3 if model == "long" else 1)
            pref = 2.0 if rng.random() < (0.7 if model == "long" else 0.4) else 1.0
            row = {"instruction": f"q{i}", "output_1": "b" * base, "output_2": "m" * other, "preference": pref}
            if i % 2:  # the baseline second: the preference is turned round
                row = row | {"output_1": "m" * other, "output_2": "b" * base, "preference": 3 - pref}
                rows.append(row | {"generator_1": model, "generator_2": "base"})
            else:
                rows.append(row | {"generator_1": "base", "generator_2": model})
    rows.append({"instruction": "q0", "output_1": "x", "output_2": "y", "preference": 1.0} | {"generator_1": "long"})
    rows[-1]["generator_2"] = "short"
    return rows


def test_cli_ranks_each_model_against_the_baseline_either_way_round(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_annotations(tmp_path / "annotations.json", cli_rows())
    assert main(["lc-winrate", str(path), "--baseline", "base"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["left_out"] == 1
    by_model = {row["model"]: row for row in payload["models"]}
    assert set(by_model) == {"long", "short"}
    assert by_model["long"]["n_total"] == 40
    long_prefs = [
        r["preference"] if r["generator_2"] == "long" else 3 - r["preference"]
        for r in cli_rows()
        if "long" in (r["generator_1"], r["generator_2"]) and "base" in (r["generator_1"], r["generator_2"])
    ]
    assert by_model["long"]["win_rate"] == pytest.approx(100 * (np.mean(long_prefs) - 1))
    assert main(["lc-winrate", str(path), "--baseline", "base", "--format", "table", "--difficulty", "none"]) == 0
    assert "LC win rate" in capsys.readouterr().out


def test_cli_reads_json_lines_and_a_difficulty_csv_by_position(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [r for r in cli_rows() if r["generator_2"] != "short" or r["generator_1"] != "long"]
    path = tmp_path / "annotations.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    csv = tmp_path / "instruction_difficulty.csv"
    csv.write_text("index,instruction_difficulty\n" + "".join(f"{i},{np.sin(i):.4f}\n" for i in range(40)))
    assert main(["lc-winrate", str(path), "--baseline", "base", "--difficulty", str(csv)]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["difficulty"] == "file"
    assert payload["models"][0]["glm_weights"].keys() >= {"instruction_difficulty"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('[{"instruction": "q", "output_1": "a", "output_2": "b", "generator_1": "base"}]', "line 1: 'generator_2'"),
        (
            '[\n{"instruction": "q", "output_1": "a", "output_2": "b", "generator_1": "base", "generator_2": "m",\n'
            ' "preference": 7}]',
            "line 2: 'preference'",
        ),
        ('{"instruction": 1}\n', "line 1: 'instruction' must be a string"),
        ("[1, 2", "line 1"),
    ],
)
def test_cli_names_the_line_of_a_bad_annotation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    assert main(["lc-winrate", str(path), "--baseline", "base"]) == 1
    assert message in capsys.readouterr().err


def test_cli_names_an_instruction_without_difficulty(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_annotations(tmp_path / "annotations.json", cli_rows())
    csv = tmp_path / "difficulty.csv"
    csv.write_text("instruction,difficulty\nq0,0.5\n")
    assert main(["lc-winrate", str(path), "--baseline", "base", "--difficulty", str(csv)]) == 1
    assert "no difficulty for instruction 'q1'" in capsys.readouterr().err
