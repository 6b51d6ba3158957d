"""Templates and verdict parsers, on recorded judge replies in fixtures/judging."""

from __future__ import annotations

import json
from typing import Any

import pytest

from judging import llm, prompts
from tests.factories import FIXTURES

RECORDED = json.loads((FIXTURES / "judging" / "recorded_replies.json").read_text())["cases"]
SPECS = {
    "mt_bench": prompts.prompt_spec(template="mt_bench"),
    "mt_bench_reference": prompts.prompt_spec(template="mt_bench_reference"),
    "arena_hard": prompts.prompt_spec(template="arena_hard"),
    "custom_json": prompts.prompt_spec(
        template="custom", custom_template="Q: {question}\nA: {answer_a}\nB: {answer_b}", verdict_format="json"
    ),
    "custom_pattern": prompts.prompt_spec(
        template="custom",
        custom_template="Q: {question}\nA: {answer_a}\nB: {answer_b}\nEnd with WINNER: A, B or tie.",
        verdict_pattern=r"WINNER:\s*(?P<verdict>A|B|tie)\b",
    ),
}


def _reply(case: dict[str, Any]) -> llm.ChatResult:
    from openai.types.chat import ChatCompletion

    return llm._result(ChatCompletion.model_validate(case["payload"]), latency_ms=0)


@pytest.mark.parametrize("case", [c for c in RECORDED if "error" not in c["expected"]], ids=lambda c: c["name"])
def test_recorded_reply_parses_to_its_verdict(case: dict[str, Any]) -> None:
    reply = _reply(case)
    parsed = prompts.parse_verdict(SPECS[case["template"]], reply.text, finish_reason=reply.finish_reason)
    assert parsed.as_json() == case["expected"]


@pytest.mark.parametrize("case", [c for c in RECORDED if "error" in c["expected"]], ids=lambda c: c["name"])
def test_recorded_reply_without_a_clear_verdict_is_a_parse_failure_saying_why(case: dict[str, Any]) -> None:
    reply = _reply(case)
    with pytest.raises(prompts.VerdictParseError, match=case["expected"]["error"].replace("(", r"\(")):
        prompts.parse_verdict(SPECS[case["template"]], reply.text, finish_reason=reply.finish_reason)


def test_recorded_payload_usage_is_read_into_tokens() -> None:
    reply = _reply(RECORDED[0])
    assert reply.tokens_in == 412
    assert reply.tokens_out == RECORDED[0]["payload"]["usage"]["completion_tokens"]
    assert reply.raw["model"] == "gpt-4-0613"


def test_mt_bench_template_puts_the_answers_between_their_markers_in_the_given_order() -> None:
    messages = prompts.render_messages(SPECS["mt_bench"], question="Why?", answer_a="first", answer_b="second")
    assert messages[0]["role"] == "system"
    assert "[[A]]" in messages[0]["content"]
    assert "[[C]]" in messages[0]["content"]
    user = messages[1]["content"]
    assert "[User Question]\nWhy?" in user
    assert user.index("Assistant A's Answer]\nfirst") < user.index("Assistant B's Answer]\nsecond")


def test_reference_template_includes_the_reference_answer() -> None:
    messages = prompts.render_messages(
        SPECS["mt_bench_reference"], question="2+2?", answer_a="4", answer_b="5", reference="4"
    )
    assert "[The Start of Reference Answer]\n4\n[The End of Reference Answer]" in messages[1]["content"]
    assert SPECS["mt_bench_reference"].needs_reference


def test_arena_hard_template_lists_all_five_labels() -> None:
    system = SPECS["arena_hard"].system
    for label in ("[[A>>B]]", "[[A>B]]", "[[A=B]]", "[[B>A]]", "[[B>>A]]"):
        assert label in system


def test_custom_template_leaves_other_braces_alone_and_does_not_reinterpret_answers() -> None:
    spec = prompts.prompt_spec(
        template="custom",
        custom_template='Reply like {"verdict": "A"}.\n{question}\n{answer_a}\n{answer_b}',
        verdict_format="json",
    )
    user = prompts.render_messages(spec, question="Q", answer_a="uses {answer_b} literally", answer_b="B")[-1]
    assert user["content"] == 'Reply like {"verdict": "A"}.\nQ\nuses {answer_b} literally\nB'
    assert prompts.response_format(spec) == prompts.JSON_VERDICT_SCHEMA


def test_system_prompt_overrides_the_built_in_one() -> None:
    spec = prompts.prompt_spec(template="mt_bench", system_prompt="Be terse. Answer [[A]], [[B]] or [[C]].")
    assert spec.system.startswith("Be terse")
    assert spec.verdict_pattern == prompts.MT_BENCH_PATTERN


def test_custom_template_must_contain_both_answers() -> None:
    with pytest.raises(ValueError, match=r"custom_template: must contain \{answer_b\}"):
        prompts.check_custom_template("{question} {answer_a}")


@pytest.mark.parametrize(("pattern", "problem"), [("([AB", "not a regular expression"), ("A|B", "capturing group")])
def test_verdict_pattern_must_be_a_regex_with_a_group(pattern: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        prompts.check_verdict_pattern(pattern)


def test_unknown_template_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="unknown template 'mtbench'"):
        prompts.prompt_spec(template="mtbench")
