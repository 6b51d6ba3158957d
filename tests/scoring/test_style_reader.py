"""read_style_battles through the compiled scanner (conv_metadata read in C) against its Python twin."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from scoring import compiled, line_tally, loaders
from scoring.loaders import BattleFilter, InputError, read_style_battles
from scoring.style import StyleBattles

write_realistic = importlib.import_module("bench.arena_logs").write_realistic
START = 1_682_000_000.0
FILTERS = [
    BattleFilter(),
    BattleFilter(anony_only=True),
    BattleFilter(language="Chinese", exclude_ties=True),
    BattleFilter(dedup=True, since=START + 45 * 100, until=START + 45 * 1500),
    BattleFilter(category="criteria_v0.1.complexity", min_votes=30),
    BattleFilter(category="math_v0.1.math", anony_only=True, language="English", dedup=True),
]
META = {
    "sum_assistant_a_tokens": 10,
    "header_count_a": {"h1": 1, "h2": 0},
    "list_count_a": {"ordered": 2, "unordered": 3},
    "bold_count_a": {"**": 4, "__": 0},
    "sum_assistant_b_tokens": 20,
    "header_count_b": {"h1": 0},
    "list_count_b": {"ordered": 0, "unordered": 1},
    "bold_count_b": {"**": 0, "__": 2},
}


@pytest.fixture
def built() -> None:
    """Skip where the kernels are not built (test_compiled fails for that)."""
    if compiled.kernels is None:
        pytest.skip("the compiled kernels are not built")


@pytest.fixture(scope="module")
def arena_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Write the same Arena-shaped log as JSON Lines and as a JSON array."""
    folder = tmp_path_factory.mktemp("style_reader")
    lines, array = folder / "arena.jsonl", folder / "arena.json"
    write_realistic(lines, 2500, n_models=14, seed=5)
    write_realistic(array, 2500, n_models=14, seed=5, array=True)
    return lines, array


def canonical(battles: StyleBattles) -> tuple[tuple[str, ...], list[tuple[int, ...]]]:
    """Return the models and the battles as sorted rows, each row repeated by its weight."""
    rows = np.column_stack([battles.model_a, battles.model_b, battles.outcome, battles.counts_a, battles.counts_b])
    expanded = np.repeat(rows, battles.weights, axis=0)
    return battles.models, sorted(map(tuple, expanded.tolist()))


def python_read(path: Path, filters: BattleFilter | None = None) -> StyleBattles:
    """Return read_style_battles with the kernels switched off (every record parsed in Python)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(compiled, "kernels", None)
        return read_style_battles(path, filters)


def outcome_of_both(path: Path) -> tuple[Any, Any]:
    """Return what each path gives for the file: the canonical battles or the error message."""
    results: list[Any] = []
    for reader in (read_style_battles, python_read):
        try:
            results.append(canonical(reader(path)))
        except InputError as exc:
            results.append(str(exc))
    return results[0], results[1]


@pytest.mark.parametrize("filters", FILTERS)
def test_the_scanner_reads_style_counts_as_the_python_twin(
    built: None, arena_files: tuple[Path, Path], filters: BattleFilter
) -> None:
    for path, is_array in ((arena_files[0], False), (arena_files[1], True)):
        assert compiled.kernels is not None
        result = compiled.kernels.scan_battles(str(path), True, 0, -1, is_array, *loaders.scan_options(filters), True)
        assert result[3] == [], "no record was left to the Python parser"
        assert canonical(read_style_battles(path, filters)) == canonical(python_read(path, filters))


def write_records(path: Path, rows: list[Any], array: bool = False) -> Path:
    """Write records as JSON Lines or as an indented JSON array."""
    text = json.dumps(rows, indent=2) if array else "".join(json.dumps(row) + "\n" for row in rows)
    path.write_text(text)
    return path


def battle(meta: Any = META, **extra: Any) -> dict[str, Any]:
    """Return a battle record with the given conv_metadata (left out when meta is ...)."""
    record: dict[str, Any] = {"model_a": "m1", "model_b": "m2", "winner": "tie", **extra}
    if meta is not ...:
        record["conv_metadata"] = meta
    return record


TRICKY_META = [
    {**META, "header_count_a": {}},  # an empty object counts 0
    {**META, "sum_assistant_a_tokens": 123456789012345},
    {**META, "sum_assistant_b_tokens": 10**20},  # past 18 digits: left to Python
    {**META, "bold_count_b": 1.0},  # a float: an error
    {**META, "bold_count_b": 1e2},
    {**META, "bold_count_b": True},
    {**META, "bold_count_b": "3"},
    {**META, "bold_count_b": None},
    {**META, "bold_count_b": -1},
    {**META, "list_count_a": {"ordered": 1, "unordered": -2}},
    {**META, "list_count_a": {"ordered": 1, "unordered": [2]}},
    {key: value for key, value in META.items() if key != "list_count_b"},  # a key missing
    None,
    [1, 2],
    ...,  # no conv_metadata at all
]


@pytest.mark.parametrize("meta", TRICKY_META)
@pytest.mark.parametrize("array", [False, True])
def test_tricky_metadata_gives_the_python_twins_battles_or_error(
    built: None, tmp_path: Path, meta: Any, array: bool
) -> None:
    rows = [battle(), battle(winner="model_a"), battle(meta), battle(model_a="m3")]
    path = write_records(tmp_path / ("log.json" if array else "log.jsonl"), rows, array)
    compiled_result, python_result = outcome_of_both(path)
    assert compiled_result == python_result
    if isinstance(python_result, str):  # the third record's (first) line
        third = 2 + sum(len(json.dumps(row, indent=2).splitlines()) for row in rows[:2]) if array else 3
        assert python_result.startswith(f"line {third}:")


def test_repeated_keys_count_as_python_reads_them_the_last_one(built: None, tmp_path: Path) -> None:
    meta = json.dumps(META)
    lines = [
        '{"model_a": "a", "model_b": "b", "winner": "tie", "conv_metadata": {"header_count_a": {"h1": 5, "h1": 1}, '
        + meta[1:]
        + "}",
        '{"model_a": "a", "model_b": "b", "winner": "tie", "conv_metadata": {"sum_assistant_a_tokens": 999}, '
        f'"conv_metadata": {meta}}}',
        '{"model_a": "a", "model_b": "b", "winner": "tie", "conv_metadata": '
        + meta[:-1]
        + ', "sum_assistant_a_tokens": 7}}',
        '{"model_a": "a", "model_b": "b", "winner": "tie", "conv_metadata": '
        + meta.replace("sum_assistant_b_tokens", "sum_assistant_b_tok\\u0065ns")
        + "}",
    ]
    path = tmp_path / "repeated.jsonl"
    path.write_text("\n".join(lines) + "\n")
    compiled_result, python_result = outcome_of_both(path)
    assert compiled_result == python_result
    counts = read_style_battles(path).counts_a[:, 0].tolist()
    assert sorted(counts) == [7, 10, 10, 10]


def test_filtered_out_battles_need_no_metadata(built: None, tmp_path: Path) -> None:
    rows = [battle(language="English"), battle(..., language="German"), battle(language="English", winner="model_b")]
    path = write_records(tmp_path / "filtered.jsonl", rows)
    filters = BattleFilter(language="English")
    assert canonical(read_style_battles(path, filters)) == canonical(python_read(path, filters))
    assert read_style_battles(path, filters).n_battles == 2
    with pytest.raises(InputError, match="line 2: missing field 'conv_metadata'"):
        read_style_battles(path)


def test_errors_in_later_parts_name_their_line_in_the_file(
    built: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good, bad = json.dumps(battle()) + "\n", json.dumps(battle(...)) + "\n"
    path = tmp_path / "parts.jsonl"
    path.write_text(good * 300 + bad + good * 50 + bad)
    monkeypatch.setattr(line_tally, "PART_BYTES", 1000)
    monkeypatch.setattr(loaders, "idle_cores", lambda: 8)
    assert len(line_tally.line_ranges(path, 8)) == 8
    with pytest.raises(InputError, match="line 301: missing field 'conv_metadata'"):
        read_style_battles(path)
    path.write_text(good * 300 + json.dumps(battle(model_a="m9")) + "\n" + good * 50)
    assert canonical(read_style_battles(path)) == canonical(python_read(path))
    assert read_style_battles(path).models == ("m1", "m2", "m9")
