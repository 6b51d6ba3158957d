"""The compiled kernels: built, and giving what their numpy twins give."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from scoring import BattleCounts, compiled, line_tally, loaders
from scoring.battles import OUTCOMES
from scoring.loaders import InputError, read_battle_counts
from tests.scoring.test_line_tally import expected_tally, random_text


def test_the_kernels_are_built() -> None:
    # scripts/setup (pip install -e .) builds them; a checkout needs `python setup.py build_ext --inplace`.
    assert compiled.kernels is not None


@pytest.fixture
def kernels_module() -> object:
    """Return the compiled kernels, skipping where they are not built."""
    if compiled.kernels is None:
        pytest.skip("the compiled kernels are not built (test_the_kernels_are_built fails for that)")
    return compiled.kernels


@pytest.mark.parametrize("trailing_newline", [True, False])
def test_lines_that_are_not_battles_are_tallied_like_a_plain_count(
    tmp_path: Path, kernels_module: object, trailing_newline: bool
) -> None:
    assert compiled.kernels is not None
    data = random_text(7, 5000) + (b"\n" if trailing_newline else b"")
    path = tmp_path / "lines.txt"
    path.write_bytes(data)
    for parse in (False, True):
        names, _, counts, lines, line_counts, first, n = compiled.kernels.scan_battles(str(path), parse)[:7]
        tally = {
            line: (int(c), int(f))
            for line, c, f in zip(
                lines, np.frombuffer(line_counts, np.int64), np.frombuffer(first, np.int64), strict=True
            )
        }
        expected = expected_tally(data)
        if parse:  # the flat battle lines of the vocabulary were counted per pair instead
            battles = {line: expected.pop(line)[0] for line in list(expected) if line.startswith(b'{"model_a"')}
            assert int(np.frombuffer(counts, np.int64).sum()) == sum(battles.values())
            assert len(names) == len({name for line in battles for name in json.loads(line).values()} - {"tie"})
        assert tally == expected
        assert list(np.frombuffer(first, np.int64)) == sorted(f for _, f in expected.values())
        assert n == len(data.split(b"\n")) - trailing_newline


def test_a_line_longer_than_the_read_buffer_is_one_line(tmp_path: Path, kernels_module: object) -> None:
    assert compiled.kernels is not None
    long = b"x" * (3 << 20)
    path = tmp_path / "long.txt"
    path.write_bytes(b"a\n" + long + b"\na\n" + long)
    _, _, _, lines, line_counts, first, _ = compiled.kernels.scan_battles(str(path), True)[:7]
    assert lines == [b"a", long]
    assert np.frombuffer(line_counts, np.int64).tolist() == [2, 2]
    assert np.frombuffer(first, np.int64).tolist() == [1, 2]


def test_a_missing_file_raises_the_usual_os_error(tmp_path: Path, kernels_module: object) -> None:
    assert compiled.kernels is not None
    with pytest.raises(FileNotFoundError):
        compiled.kernels.scan_battles(str(tmp_path / "missing.jsonl"), True)
    with pytest.raises(IsADirectoryError):
        compiled.kernels.scan_battles(str(tmp_path), True)


def tricky_battle_log(seed: int) -> bytes:
    """Return a valid battle log whose lines vary in every way the scanner must treat like JSON."""
    rng = np.random.default_rng(seed)
    names = [f"m{i}" for i in range(40)] + ["caf\u00e9", "\u6a21\u578b", 'say "hi"', "back\\slash", "tab\there"]
    lines = []
    for _ in range(3000):
        a, b = rng.choice(len(names), size=2, replace=False)
        record = {"model_a": names[a], "model_b": names[b], "winner": OUTCOMES[rng.integers(4)]}
        style = rng.integers(8)
        if style == 0:
            line = json.dumps(record, ensure_ascii=False)
        elif style == 1:
            line = json.dumps(record)  # \u escapes for the non-ASCII names
        elif style == 2:
            line = json.dumps(dict(reversed(record.items())))
        elif style == 3:
            line = json.dumps({**record, "judge": "j", "tstamp": 1.5})
        elif style == 4:
            line = json.dumps(record, separators=(",", ":"), ensure_ascii=False) + "\r"
        elif style == 5:
            line = "\t " + json.dumps(record, separators=(" ,\t", " :  "), ensure_ascii=False) + " \t"
        elif style == 6:
            line = json.dumps(record, indent=None, ensure_ascii=False).replace(": ", ":")
        else:
            line = " " * int(rng.integers(3))
        lines.append(line)
    return ("\ufeff" + "\n".join(lines) + "\n\r\n").encode()


def counts_both_ways(path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[BattleCounts, BattleCounts]:
    """Return the counts read with the compiled scanner (in parts read by threads) and with the numpy path."""
    monkeypatch.setattr(line_tally, "PART_BYTES", 2000)
    monkeypatch.setattr(loaders, "idle_cores", lambda: 3)
    with_kernels = read_battle_counts(path)
    assert_same_counts(with_kernels, one_part(path, monkeypatch))
    monkeypatch.setattr(compiled, "kernels", None)
    return with_kernels, read_battle_counts(path)


def one_part(path: Path, monkeypatch: pytest.MonkeyPatch) -> BattleCounts:
    """Return the counts read with the compiled scanner in one part."""
    monkeypatch.setattr(loaders, "idle_cores", lambda: 1)
    return read_battle_counts(path)


def assert_same_counts(left: BattleCounts, right: BattleCounts) -> None:
    """Check that two aggregations are identical."""
    assert left.models == right.models
    for name in ("wins", "ties", "ties_bothbad"):
        assert np.array_equal(getattr(left, name), getattr(right, name)), name


@pytest.mark.parametrize("seed", [1, 2])
def test_tricky_logs_aggregate_like_the_numpy_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kernels_module: object, seed: int
) -> None:
    path = tmp_path / "tricky.jsonl"
    path.write_bytes(tricky_battle_log(seed))
    left, right = counts_both_ways(path, monkeypatch)
    assert_same_counts(left, right)
    assert "caf\u00e9" in left.models
    assert left.n_battles > 2000


def test_many_models_and_pairs_grow_the_scanner_tables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kernels_module: object
) -> None:
    rng = np.random.default_rng(4)
    a = rng.integers(0, 3000, 20_000)
    b = (a + rng.integers(1, 3000, 20_000)) % 3000
    text = "".join(
        f'{{"model_a": "model {x}", "model_b": "model {y}", "winner": "{OUTCOMES[x % 4]}"}}\n'
        for x, y in zip(a, b, strict=True)
    )
    path = tmp_path / "many.jsonl"
    path.write_text(text)
    left, right = counts_both_ways(path, monkeypatch)
    assert_same_counts(left, right)
    assert len(left.models) > 2900


@pytest.mark.parametrize(
    "text",
    [
        '{"model_a": "x", "model_b": "y", "winner": "tie"}\n{"model_a": "x", "model_b": "y", "winner": "draw"}\n',
        '{"model_a": "x", "model_b": "y", "winner": "tie"}\n{"model_a": "x", "model_b": "x", "winner": "tie"}\n',
        '{"model_a": "x", "model_b": "y", "winner": "tie"}\n{"model_a": "x", "model_b": "y"}\n',
        '{"model_a": "x", "model_b": "y", "winner": "tie"}\n{"model_a": "x", "model_b": "y", "winner": "tie"\n',
        '{"model_a": "x", "model_b": "y", "winner": "tie"}\n{"model_a": "x", "model_b": "y", "winner": 1}\n',
        '\n\n{"model_a": "x", "model_b": "y", "winner": "tie"}\n{"model_a": "x\\u0000", "model_b": 2, "winner": "tie"}',
        '{"model_a": "\xff", "model_b": "y", "winner": "tie"}\n{"model_a": "x", "model_b": "y", "winner": "no"}\n',
        '{"model_a": "x", "model_b": "y", "winner": "model_b"}\n{"model_a": "\xfe", "model_b": "y", "winner": "tie"}\n',
        "\n \n\r\n",
        "",
    ],
)
def test_bad_logs_give_the_numpy_path_s_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kernels_module: object, text: str
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(text.encode("latin-1") if "\xff" in text or "\xfe" in text else text.encode())
    with pytest.raises(InputError) as compiled_error:
        read_battle_counts(path)
    monkeypatch.setattr(line_tally, "PART_BYTES", 20)
    monkeypatch.setattr(loaders, "idle_cores", lambda: 4)
    with pytest.raises(InputError) as parts_error:
        read_battle_counts(path)
    assert str(parts_error.value) == str(compiled_error.value)
    monkeypatch.setattr(compiled, "kernels", None)
    with pytest.raises(InputError) as numpy_error:
        read_battle_counts(path)
    assert str(compiled_error.value) == str(numpy_error.value)
    assert str(compiled_error.value).startswith(("line 2:", "line 4:", "line 1:", "no battles"))


def test_errors_in_later_parts_name_their_line_in_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kernels_module: object
) -> None:
    good = '{"model_a": "x", "model_b": "y", "winner": "model_a"}\n'
    bad = '{"model_a": "x", "model_b": "y", "winner": "draw"}\n'
    path = tmp_path / "bad.jsonl"
    path.write_text(good * 300 + bad + good * 50 + bad)
    monkeypatch.setattr(line_tally, "PART_BYTES", 1000)
    monkeypatch.setattr(loaders, "idle_cores", lambda: 8)
    assert len(line_tally.line_ranges(path, 8)) == 8
    with pytest.raises(InputError, match="line 301: unknown winner label 'draw'"):
        read_battle_counts(path)
