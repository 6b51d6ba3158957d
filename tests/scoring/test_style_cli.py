"""``python -m scoring rank FILE --style-control`` and the loader that carries ``conv_metadata`` to it."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from scoring.cli import main
from scoring.loaders import BattleFilter, InputError, read_battle_counts, read_style_battles
from scoring.style import FEATURES, style_counts, style_leaderboard

write_realistic = importlib.import_module("bench.arena_logs").write_realistic


@pytest.fixture(scope="module")
def arena_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Write an Arena-shaped log (every clean_battle key, conv_metadata included)."""
    path = tmp_path_factory.mktemp("style") / "arena.jsonl"
    write_realistic(path, 3000, n_models=12, seed=4)
    return path


def records(path: Path) -> list[dict[str, Any]]:
    """Return the log's records."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    """Run the command line and return its JSON output."""
    assert main(list(args)) == 0
    result: dict[str, Any] = json.loads(capsys.readouterr().out)
    return result


def test_read_style_battles_carries_each_records_counts(arena_log: Path) -> None:
    battles = read_style_battles(arena_log)
    rows = records(arena_log)
    assert battles.n_battles == len(rows)
    first = rows[0]
    assert battles.models[battles.model_a[0]] == first["model_a"]
    assert tuple(battles.counts_a[0]) + tuple(battles.counts_b[0]) == style_counts(first["conv_metadata"])
    plain = read_battle_counts(arena_log)
    assert battles.models == plain.models


def test_read_style_battles_reads_a_json_array_alike(arena_log: Path, tmp_path: Path) -> None:
    array = tmp_path / "arena.json"
    array.write_text(json.dumps(records(arena_log), indent=1), encoding="utf-8")
    lines, elements = read_style_battles(arena_log), read_style_battles(array)
    assert lines.models == elements.models
    assert np.array_equal(lines.counts_b, elements.counts_b)
    assert np.array_equal(lines.outcome, elements.outcome)


def test_read_style_battles_applies_the_filters_as_the_plain_path(arena_log: Path) -> None:
    filters = BattleFilter(anony_only=True, language="English", exclude_ties=True, min_votes=40)
    battles = read_style_battles(arena_log, filters)
    plain = read_battle_counts(arena_log, filters)
    assert battles.models == plain.models
    assert battles.n_battles == plain.n_battles


def test_read_style_battles_names_the_line_without_conv_metadata(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    good = {"model_a": "x", "model_b": "y", "winner": "tie", "conv_metadata": dict.fromkeys(_keys(), 1)}
    path.write_text(json.dumps(good) + "\n" + json.dumps({"model_a": "x", "model_b": "y", "winner": "tie"}) + "\n")
    with pytest.raises(InputError, match="line 2: missing field 'conv_metadata'"):
        read_style_battles(path)


def _keys() -> list[str]:
    """Return the conv_metadata keys style control reads."""
    return [
        f"{stem}_{side}" if stem != "tokens" else f"sum_assistant_{side}_tokens"
        for side in "ab"
        for stem in ("tokens", "header_count", "list_count", "bold_count")
    ]


def test_rank_style_control_prints_ratings_and_style_coefficients(
    arena_log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    payload = run_json(capsys, "rank", str(arena_log), "--style-control", "--bootstrap", "30", "--seed", "2")
    assert [item["feature"] for item in payload["style"]] == list(FEATURES)
    for item in payload["style"]:
        assert item["lower"] <= item["coefficient"] <= item["upper"]
    for row in payload["ratings"]:
        assert {"model", "rating", "lower", "upper", "rank_lower", "rank_upper", "votes"} <= set(row)
    expected = style_leaderboard(read_style_battles(arena_log), reg=0.5, bootstrap=30, rng=np.random.default_rng(2))
    assert payload["ratings"][0]["rating"] == pytest.approx(expected.ratings[0].rating)
    assert payload["reg"] == 0.5
    assert payload["bootstrap"] == 30


def test_rank_style_control_unregularised_and_table(arena_log: Path, capsys: pytest.CaptureFixture[str]) -> None:
    payload = run_json(capsys, "rank", str(arena_log), "--style-control", "--style-reg", "0", "--min-votes", "30")
    assert payload["reg"] == 0.0
    assert abs(np.mean([row["rating"] for row in payload["ratings"]]) - 1000) < 1e-6
    assert main(["rank", str(arena_log), "--style-control", "--format", "table"]) == 0
    out = capsys.readouterr().out
    assert "style feature" in out
    assert "length" in out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--elo"], "--style-control does not take --elo"),
        (["--anchor", "x=1000"], "--style-control does not take --anchor"),
        (["--reweight", "pairs"], "--style-control does not take --reweight"),
    ],
)
def test_rank_style_control_refuses_options_it_does_not_take(
    arena_log: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    assert main(["rank", str(arena_log), "--style-control", *extra]) == 1
    assert message in capsys.readouterr().err


def test_rank_style_reg_must_be_a_non_negative_number(arena_log: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["rank", str(arena_log), "--style-control", "--style-reg", "nan"])
    assert "finite number >= 0" in capsys.readouterr().err
