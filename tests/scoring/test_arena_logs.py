"""FastChat ``clean_battle`` files as they are: extra keys, JSON arrays streamed, FastChat's filters."""

from __future__ import annotations

import importlib
import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from scoring import BattleCounts, compiled, loaders
from scoring.battles import counts_from_tally
from scoring.cli import main
from scoring.loaders import BattleFilter, InputError, read_battle_counts, read_battles

# Imported by name: bench/ is a directory of scripts (bench_scoring imports arena_logs as a top-level module), so
# importing it as bench.arena_logs here would make mypy see the same file under two names.
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


def expected_counts(records: list[dict[str, Any]], f: BattleFilter) -> BattleCounts:
    """Filter the parsed records the way FastChat's analysis does, written out plainly."""
    kept = [
        r
        for r in records
        if (not f.anony_only or r["anony"])
        and (f.language is None or r["language"] == f.language)
        and (not f.dedup or r.get("dedup_tag", {}).get("sampled", True))
        and (f.since is None or r["tstamp"] >= f.since)
        and (f.until is None or r["tstamp"] < f.until)
        and (not f.category or _path(r["category_tag"], f.category.split(".")))
        and (not f.exclude_ties or not r["winner"].startswith("tie"))
    ]
    if f.min_votes:
        votes = Counter(name for r in kept for name in (r["model_a"], r["model_b"]))
        kept = [r for r in kept if min(votes[r["model_a"]], votes[r["model_b"]]) >= f.min_votes]
    return counts_from_tally(Counter((r["model_a"], r["model_b"], r["winner"]) for r in kept))


def _path(tag: dict[str, Any], parts: list[str]) -> bool:
    """Follow a dotted path whose keys may hold dots (criteria_v0.1.complexity)."""
    for cut in range(1, len(parts) + 1):
        key = ".".join(parts[:cut])
        if key in tag:
            value = tag[key]
            return bool(value) if cut == len(parts) else isinstance(value, dict) and _path(value, parts[cut:])
    return False


def assert_same(left: BattleCounts, right: BattleCounts) -> None:
    assert left.models == right.models
    for name in ("wins", "ties", "ties_bothbad"):
        assert np.array_equal(getattr(left, name), getattr(right, name)), name


@pytest.fixture(scope="module")
def arena_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[dict[str, Any]]]:
    folder = tmp_path_factory.mktemp("arena")
    lines, array = folder / "battles.jsonl", folder / "battles.json"
    write_realistic(lines, 3000, n_models=25, seed=3, conversation_share=0.3)
    write_realistic(array, 3000, n_models=25, seed=3, array=True, conversation_share=0.3)
    records = json.loads(array.read_text())
    assert records == [json.loads(line) for line in lines.read_text().splitlines()]
    return lines, array, records


@pytest.mark.parametrize("filters", FILTERS, ids=[str(f.as_dict()) for f in FILTERS])
def test_clean_battle_records_with_every_key_read_like_fastchats_filters(
    arena_files: tuple[Path, Path, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch, filters: BattleFilter
) -> None:
    lines, array, records = arena_files
    expected = expected_counts(records, filters)
    assert expected.n_battles > 0
    for path in (lines, array):
        assert_same(read_battle_counts(path, filters), expected)
        battles = read_battles(path, filters)
        assert sum(1 for _ in battles) == expected.n_battles
    monkeypatch.setattr(compiled, "kernels", None)
    for path in (lines, array):
        assert_same(read_battle_counts(path, filters), expected)


def test_the_compiled_scanner_judges_every_record_itself(
    arena_files: tuple[Path, Path, list[dict[str, Any]]],
) -> None:
    if compiled.kernels is None:
        pytest.skip("the compiled kernels are not built")
    lines, array, _ = arena_files
    for path, is_array in ((lines, False), (array, True)):
        for f in FILTERS:
            result = compiled.kernels.scan_battles(str(path), True, 0, -1, is_array, *loaders.scan_options(f))
            assert result[3] == [], "no record was left to the Python parser"
            assert result[9] is None


@pytest.mark.parametrize("array", [False, True])
def test_the_projects_arena_export_takes_the_compiled_path(tmp_path: Path, array: bool) -> None:
    if compiled.kernels is None:
        pytest.skip("the compiled kernels are not built")
    rows = [
        {
            "question_id": f"q{i}",
            "model_a": "a",
            "model_b": "b",
            "winner": "model_a",
            "judge": f"rater {i}",
            "tstamp": START + i,
            "anony": True,
        }
        for i in range(50)
    ]
    path = tmp_path / ("export.json" if array else "export.jsonl")
    path.write_text(json.dumps(rows, indent=2) if array else "".join(json.dumps(r) + "\n" for r in rows))
    result = compiled.kernels.scan_battles(str(path), True, 0, -1, array)
    assert result[3] == []
    assert int(np.frombuffer(result[2], np.int64).sum()) == 50


ELEMENT = '{\n  "model_a": "x",\n  "model_b": "y",\n  "winner": "%s",\n  "anony": %s\n}'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[" + ",".join([ELEMENT % ("tie", "true")] * 2 + [ELEMENT % ("draw", "true")]) + "]",
            "line 11: unknown winner",
        ),
        ("[" + ELEMENT % ("tie", "true") + ",\n" + ELEMENT % ("tie", '"yes"') + "]", "line 7: field 'anony' must be"),
        ("[" + ELEMENT % ("tie", "true") + ",\n" + '{"model_a": "x",\n"model_b" "y"}]', "line 8: invalid JSON"),
        ("[" + ELEMENT % ("tie", "true") + "\n\n", "line 8: invalid JSON"),
        ("[" + ELEMENT % ("tie", "true") + "] []", "line 6: invalid JSON"),
        (
            "[" + ELEMENT % ("tie", "true") + ",\n" + '{"model_a": "x", "model_b": "y", "winner": "tie"}]',
            "line 7: missing field 'anony'",
        ),
    ],
)
def test_errors_in_a_json_array_name_the_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, message: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text)
    filters = BattleFilter(anony_only=True)
    with pytest.raises(InputError, match=message) as compiled_error:
        read_battle_counts(path, filters)
    with pytest.raises(InputError, match=message):
        read_battles(path, filters)
    monkeypatch.setattr(compiled, "kernels", None)
    with pytest.raises(InputError, match=message) as python_error:
        read_battle_counts(path, filters)
    assert str(python_error.value).split(":")[0] == str(compiled_error.value).split(":")[0]


def test_a_filter_that_needs_a_missing_field_names_the_line_and_the_option(tmp_path: Path) -> None:
    path = tmp_path / "b.jsonl"
    first = '{"model_a": "x", "model_b": "y", "winner": "tie", "tstamp": 5}\n'
    path.write_text(first + '{"model_a": "x", "model_b": "y", "winner": "tie"}\n')
    with pytest.raises(InputError, match=r"line 2: missing field 'tstamp' \(read by --since/--until\)"):
        read_battle_counts(path, BattleFilter(since=0))
    path.write_text(first)
    with pytest.raises(InputError, match="no battles pass the filters"):
        read_battle_counts(path, BattleFilter(until=5))
    assert read_battle_counts(path, BattleFilter(until=5.5)).n_battles == 1


def test_escaped_names_and_keys_read_like_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [
        '{"model_a": "caf\\u00e9 \\"v2\\"", "model_b": "\\ud83d\\ude00", "winner": "tie", "language": "Engl\\u0069sh"}',
        '{"model\\u005fa": "x", "model_b": "y", "winner": "model_a", "language": "English"}',
        '{"model_a": "x", "model_b": "y", "winner": "model_\\u0062", "language": "English",'
        ' "deep": [[[[{"a": [1e5, -0.5, null]}]]]]}',
    ]
    path = tmp_path / "escaped.jsonl"
    path.write_text("\n".join(rows) + "\n")
    expected = counts_from_tally(
        Counter(tuple(json.loads(r)[k] for k in ("model_a", "model_b", "winner")) for r in rows)
    )
    got = read_battle_counts(path, BattleFilter(language="English"))
    assert_same(got, expected)
    monkeypatch.setattr(compiled, "kernels", None)
    assert_same(read_battle_counts(path, BattleFilter(language="English")), expected)


def test_rank_filters_on_the_command_line(
    arena_files: tuple[Path, Path, list[dict[str, Any]]], capsys: pytest.CaptureFixture[str]
) -> None:
    lines, array, records = arena_files
    args = ["--anony-only", "--language", "English", "--dedup", "--exclude-ties", "--min-votes", "5"]
    args += [
        "--since",
        "2023-04-20T14:40:00",
        "--until",
        str(START + 45 * 2500),
        "--category",
        "criteria_v0.1.creativity",
    ]
    assert main(["rank", str(array), *args]) == 0
    payload = json.loads(capsys.readouterr().out)
    since = 1_682_001_600.0  # 2023-04-20T14:40:00Z
    expected = expected_counts(
        records,
        BattleFilter(
            anony_only=True,
            language="English",
            dedup=True,
            exclude_ties=True,
            min_votes=5,
            since=since,
            until=START + 45 * 2500,
            category="criteria_v0.1.creativity",
        ),
    )
    assert sorted(row["model"] for row in payload["ratings"]) == list(expected.models)
    assert sum(row["votes"] for row in payload["ratings"]) == 2 * expected.n_battles
    assert payload["filters"]["since"] == since
    with pytest.raises(SystemExit):
        main(["rank", str(lines), "--since", "yesterday"])
    assert "neither Unix seconds nor an ISO 8601 date" in capsys.readouterr().err


def test_rank_errors_name_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"model_a": "x", "model_b": "y", "winner": "tie"}\n')
    assert main(["rank", str(path), "--anony-only"]) == 1
    assert capsys.readouterr().err.strip() == f"error: {path}: line 1: missing field 'anony' (read by --anony-only)"
