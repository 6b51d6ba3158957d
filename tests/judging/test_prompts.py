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


PROBABILITY = prompts.prompt_spec(template="probability")


@pytest.mark.parametrize(
    ("reply", "outcome", "probability"),
    [
        ("A is more complete.\n\n[[P=0.73]]", "A", 0.73),
        ("[[P = 0.2]]", "B", 0.2),
        ("Equally good. [[P=0.5]]", "tie", 0.5),
        ("[[P=0.55]]", "tie", 0.55),  # the band's bounds are ties
        ("[[P=0.45]]", "tie", 0.45),
        ("[[P=0.551]]", "A", 0.551),
        ("[[P=0.449]]", "B", 0.449),
        ("[[P=1]] and again [[P=1.0]]", "A", 1.0),  # the same number twice is one answer
        ("[[P=0]]", "B", 0.0),
        ("[[P=.6]]", "A", 0.6),
    ],
)
def test_probability_reply_parses_to_its_probability_and_the_bands_outcome(
    reply: str, outcome: str, probability: float
) -> None:
    parsed = prompts.parse_verdict(PROBABILITY, reply)
    assert (parsed.outcome, parsed.strength, parsed.probability) == (outcome, None, probability)
    assert parsed.as_json() == {"outcome": outcome, "strength": None, "label": parsed.label, "probability": probability}


@pytest.mark.parametrize(
    ("reply", "problem"),
    [
        ("A is better.", "no probability matching"),
        ("[[A]]", "no probability matching"),
        ("[[P=1.2]]", "not a probability between 0 and 1: '1.2'"),
        ("[[P=-0.1]]", "not a probability"),
        ("[[P=73%]]", "not a probability"),
        ("[[P=7e-1]]", "not a probability"),
        ("[[P=3/4]]", "not a probability"),
        ("[[P=]]", "not a probability"),
        ("[[P=0.1234567]]", "not a probability"),  # more than 6 decimals
        ("[[P=0.7]] ... on reflection [[P=0.3]]", "ambiguous probability: 0.7, 0.3"),
    ],
)
def test_probability_reply_without_one_plain_number_in_0_1_is_a_parse_failure(reply: str, problem: str) -> None:
    with pytest.raises(prompts.VerdictParseError, match=problem):
        prompts.parse_verdict(PROBABILITY, reply)


def test_a_truncated_probability_reply_says_so() -> None:
    with pytest.raises(prompts.VerdictParseError, match="finish_reason=length"):
        prompts.parse_verdict(PROBABILITY, "Assistant A's answer", finish_reason="length")


def test_probability_template_asks_for_the_marker_and_shows_the_answers_in_order() -> None:
    messages = prompts.render_messages(PROBABILITY, question="Why?", answer_a="first", answer_b="second")
    assert "[[P=0.73]]" in messages[0]["content"]
    assert "[[A]]" not in messages[0]["content"]  # the local server answers labels when it sees them
    assert messages[1]["content"].index("first") < messages[1]["content"].index("second")
    assert prompts.response_format(PROBABILITY) is None
    assert prompts.yields_probability(template="probability")
    assert not prompts.yields_probability(template="mt_bench", verdict_format="probability")


def test_custom_probability_format_reads_the_marker_or_its_own_pattern() -> None:
    template = "Q: {question}\nA: {answer_a}\nB: {answer_b}"
    default = prompts.prompt_spec(template="custom", custom_template=template, verdict_format="probability")
    own = prompts.prompt_spec(
        template="custom", custom_template=template, verdict_format="probability", verdict_pattern=r"P\(A\)=(\S+)"
    )
    assert (default.verdict_pattern, default.system) == (prompts.PROBABILITY_PATTERN, prompts.PROBABILITY_SYSTEM)
    assert prompts.parse_verdict(default, "[[P=0.9]]").probability == 0.9
    assert prompts.parse_verdict(own, "so P(A)=0.1").outcome == "B"
    assert prompts.yields_probability(template="custom", verdict_format="probability")
