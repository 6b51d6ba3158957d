"""Built-in taggers and per-category leaderboards of Arena logs (scoring/categories.py)."""

# ruff: noqa: RUF001 (texts in other scripts)

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from scoring import bradley_terry_from_counts
from scoring.categories import (
    LONG_QUERY_TOKENS,
    builtin_tags,
    category_tag_paths,
    count_tokens,
    detect_language,
    is_code,
    is_math,
    read_category_counts,
    record_categories,
)
from scoring.cli import main
from scoring.loaders import BattleFilter, InputError, read_battle_counts


@pytest.mark.parametrize(
    "text",
    [
        "Why does this fail?\n```\nx = [1, 2]\n```",
        "Fix it:\n~~~python\nprint(1)\n~~~",
        "def add(a, b):\n    return a + b",
        "for (int i = 0; i < n; i++) {\n  total += i;\n}",
        "How do I write a function in Python that reverses a list?",
        "My SQL query returns an error: what is wrong?",
    ],
)
def test_code_tagger_finds_fences_code_lines_and_a_language_beside_a_code_word(text: str) -> None:
    assert is_code(text)


@pytest.mark.parametrize(
    "text",
    [
        "Write a poem about the sea.",
        "I drank Java coffee on the island of Java.",
        "Return the book to the library tomorrow; thanks.",
        "What is the capital of France?",
    ],
)
def test_code_tagger_leaves_prose_alone(text: str) -> None:
    assert not is_code(text)


@pytest.mark.parametrize(
    "text",
    [
        "Compute $\\int_0^1 x^2 dx$.",
        "What is 17 * 23?",
        "Simplify \\frac{a}{b} + 1",
        "If x^2 = 49, what is x?",
        "Solve for x: 3x + 5 = 20",
        "Prove the theorem that every polynomial has a root.",
        "What is the probability of rolling 6 twice?",
    ],
)
def test_math_tagger_finds_latex_arithmetic_and_math_words(text: str) -> None:
    assert is_math(text)


@pytest.mark.parametrize(
    "text",
    ["Tell me a story about a dragon.", "Write an equation-free summary of the war.", "I have 3 cats."],
)
def test_math_tagger_leaves_other_text_alone(text: str) -> None:
    assert not is_math(text)


def test_count_tokens_counts_words_cjk_characters_and_punctuation() -> None:
    assert count_tokens("Hello, world!") == 4
    assert count_tokens("你好世界") == 4
    assert count_tokens("naïve café 42") == 3
    assert count_tokens("a " * 1000, limit=10) == 10


def test_long_query_is_over_500_tokens_across_user_turns() -> None:
    at_limit = "word " * LONG_QUERY_TOKENS
    assert "auto:long_query" not in builtin_tags(user_turns=[at_limit])
    assert "auto:long_query" in builtin_tags(user_turns=[at_limit + "more"])
    assert "auto:long_query" in builtin_tags(user_turns=["word " * 300, "word " * 201])


def test_multi_turn_is_more_than_one_user_turn() -> None:
    assert "auto:multi_turn" not in builtin_tags(user_turns=["Hi there, how are you?"])
    assert "auto:multi_turn" in builtin_tags(user_turns=["Hi there", "And then?"])
    assert builtin_tags(user_turns=[]) == []


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("What is the best way to learn how to cook rice in the oven?", "en"),
        ("Quelle est la meilleure façon de cuire le riz dans le four pour une famille?", "fr"),
        ("Was ist der beste Weg, um Reis zu kochen? Ich habe nicht die Zeit.", "de"),
        ("¿Cuál es la mejor manera de cocinar el arroz para una familia de los Andes?", "es"),
        ("Qual é a melhor maneira de cozinhar o arroz para uma família? Não sei.", "pt"),
        ("请问如何在烤箱里煮米饭？", "zh"),
        ("オーブンでご飯を炊く方法を教えてください。", "ja"),
        ("오븐에서 밥을 짓는 방법을 알려주세요.", "ko"),
        ("Как лучше всего приготовить рис в духовке?", "ru"),
        ("Як найкраще приготувати рис у духовці? Її рецепт є.", "uk"),
        ("ما هي أفضل طريقة لطهي الأرز في الفرن؟", "ar"),
        ("ok", None),
        ("12345 !!!", None),
    ],
)
def test_detect_language_by_script_and_common_words(text: str, language: str | None) -> None:
    assert detect_language(text) == language


def test_builtin_tags_name_the_language_of_the_first_turn() -> None:
    tags = builtin_tags(user_turns=["What is the integral of x^2 from 0 to 1, and how do you compute it?"])
    assert tags == ["auto:math", "auto:language:en"]


@pytest.mark.parametrize(
    "text",
    [
        "`" * 1_000_000,
        "$" * 1_000_000,
        " " * 1_000_000 + "x",
        "1+" * 500_000,
        "\\" * 1_000_000,
        "a" * 1_000_000,
        ("def " + "x" * 50 + "\n") * 20_000,
    ],
)
def test_taggers_take_bounded_time_on_pathological_text(text: str) -> None:
    started = time.perf_counter()
    builtin_tags(user_turns=[text, text])
    assert time.perf_counter() - started < 2.0


def test_category_tag_paths_are_the_true_leaves() -> None:
    tag = {
        "criteria_v0.1": {"specificity": True, "complexity": False},
        "if_v0.1": {"if": True, "score": 4},
        "math_v0.1": {"math": False},
        "creative_writing_v0.1": {"creative_writing": True, "score": "yes"},
        "flat": True,
    }
    assert list(category_tag_paths(tag)) == [
        "criteria_v0.1.specificity",
        "if_v0.1.if",
        "creative_writing_v0.1.creative_writing",
        "flat",
    ]


def test_record_categories_without_a_conversation_read_turn_and_user_tokens() -> None:
    record = {
        "language": "English",
        "turn": 2,
        "conv_metadata": {"sum_user_tokens": 501},
        "is_code": True,
        "is_refusal": False,
        "category_tag": {"math_v0.1": {"math": True}},
    }
    assert record_categories(record) == [
        "math_v0.1.math",
        "language:English",
        "is_code",
        "auto:multi_turn",
        "auto:long_query",
    ]
    assert record_categories(record, builtin=False) == ["math_v0.1.math", "language:English", "is_code"]


def test_record_categories_tag_the_conversation_text() -> None:
    record = {
        "conversation_a": [
            {"role": "user", "content": "```python\nprint(2 + 2)\n```\nWhy does this print 4 and what is the fix?"},
            {"role": "assistant", "content": "Because."},
            {"role": "user", "content": "Thanks"},
        ]
    }
    assert record_categories(record) == ["auto:code", "auto:math", "auto:multi_turn", "auto:language:en"]


def _battle(a: str, b: str, winner: str, **extra: Any) -> dict[str, Any]:
    return {"model_a": a, "model_b": b, "winner": winner, **extra}


def _log(tmp_path: Path, records: list[dict[str, Any]], *, array: bool = False) -> Path:
    path = tmp_path / ("log.json" if array else "log.jsonl")
    if array:
        path.write_text(json.dumps(records, indent=1))
    else:
        path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


def _arena_records(n: int, seed: int = 0) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    models = ["alpha", "beta", "gamma", "delta"]
    records = []
    for k in range(n):
        a, b = rng.choice(4, size=2, replace=False)
        winner = ["model_a", "model_b", "tie", "tie (bothbad)"][int(rng.choice(4, p=[0.45, 0.35, 0.15, 0.05]))]
        tag = {"criteria_v0.1": {"math": bool(rng.random() < 0.4)}, "if_v0.1": {"if": bool(rng.random() < 0.6)}}
        records.append(
            _battle(models[a], models[b], winner, category_tag=tag, anony=bool(k % 3), language="English", turn=1)
        )
    return records


@pytest.mark.parametrize("array", [False, True])
def test_category_counts_equal_the_category_filter_of_the_fast_reader(tmp_path: Path, array: bool) -> None:
    path = _log(tmp_path, _arena_records(600), array=array)
    filters = BattleFilter(anony_only=True, min_votes=5)
    found = {item.category: item for item in read_category_counts(path, filters)}
    for category in ("criteria_v0.1.math", "if_v0.1.if", "language:English"):
        expected = read_battle_counts(
            path, BattleFilter(anony_only=True, min_votes=5, category=category if "." in category else None)
        )
        counts = found[category].counts
        assert counts is not None
        assert counts.models == expected.models
        assert (counts.wins == expected.wins).all()
        assert (counts.ties == expected.ties).all()
        assert (counts.ties_bothbad == expected.ties_bothbad).all()


def test_rank_categories_prints_one_leaderboard_per_category(tmp_path: Path, capsys: Any) -> None:
    path = _log(tmp_path, _arena_records(400))
    assert (
        main(["rank", str(path), "--categories", "--bootstrap", "20", "--seed", "3", "--provisional-below", "200"]) == 0
    )
    payload = json.loads(capsys.readouterr().out)
    by_name = {entry["category"]: entry for entry in payload["categories"]}
    assert set(by_name) == {"criteria_v0.1.math", "if_v0.1.if", "language:English"}
    assert by_name["language:English"]["n_battles"] == 400
    assert not by_name["language:English"]["provisional"]
    assert by_name["criteria_v0.1.math"]["provisional"] == (by_name["criteria_v0.1.math"]["n_battles"] < 200)
    counts = read_battle_counts(path, BattleFilter(category="if_v0.1.if"))
    board = bradley_terry_from_counts(counts, bootstrap=20, rng=np.random.default_rng(3))
    assert [row["rating"] for row in by_name["if_v0.1.if"]["ratings"]] == pytest.approx(
        [row.rating for row in board.ratings]
    )
    assert [row["upper"] for row in by_name["if_v0.1.if"]["ratings"]] == pytest.approx(
        [row.upper for row in board.ratings]
    )


def test_rank_categories_table_marks_provisional_categories(tmp_path: Path, capsys: Any) -> None:
    path = _log(tmp_path, _arena_records(100))
    assert main(["rank", str(path), "--by-category", "--format", "table"]) == 0
    out = capsys.readouterr().out
    assert "== language:English: 100 battles (provisional: under 300)" in out
    assert "rank" in out
    assert "alpha" in out


def test_a_category_emptied_by_the_filters_is_shown_not_dropped(tmp_path: Path, capsys: Any) -> None:
    records = [_battle("a", "b", "model_a")] * 5 + [_battle("a", "b", "tie", category_tag={"x": True})]
    path = _log(tmp_path, records)
    assert main(["rank", str(path), "--categories", "--exclude-ties", "--no-builtin-tags"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["categories"] == [
        {
            "category": "x",
            "n_battles": 0,
            "provisional": True,
            "ratings": [],
            "warnings": ["no battles pass the filters"],
        }
    ]


def test_rank_categories_refuses_elo(tmp_path: Path, capsys: Any) -> None:
    path = _log(tmp_path, _arena_records(10))
    assert main(["rank", str(path), "--categories", "--elo"]) == 1
    assert "--categories ranks by Bradley-Terry only" in capsys.readouterr().err


def test_category_counts_errors_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(_battle("a", "b", "model_a")) + "\n{oops\n")
    with pytest.raises(InputError, match="line 2: invalid JSON"):
        read_category_counts(path)
    path.write_text(json.dumps(_battle("a", "b", "nobody")) + "\n")
    with pytest.raises(InputError, match="line 1:"):
        read_category_counts(path)


def test_a_log_without_categories_is_an_error(tmp_path: Path) -> None:
    path = _log(tmp_path, [_battle("a", "b", "model_a")])
    with pytest.raises(InputError, match="no battle in the file has a category"):
        read_category_counts(path)


@pytest.mark.parametrize("limit", [1, 7, 50, 501, 5000])
def test_count_tokens_with_a_limit_is_the_full_count_capped(limit: int) -> None:
    rng = np.random.default_rng(limit)
    pieces = ["word", "x,y", "你好", " ", "  ", "\n", "3.14", "!!", "naïve", "a-b"]
    for _ in range(20):
        text = "".join(pieces[i] for i in rng.integers(0, len(pieces), size=int(rng.integers(0, 3000))))
        assert count_tokens(text, limit=limit) == min(limit, count_tokens(text))
    long_text = "word, " * 3000  # spans several 4,096-character slices
    assert count_tokens(long_text) == 6000
    assert count_tokens("a" * 10_000 + " b") == 2  # a slice never cuts a token
