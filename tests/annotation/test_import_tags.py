"""Prompt tags at import (annotation/importers/tags.py): the file's tags/category, the built-in auto: tags, backfill."""

from __future__ import annotations

import json
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from annotation.importers import (
    ImportRefused,
    import_alpaca_eval,
    import_battles,
    import_outputs,
    parse_alpaca_eval,
    parse_battles,
    parse_outputs,
)
from annotation.models import Prompt
from tests import factories


def _jsonl(*rows: dict[str, Any]) -> bytes:
    return "\n".join(json.dumps(row) for row in rows).encode()


def _tags(campaign: Any) -> dict[str, list[str]]:
    return dict(Prompt.objects.filter(campaign=campaign).values_list("external_id", "tags"))


CODE_PROMPT = "Why does this fail?\n```python\nprint(1/0)\n```"


@pytest.mark.django_db
def test_outputs_import_stores_the_files_tags_then_the_builtin_ones(researcher: User) -> None:
    campaign = factories.CampaignFactory.create(owner=researcher)
    parsed = parse_outputs(
        "o.jsonl",
        _jsonl(
            {"prompt_id": "p1", "prompt": CODE_PROMPT, "model": "m1", "output": "A", "tags": ["debug", "python"]},
            {"prompt_id": "p1", "prompt": CODE_PROMPT, "model": "m2", "output": "B"},
            {"prompt_id": "p2", "prompt": "Write a poem about the sea and the sky.", "model": "m1", "output": "C"},
            {"prompt_id": "p3", "prompt": "Hi", "model": "m1", "output": "D", "category": "chit chat"},
        ),
    )

    import_outputs(campaign=campaign, parsed=parsed)

    assert _tags(campaign) == {
        "p1": ["debug", "python", "auto:code", "auto:math"],
        "p2": ["auto:language:en"],
        "p3": ["chit chat"],
    }
    assert all("tags" not in o.metadata for o in parsed.outputs)


@pytest.mark.django_db
def test_wide_csv_takes_a_comma_separated_tags_cell_and_a_category(researcher: User) -> None:
    campaign = factories.CampaignFactory.create(owner=researcher)
    data = b'prompt_id,prompt,tags,category,output:m1\np1,Hello there,"a, b",writing,A1\n'

    import_outputs(campaign=campaign, parsed=parse_outputs("wide.csv", data))

    prompt = Prompt.objects.get(campaign=campaign)
    assert prompt.tags == ["a", "b", "writing"]
    assert prompt.metadata == {}


@pytest.mark.parametrize(
    ("tags", "problem"),
    [
        (["auto:code"], "the prefix auto: is reserved"),
        ([""], "1 to 100 characters"),
        (["x" * 101], "1 to 100 characters"),
        ([3], "a tag must be text, got int"),
        (["tab\there"], "control character"),
        ([f"t{i}" for i in range(21)], "more than 20 tags"),
    ],
)
def test_bad_tags_are_refused_naming_the_line(tags: list[object], problem: str) -> None:
    data = _jsonl({"prompt_id": "p1", "prompt": "Q", "model": "m", "output": "A", "tags": tags})
    with pytest.raises(ImportRefused) as refused:
        parse_outputs("o.jsonl", data)
    assert refused.value.lines[0].startswith("o.jsonl:1: tags: ")
    assert problem in refused.value.lines[0]


def test_conflicting_tags_for_one_prompt_are_refused() -> None:
    data = _jsonl(
        {"prompt_id": "p1", "prompt": "Q", "model": "m1", "output": "A", "tags": ["x"]},
        {"prompt_id": "p1", "prompt": "Q", "model": "m2", "output": "B", "tags": ["y"]},
    )
    with pytest.raises(ImportRefused) as refused:
        parse_outputs("o.jsonl", data)
    assert refused.value.lines == ["o.jsonl:2: tags: conflicting tags for prompt_id p1 (line 1)"]


def _conversation(*turns: str) -> list[dict[str, str]]:
    messages = []
    for turn in turns:
        messages += [{"role": "user", "content": turn}, {"role": "assistant", "content": "ok"}]
    return messages


@pytest.mark.django_db
def test_battles_import_tags_from_category_tag_language_and_every_user_turn(researcher: User) -> None:
    battle = {
        "question_id": "q1",
        "model_a": "m1",
        "model_b": "m2",
        "winner": "model_a",
        "language": "English",
        "category": "arena",
        "category_tag": {"criteria_v0.1": {"math": True, "creativity": False}, "if_v0.1": {"if": True, "score": 4}},
        "conversation_a": _conversation("What is the capital of France and why is it there?", "Now in French"),
    }
    battle["conversation_b"] = battle["conversation_a"]
    plan = parse_battles("arena.jsonl", _jsonl(battle, {**battle, "model_a": "m3", "tags": ["extra"]}))

    import_battles(campaign_slug="arena-tags", plan=plan, owner=researcher)

    tags = Prompt.objects.get(campaign__slug="arena-tags").tags
    assert tags == [
        "arena",
        "criteria_v0.1.math",
        "if_v0.1.if",
        "language:English",
        "extra",
        "auto:multi_turn",
        "auto:language:en",
    ]


@pytest.mark.django_db
def test_a_battle_without_conversation_takes_arenas_own_fields(researcher: User) -> None:
    battle = {
        "question_id": "q9",
        "model_a": "m1",
        "model_b": "m2",
        "winner": "tie",
        "turn": 2,
        "is_code": True,
        "is_refusal": False,
        "conv_metadata": {"sum_user_tokens": 501},
        "category_tag": {"math_v0.1": {"math": True}},
    }
    import_battles(campaign_slug="arena-bare", plan=parse_battles("a.jsonl", _jsonl(battle)), owner=researcher)
    expected = ["math_v0.1.math", "is_code", "auto:multi_turn", "auto:long_query"]
    assert Prompt.objects.get(campaign__slug="arena-bare").tags == expected

    call_command("tag_prompts", stdout=StringIO())  # no text to tag again: kept as imported

    assert Prompt.objects.get(campaign__slug="arena-bare").tags == expected


@pytest.mark.django_db
def test_alpaca_eval_import_takes_tags_and_tags_the_instruction(researcher: User) -> None:
    vote = {
        "instruction": "Solve 3x + 5 = 20 for x.",
        "output_1": "x = 5",
        "output_2": "x = 4",
        "generator_1": "m1",
        "generator_2": "m2",
        "preference": 1,
        "annotator": "gpt4",
        "tags": "algebra",
    }
    import_alpaca_eval(campaign_slug="alpaca-tags", plan=parse_alpaca_eval("a.jsonl", _jsonl(vote)), owner=researcher)

    assert Prompt.objects.get(campaign__slug="alpaca-tags").tags == ["algebra", "auto:math"]


@pytest.mark.django_db
def test_tag_prompts_backfills_auto_tags_and_metadata_tags_keeping_given_ones(researcher: User) -> None:
    campaign = factories.CampaignFactory.create(owner=researcher)
    other = factories.CampaignFactory.create(owner=researcher)
    factories.PromptFactory.create(campaign=campaign, external_id="a", text=CODE_PROMPT, tags=["mine", "auto:stale"])
    factories.PromptFactory.create(
        campaign=campaign, external_id="b", text="Bonjour", metadata={"category": "greeting", "tags": "x,y"}
    )
    factories.PromptFactory.create(campaign=other, external_id="c", text=CODE_PROMPT)
    out = StringIO()

    call_command("tag_prompts", "--campaign", campaign.slug, stdout=out)

    assert out.getvalue().strip() == "tagged 2 prompts"
    assert _tags(campaign) == {"a": ["mine", "auto:code", "auto:math"], "b": ["x", "y", "greeting"]}
    assert _tags(other) == {"c": []}
    call_command("tag_prompts", stdout=out)
    assert _tags(other) == {"c": ["auto:code", "auto:math"]}


@pytest.mark.django_db
def test_tag_prompts_reads_a_battles_stored_conversation_for_multi_turn(researcher: User) -> None:
    campaign = factories.CampaignFactory.create(owner=researcher)
    prompt = factories.PromptFactory.create(campaign=campaign, external_id="a", text="Hi")
    factories.OutputFactory.create(prompt=prompt, metadata={"conversation": _conversation("Hi", "More please")})

    call_command("tag_prompts", stdout=StringIO())

    assert "auto:multi_turn" in Prompt.objects.get(pk=prompt.pk).tags


@pytest.mark.django_db
def test_tag_prompts_names_an_unknown_campaign() -> None:
    with pytest.raises(CommandError, match="no campaign with slug 'nope'"):
        call_command("tag_prompts", "--campaign", "nope")
