"""Parsing and storing each import format: pure parsers report every bad line; services write atomically."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import User

from annotation.importers import (
    ImportRefused,
    import_alpaca_eval,
    import_battles,
    import_gold,
    import_outputs,
    parse_alpaca_eval,
    parse_battles,
    parse_gold,
    parse_outputs,
)
from annotation.models import Campaign, Comparison, Output, Prompt, Rating
from tests import factories


def _jsonl(*rows: dict[str, Any]) -> bytes:
    return "\n".join(json.dumps(row) for row in rows).encode()


def _errors(parse: object, name: str, data: bytes) -> list[str]:
    with pytest.raises(ImportRefused) as refused:
        parse(name, data)  # type: ignore[operator]
    return refused.value.lines


# Outputs: parsing (no database).


def test_parse_outputs_reads_the_long_format() -> None:
    parsed = parse_outputs(
        "o.jsonl",
        _jsonl(
            {"prompt_id": 1, "prompt": "Hi?", "model": "m1", "output": "Hello", "reference": "Hey"},
            {"prompt_id": 1, "prompt": "Hi?", "model": "m2", "output": "Yo", "seed": 3},
        ),
    )

    assert parsed.layout == "long"
    assert list(parsed.prompts) == ["1"]
    assert parsed.prompts["1"].reference == "Hey"
    assert [(o.model, o.text, o.metadata) for o in parsed.outputs] == [("m1", "Hello", {}), ("m2", "Yo", {"seed": 3})]


def test_parse_outputs_reads_the_wide_csv_format_skipping_empty_cells() -> None:
    data = b'prompt_id,prompt,reference,topic,output:m1,output:m2\np1,"Two\nlines",,math,A1,\np2,Q2,R2,art,A2,B2\n'

    parsed = parse_outputs("wide.csv", data)

    assert parsed.layout == "wide"
    assert parsed.prompts["p1"].text == "Two\nlines"
    assert parsed.prompts["p2"].metadata == {"topic": "art"}
    assert [(o.prompt_id, o.model, o.line) for o in parsed.outputs] == [
        ("p1", "m1", 2),
        ("p2", "m1", 4),
        ("p2", "m2", 4),
    ]


def test_parse_outputs_reports_every_bad_line_with_its_field() -> None:
    data = _jsonl(
        {"prompt_id": "p1", "prompt": "Hi?", "model": "m1", "output": "Hello"},
        {"prompt_id": "p1", "prompt": "Hi?", "model": "m1", "output": "Again"},
        {"prompt_id": "p1", "prompt": "Hello?", "model": "m2", "output": "Hi"},
        {"prompt_id": "p2", "prompt": "Q", "model": "m1", "output": "  "},
        {"prompt": "Q", "model": "m1", "output": "A"},
    )

    assert _errors(parse_outputs, "o.jsonl", data) == [
        "o.jsonl:2: model: duplicate row: prompt p1 and model m1 as on line 1",
        "o.jsonl:3: prompt: conflicting text for prompt_id p1 (line 1)",
        "o.jsonl:4: output: empty text",
        "o.jsonl:5: prompt_id: missing field",
    ]


def test_a_null_character_anywhere_in_a_record_is_reported_with_its_line_and_field() -> None:
    # PostgreSQL stores no U+0000 in text or jsonb: the import says where it is instead of failing on the write.
    data = _jsonl(
        {"prompt_id": "p1", "prompt": "Hi?", "model": "m1", "output": "Hel\u0000lo"},
        {"prompt_id": "p1", "prompt": "Hi?", "model": "m2", "output": "Hey", "meta": {"tags": ["a", "b\u0000"]}},
        {"prompt_id": "p1", "prompt": "Hi?", "model": "m3", "output": "Yo"},
    )
    csv = b"prompt_id,prompt,model,output\np1,Hi?,m1,Hello\np2,Q\x00,m1,A\n"

    assert _errors(parse_outputs, "o.jsonl", data) == [
        "o.jsonl:1: output: contains a null character (U+0000), which cannot be stored",
        "o.jsonl:2: meta: contains a null character (U+0000), which cannot be stored",
    ]
    assert _errors(parse_outputs, "o.csv", csv) == [
        "o.csv:3: prompt: contains a null character (U+0000), which cannot be stored"
    ]
    battle = {"model_a": "a", "model_b": "b", "winner": "model_a", "judge": "x\u0000y"}
    assert _errors(parse_battles, "b.json", json.dumps([battle]).encode()) == [
        "b.json:1: judge: contains a null character (U+0000), which cannot be stored"
    ]


def test_parse_outputs_reports_the_line_of_bad_json_in_a_json_array() -> None:
    data = b'[\n  {"prompt_id": "p1", "prompt": "Q", "model": "m", "output": "A"},\n  {"prompt_id": "p2",, }\n]'

    assert _errors(parse_outputs, "o.json", data) == [
        "o.json:3: json: invalid JSON: Expecting property name enclosed in double quotes at column 22"
    ]


def test_parse_outputs_reports_a_non_utf8_line_and_byte() -> None:
    data = b'{"prompt_id": "p1", "prompt": "Q", "model": "m", "output": "A"}\n{"prompt": "\xff"}\n'

    assert _errors(parse_outputs, "o.jsonl", data) == [
        "o.jsonl:2: encoding: not UTF-8: byte 0xFF at column 13 (file offset 76)"
    ]


def test_parse_outputs_names_a_utf16_file_instead_of_listing_every_line() -> None:
    data = "prompt_id,prompt,model,output\np1,Q,m,A\n".encode("utf-16")

    assert _errors(parse_outputs, "o.csv", data) == ["o.csv:1: encoding: the file is UTF-16: save it as UTF-8"]


def test_parse_outputs_refuses_an_empty_file() -> None:
    assert _errors(parse_outputs, "o.csv", b"  \n") == ["o.csv:1: file: the file is empty"]


def test_parse_outputs_keeps_the_first_thousand_errors_and_counts_the_rest() -> None:
    data = _jsonl(*({"prompt_id": f"p{i}", "prompt": "Q", "model": "m"} for i in range(2500)))

    with pytest.raises(ImportRefused) as refused:
        parse_outputs("o.jsonl", data)

    lines = refused.value.lines
    assert (len(lines), refused.value.total) == (1001, 2500)
    assert lines[0] == "o.jsonl:1: output: missing field"
    assert lines[999] == "o.jsonl:1000: output: missing field"
    assert lines[-1] == "... and 1,500 more"


def test_parse_outputs_reports_csv_rows_with_the_wrong_number_of_cells() -> None:
    data = b"prompt_id,prompt,model,output\np1,Q,m1,A,extra\np2,Q\n"

    assert _errors(parse_outputs, "o.csv", data) == [
        "o.csv:2: csv: more cells than header columns",
        "o.csv:3: csv: fewer cells than header columns",
    ]


# Outputs: storing.


@pytest.mark.django_db
def test_import_outputs_dry_run_counts_and_writes_nothing(researcher: User) -> None:
    campaign = factories.CampaignFactory.create(owner=researcher)
    parsed = parse_outputs("o.jsonl", _jsonl({"prompt_id": "p1", "prompt": "Q", "model": "m1", "output": "A"}))

    summary = import_outputs(campaign=campaign, parsed=parsed, dry_run=True)

    assert (summary.dry_run, summary.created) == (True, {"prompts": 1, "outputs": 1})
    assert not Prompt.objects.filter(campaign=campaign).exists()


@pytest.mark.django_db
def test_import_outputs_refuses_a_prompt_stored_with_another_text(researcher: User) -> None:
    campaign = factories.CampaignFactory.create(owner=researcher)
    factories.PromptFactory.create(campaign=campaign, external_id="p1", text="Original")
    parsed = parse_outputs("o.jsonl", _jsonl({"prompt_id": "p1", "prompt": "Changed", "model": "m", "output": "A"}))

    with pytest.raises(ImportRefused) as refused:
        import_outputs(campaign=campaign, parsed=parsed)

    assert refused.value.lines == ["o.jsonl:1: prompt: prompt_id p1 is already stored with a different text"]
    assert not Output.objects.filter(prompt__campaign=campaign).exists()


@pytest.mark.django_db
def test_import_outputs_refuses_a_closed_campaign(researcher: User) -> None:
    campaign = factories.CampaignFactory.create(owner=researcher, status=Campaign.Status.CLOSED)
    parsed = parse_outputs("o.jsonl", _jsonl({"prompt_id": "p1", "prompt": "Q", "model": "m", "output": "A"}))

    with pytest.raises(Exception, match="is closed"):
        import_outputs(campaign=campaign, parsed=parsed)


# Battles.


def _battle(**fields: object) -> dict[str, object]:
    conversation = [{"role": "user", "content": "What is 2+2?"}, {"role": "assistant", "content": "4"}]
    base: dict[str, object] = {"model_a": "m1", "model_b": "m2", "winner": "model_a", "conversation_a": conversation}
    return {**base, **fields}


@pytest.mark.django_db
def test_battles_on_the_same_question_with_swapped_models_are_one_comparison(researcher: User) -> None:
    plan = parse_battles(
        "arena.jsonl",
        _jsonl(
            _battle(question_id="q1", judge="ann"),
            _battle(question_id="q1", judge="bob", model_a="m2", model_b="m1", winner="model_a"),
            _battle(question_id="q1", judge="cy", winner="tie"),
        ),
    )

    summary = import_battles(campaign_slug="arena", plan=plan, owner=researcher)

    comparison = Comparison.objects.get(campaign__slug="arena")
    prompt = comparison.prompt
    assert summary.created["comparisons"] == 1
    assert (prompt.external_id, prompt.text) == ("q1", "What is 2+2?")
    winners = {r.rater.name: r.winner.model_name if r.winner else r.verdict for r in comparison.ratings.all()}
    assert winners == {"ann": "m1", "bob": "m2", "cy": "tie"}
    assert Output.objects.get(prompt=prompt, model_name="m1").text == "4"


@pytest.mark.django_db
def test_battles_without_question_id_are_each_their_own_comparison(researcher: User) -> None:
    plan = parse_battles("arena.json", json.dumps([_battle(tstamp=1), _battle(tstamp=2)]).encode())

    import_battles(campaign_slug="arena", plan=plan, owner=researcher)

    assert Comparison.objects.filter(campaign__slug="arena").count() == 2
    assert Rating.objects.filter(rater__name="arena-anonymous").count() == 2


def test_parse_battles_reports_bad_conversations_and_timestamps() -> None:
    data = _jsonl(_battle(conversation_b="text"), _battle(tstamp="yesterday"), _battle(model_b="m1"))

    assert _errors(parse_battles, "a.jsonl", data) == [
        "a.jsonl:1: conversation_b: expected a list of {role, content} messages",
        "a.jsonl:2: tstamp: expected seconds since the epoch, got 'yesterday'",
        "a.jsonl:3: model_b: the same model as model_a",
    ]


# AlpacaEval.


@pytest.mark.django_db
def test_alpaca_eval_votes_on_the_same_item_are_one_comparison_with_generators_as_models(researcher: User) -> None:
    row = {"instruction": "Name a color.", "output_1": "Red", "output_2": "Blue", "generator_1": "g1"}
    plan = parse_alpaca_eval(
        "a.json",
        json.dumps(
            [
                {**row, "preference": 1, "annotator": "x"},
                {**row, "preference": 1.5, "annotator": "y"},
                {**row, "preference": 0, "annotator_index": 7},
                {**row, "preference": 2.0, "annotator_index": 8, "dataset": "helpful"},
            ]
        ).encode(),
    )

    import_alpaca_eval(campaign_slug="alp", plan=plan, owner=researcher)

    comparison = Comparison.objects.get(campaign__slug="alp")
    ratings = {r.rater.name: r for r in comparison.ratings.all()}
    assert {name: r.verdict for name, r in ratings.items()} == {
        "alpaca_eval:x": "win",
        "alpaca_eval:y": "tie",
        "alpaca_eval:annotator_7": "tie",
        "alpaca_eval:annotator_8": "win",
    }
    assert ratings["alpaca_eval:x"].winner == ratings["alpaca_eval:x"].left_output
    assert ratings["alpaca_eval:x"].left_output.model_name == "g1"  # type: ignore[union-attr]
    assert ratings["alpaca_eval:annotator_8"].winner.text == "Blue"  # type: ignore[union-attr]
    assert ratings["alpaca_eval:annotator_8"].winner.model_name is None  # type: ignore[union-attr]
    assert ratings["alpaca_eval:annotator_8"].metadata["dataset"] == "helpful"


@pytest.mark.django_db
def test_a_refused_rating_import_leaves_no_new_campaign(researcher: User) -> None:
    factories.RaterFactory.create(name="alpaca_eval:gpt4", kind="judge")
    row = {"instruction": "Q", "output_1": "A", "output_2": "B", "preference": 1, "annotator": "gpt4"}
    plan = parse_alpaca_eval("a.jsonl", _jsonl(row))

    with pytest.raises(ImportRefused) as refused:
        import_alpaca_eval(campaign_slug="alp", plan=plan, owner=researcher)

    assert refused.value.lines == ["a.jsonl:1: rater: alpaca_eval:gpt4 is an LLM judge's rater name, not a human's"]
    assert not Campaign.objects.filter(slug="alp").exists()


# Gold answers.


def test_parse_gold_reports_unknown_labels_and_repeated_pairs() -> None:
    data = _jsonl(
        {"prompt_id": "p1", "model_a": "m1", "model_b": "m2", "gold": "model_a"},
        {"prompt_id": "p1", "model_a": "m2", "model_b": "m1", "gold": "tie"},
        {"prompt_id": "p2", "model_a": "m1", "model_b": "m2", "gold": "left"},
    )

    assert _errors(parse_gold, "g.jsonl", data) == [
        "g.jsonl:2: model_b: duplicate row: the same pair as line 1",
        "g.jsonl:3: gold: unknown label 'left' (expected both_bad, model_a, model_b, tie)",
    ]


@pytest.mark.django_db
def test_import_gold_sets_known_answers_and_refuses_pairs_without_a_comparison(campaign: Campaign) -> None:
    ok = parse_gold(
        "g.csv", b"prompt_id,model_a,model_b,gold\nq0,model-z,model-x,model_a\nq1,model-x,model-y,both_bad\n"
    )
    missing = parse_gold("g.csv", b"prompt_id,model_a,model_b,gold\nq0,model-x,model-w,tie\n")

    import_gold(campaign=campaign, parsed=ok)
    with pytest.raises(ImportRefused) as refused:
        import_gold(campaign=campaign, parsed=missing)

    gold = {
        c.prompt.external_id: (c.gold_verdict, c.gold_winner) for c in campaign.comparisons.exclude(gold_verdict=None)
    }
    assert gold == {
        "q0": ("win", Output.objects.get(prompt__external_id="q0", model_name="model-z")),
        "q1": ("both_bad", None),
    }
    assert refused.value.lines == ["g.csv:2: model_b: no output of model-w for q0"]


def test_line_numbers_survive_blank_lines_and_unicode_line_separators() -> None:
    csv_data = b"prompt_id,prompt,model,output\n\np1,Q,m1,A\n\np2,Q,m1,\n"
    jsonl = '{"prompt_id": "p1", "prompt": "a\u2028b", "model": "m", "output": "A"}\n\n{"prompt_id": "p2"}\n'.encode()

    assert _errors(parse_outputs, "o.csv", csv_data) == ["o.csv:5: output: empty text"]
    assert _errors(parse_outputs, "o.jsonl", jsonl)[0] == "o.jsonl:3: prompt: missing field"
