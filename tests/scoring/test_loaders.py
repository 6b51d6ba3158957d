"""Reading battle logs and rating files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from scoring import line_tally
from scoring.battles import OUTCOMES
from scoring.loaders import InputError, read_battle_counts, read_battles, read_ratings


def write(path: Path, text: str) -> Path:
    """Write text and return the path."""
    path.write_text(text)
    return path


def test_jsonl_and_json_array_give_the_same_counts(tmp_path: Path) -> None:
    battles = [{"model_a": "x", "model_b": "y", "winner": w} for w in ["model_a", "tie", "model_a", "model_b"]]
    lines = write(tmp_path / "b.jsonl", "\n".join(json.dumps(b) for b in battles) + "\n\n")
    array = write(tmp_path / "b.json", json.dumps(battles, indent=2))
    left, right = read_battle_counts(lines), read_battle_counts(array)
    assert left.wins.tolist() == right.wins.tolist() == [[0, 2], [1, 0]]
    assert read_battles(lines) == read_battles(array)
    assert [b[2] for b in read_battles(lines)] == ["model_a", "tie", "model_a", "model_b"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"model_a": "x", "model_b": "y", "winner": "model_a"}\n{"model_a": "x"', "line 2: invalid JSON"),
        (
            '{"model_a": "x", "model_b": "y", "winner": "model_a"}\n{"model_a": "x", "model_b": "y"}',
            "line 2: missing",
        ),
        ('\n{"model_a": "x", "model_b": "y", "winner": "draw"}', "line 2: unknown winner label 'draw'"),
        ('{"model_a": "x", "model_b": "x", "winner": "tie"}', "line 1: battle of model 'x' against itself"),
        ("[1, 2]", "line 1: expected a JSON object"),
        ("", "no battles"),
    ],
)
def test_bad_battle_files_name_the_line(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path / "bad.jsonl", text)
    with pytest.raises(InputError, match=message):
        read_battle_counts(path)
    with pytest.raises(InputError, match=message):
        read_battles(path)


def test_unreadable_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read"):
        read_battle_counts(tmp_path / "missing.jsonl")


def test_read_ratings_turns_lists_into_tuples(tmp_path: Path) -> None:
    path = write(tmp_path / "r.jsonl", '{"unit": [1, "a"], "rater": "r", "value": 2}\n')
    assert read_ratings(path) == [((1, "a"), "r", 2)]
    with pytest.raises(InputError, match="line 1: missing field 'value'"):
        read_ratings(write(tmp_path / "bad.jsonl", '{"unit": 1, "rater": "r"}\n'))


def test_records_in_another_key_order_or_with_extra_fields_take_the_general_path(tmp_path: Path) -> None:
    flat = write(
        tmp_path / "flat.jsonl",
        '{"model_a": "x", "model_b": "y", "winner": "model_a"}\n{"model_a": "y", "model_b": "x", "winner": "tie"}\n',
    )
    mixed = write(
        tmp_path / "mixed.jsonl",
        '{"winner": "model_a", "model_b": "y", "model_a": "x", "judge": "j1"}\n'
        '{"model_a": "y", "model_b": "x", "winner": "tie", "conversation_a": [{"content": "\\"hi\\""}]}\n',
    )
    left, right = read_battle_counts(flat), read_battle_counts(mixed)
    assert left.models == right.models == ("x", "y")
    assert left.wins.tolist() == right.wins.tolist()
    assert left.ties.tolist() == right.ties.tolist()


def test_an_error_names_the_first_line_with_that_content_in_any_block(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(line_tally, "BLOCK_BYTES", 256)
    good = '{"model_a": "x", "model_b": "y", "winner": "model_a"}\n'
    bad = '{"model_a": "x", "model_b": "y", "winner": "draw"}\n'
    path = write(tmp_path / "bad.jsonl", good * 40 + bad + good * 3 + bad)
    with pytest.raises(InputError, match="line 41: unknown winner label 'draw'"):
        read_battle_counts(path)


def test_the_byte_matrix_path_and_the_general_path_agree(tmp_path: Path) -> None:
    rows = [(f"m{i % 7}", f"m{(i * 3 + 1) % 7}", OUTCOMES[i % 4]) for i in range(500) if i % 7 != (i * 3 + 1) % 7]
    lines = [json.dumps({"model_a": a, "model_b": b, "winner": w}) for a, b, w in rows]
    flat = write(tmp_path / "flat.jsonl", "\n".join(lines) + "\n")
    # One line with other spacing sends every line through the general path.
    mixed = write(tmp_path / "mixed.jsonl", "\n".join(lines) + '\n{"model_a":"m1","model_b":"m2","winner":"tie"}\n')
    left, right = read_battle_counts(flat), read_battle_counts(mixed)
    assert left.models == right.models
    assert (right.ties - left.ties).sum() == 2
    assert np.array_equal(left.wins, right.wins)
    assert np.array_equal(left.ties_bothbad, right.ties_bothbad)
    assert left.n_battles == len(rows)


@pytest.mark.parametrize(
    "line",
    [
        '{"model_a": "x\\u00e9", "model_b": "y", "winner": "tie"}',
        '{"model_a": "x", "model_b": "y", "winner": "tie", "judge": "j"}',
        '{"model_b": "y", "model_a": "x", "winner": "tie"}',
        '\t{ "model_a" : "x" , "model_b" : "y" , "winner" : "tie" }\r',
    ],
)
def test_unusual_but_valid_lines_read_like_json(tmp_path: Path, line: str) -> None:
    path = write(tmp_path / "one.jsonl", line + "\n")
    counts = read_battle_counts(path)
    record = json.loads(line)
    assert counts.models == tuple(sorted((record["model_a"], record["model_b"])))
    assert counts.n_battles == 1
    assert counts.ties.sum() == 2
