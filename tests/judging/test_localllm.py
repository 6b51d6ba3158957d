"""The local OpenAI-compatible server: the official client talks to it, it judges transparently, it fails on cue."""

from __future__ import annotations

import json
import re

import openai
import pytest

from judging import prompts
from judging.localllm import heuristics
from tests.judging.conftest import LocalLLM


def _messages(template: str, a: str, b: str, reference: str = "") -> list[dict[str, str]]:
    spec = prompts.prompt_spec(template=template)
    return prompts.render_messages(
        spec, question="What is the capital of France?", answer_a=a, answer_b=b, reference=reference
    )


def test_official_client_lists_models_and_gets_a_completion_with_usage(local_llm: LocalLLM) -> None:
    url, _ = local_llm()
    client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0)
    assert [m.id for m in client.models.list()] == ["local-judge"]
    reply = client.chat.completions.create(
        model="local-judge",
        messages=_messages("mt_bench", "Paris.", "Paris is the capital."),  # type: ignore[arg-type]
    )
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None
    assert reply.usage.prompt_tokens > 50
    assert reply.usage.completion_tokens > 0
    assert prompts.parse_verdict(prompts.BUILTIN["mt_bench"], reply.choices[0].message.content or "")


def test_reference_answer_decides_over_length() -> None:
    messages = _messages(
        "mt_bench_reference",
        "The capital of France is Paris.",
        "Lyon is a large city.\n\n- It has a long history\n- It is famous for food\n- It lies on two rivers",
        reference="Paris is the capital of France.",
    )
    judgement = heuristics.judge(messages[1]["content"], position_bias=0.0, seed=0)
    assert judgement.outcome == "A"


def test_without_reference_the_longer_structured_answer_wins_in_either_order() -> None:
    short, long = "Paris.", "Paris.\n\n- It is the capital since 987\n- It hosts the government\n- And parliament"
    assert heuristics.judge(_messages("mt_bench", short, long)[1]["content"], position_bias=0, seed=0).outcome == "B"
    assert heuristics.judge(_messages("mt_bench", long, short)[1]["content"], position_bias=0, seed=0).outcome == "A"


def test_full_position_bias_always_prefers_the_first_answer() -> None:
    prompt = _messages("mt_bench", "Paris.", "Paris, on the Seine, is the capital of France.")[1]["content"]
    assert heuristics.judge(prompt, position_bias=1.0, seed=3).outcome == "A"


@pytest.mark.parametrize(
    ("template", "response_format", "pattern"),
    [
        ("mt_bench", None, r"\[\[[ABC]\]\]$"),
        ("arena_hard", None, r"\[\[(A>>B|A>B|A=B|B>A|B>>A)\]\]$"),
    ],
)
def test_reply_uses_the_label_format_the_prompt_asks_for(template: str, response_format: None, pattern: str) -> None:
    messages = _messages(template, "Paris.", "It is Paris, the largest city of France.")
    judgement = heuristics.judge(messages[1]["content"], position_bias=0, seed=0)
    assert re.search(pattern, heuristics.reply_text(messages, response_format, judgement))


def test_reply_is_json_when_structured_output_is_requested() -> None:
    messages = _messages("mt_bench", "Paris.", "It is Paris.")
    judgement = heuristics.Judgement("B", 2, "because")
    body = json.loads(heuristics.reply_text(messages, prompts.JSON_VERDICT_SCHEMA, judgement))
    assert body == {"verdict": "B", "strength": 2, "rationale": "because"}


def test_rate_limit_faults_answer_429_with_retry_after(local_llm: LocalLLM) -> None:
    url, server = local_llm(fault_rate=1.0, faults=("rate_limit",), retry_after=7)
    client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0)
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    assert caught.value.response.headers["retry-after"] == "7"
    assert server.stats["fault_rate_limit"] == 1


def test_hang_faults_outlast_the_client_timeout(local_llm: LocalLLM) -> None:
    url, _ = local_llm(fault_rate=1.0, faults=("hang",), hang_seconds=5)
    client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0, timeout=0.3)
    with pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])


def test_truncated_faults_cut_the_reply_and_report_length(local_llm: LocalLLM) -> None:
    url, _ = local_llm(fault_rate=1.0, faults=("truncated",))
    client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0)
    reply = client.chat.completions.create(model="m", messages=_messages("arena_hard", "x", "y"))  # type: ignore[arg-type]
    assert reply.choices[0].finish_reason == "length"
    assert "[[" not in (reply.choices[0].message.content or "")


def test_fault_rate_is_about_the_configured_share(local_llm: LocalLLM) -> None:
    url, server = local_llm(fault_rate=0.2, faults=("server_error", "malformed"), seed=11)
    client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0)
    errors = 0
    for _ in range(200):
        try:
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
        except openai.InternalServerError:
            errors += 1
    faults = server.stats["fault_server_error"] + server.stats["fault_malformed"]
    assert 20 <= faults <= 60
    assert errors == server.stats["fault_server_error"]


def test_bad_request_body_is_a_400(local_llm: LocalLLM) -> None:
    url, _ = local_llm()
    client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0)
    with pytest.raises(openai.BadRequestError):
        client.post("/chat/completions", body={"nothing": True}, cast_to=object)


# --- planted biases ----------------------------------------------------------------------------------------------


def _prompt(a: str, b: str) -> str:
    return _messages("mt_bench", a, b)[1]["content"]


def _pairs(n: int) -> list[tuple[str, str]]:
    """Return n pairs of answers of different lengths (1 to 40 words) and equal structure."""
    return [(" ".join(["word"] * (1 + i % 40)), " ".join(["term"] * (1 + (i * 7) % 40))) for i in range(n)]


def test_planted_length_bias_is_the_logistic_slope_of_the_first_answer_winning() -> None:
    import statsmodels.api as sm

    biases = heuristics.Biases(length=1.5)
    x, y = [], []
    for i, (a, b) in enumerate(_pairs(3000)):
        judgement = heuristics.judge(_prompt(a, b) + f"\n#{i}", position_bias=0, seed=0, biases=biases)
        x.append(heuristics.length_score(a) - heuristics.length_score(b))
        y.append(judgement.outcome == "A")
    fit = sm.Logit(y, sm.add_constant(x)).fit(disp=0)
    low, high = fit.conf_int()[1]
    assert low < 1.5 < high
    assert abs(fit.params[0]) < 0.2


def test_planted_self_preference_favours_the_marked_answer_in_either_order() -> None:
    biases = heuristics.Biases(self_preference=0.8, markers=("[fam-x]",))
    marked, plain = "Paris. [fam-x]", "Paris is the capital of France, on the Seine, with many museums and parks."
    wins = 0
    for i in range(400):
        first, second = (marked, plain) if i % 2 else (plain, marked)
        outcome = heuristics.judge(_prompt(first, second) + f"\n#{i}", position_bias=0, seed=0, biases=biases).outcome
        wins += outcome == ("A" if i % 2 else "B")
    assert 0.72 < wins / 400 < 0.88  # 0.8 planted, and the longer plain answer wins the rest


def test_flip_draws_per_call_key_and_the_rest_per_prompt() -> None:
    prompt = _prompt("Paris.", "Paris is the capital of France.")
    biases = heuristics.Biases(flip=0.5)
    outcomes = {
        heuristics.judge(prompt, position_bias=0, seed=0, biases=biases, call_key=str(k)).outcome for k in range(40)
    }
    assert outcomes == {"A", "B"}
    again = [heuristics.judge(prompt, position_bias=0, seed=0, biases=biases, call_key="7").outcome for _ in range(5)]
    assert len(set(again)) == 1


def test_model_name_options_override_the_server_settings_per_request(local_llm: LocalLLM) -> None:
    url, server = local_llm(position_bias=0.0)
    client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0)
    messages = _messages("mt_bench", "Paris.", "Paris, on the Seine, is the capital of France since 987.")
    replies = {
        model: client.chat.completions.create(model=model, messages=messages).choices[0].message.content  # type: ignore[arg-type]
        for model in ("local-judge", "local-judge:position=1")
    }
    assert (replies["local-judge"] or "").endswith("[[B]]")
    assert (replies["local-judge:position=1"] or "").endswith("[[A]]")
    assert server.biases_for("local-judge:length=2,self=0.5,marker=<x>|<y>,flip=0.1") == heuristics.Biases(
        position=0.0, length=2.0, self_preference=0.5, markers=("<x>", "<y>"), flip=0.1
    )


@pytest.mark.parametrize("model", ["local-judge:position=2", "local-judge:bias=1", "local-judge:flip=x", "j:length"])
def test_bad_model_options_are_a_400_naming_the_option(local_llm: LocalLLM, model: str) -> None:
    url, _ = local_llm()
    client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0)
    with pytest.raises(openai.BadRequestError, match="model option"):
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])


def test_the_server_redraws_the_flip_for_a_repeated_prompt_unless_the_request_sends_a_seed(
    local_llm: LocalLLM,
) -> None:
    url, _ = local_llm(flip_rate=0.5)
    client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0)
    messages = _messages("mt_bench", "Paris.", "Paris is the capital of France.")

    def verdicts(seed: int | None = None) -> set[str]:
        found = set()
        for _ in range(30):
            reply = client.chat.completions.create(model="local-judge", messages=messages, seed=seed)  # type: ignore[arg-type]
            found.add((reply.choices[0].message.content or "")[-5:])
        return found

    assert verdicts() == {"[[A]]", "[[B]]"}
    assert len(verdicts(seed=11)) == 1


@pytest.mark.parametrize(
    ("judgement", "probability"),
    [
        (heuristics.Judgement("A", 2, "."), 0.85),
        (heuristics.Judgement("A", 1, "."), 0.7),
        (heuristics.Judgement("tie", 0, "."), 0.5),
        (heuristics.Judgement("B", 1, "."), 0.3),
        (heuristics.Judgement("B", 2, "."), 0.15),
    ],
)
def test_the_probability_template_gets_p_of_a_from_the_decision_and_it_parses_back(
    judgement: heuristics.Judgement, probability: float
) -> None:
    messages = _messages("probability", "Paris.", "It is Paris.")
    reply = heuristics.reply_text(messages, None, judgement)
    parsed = prompts.parse_verdict(prompts.prompt_spec(template="probability"), reply)
    assert (parsed.probability, parsed.outcome) == (probability, judgement.outcome)


def test_the_server_answers_the_probability_template_with_a_probability(local_llm: LocalLLM) -> None:
    url, _ = local_llm(position_bias=1.0)
    client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0)
    reply = client.chat.completions.create(
        model="local-judge",
        messages=_messages("probability", "Paris.", "Paris, on the Seine."),  # type: ignore[arg-type]
    )
    parsed = prompts.parse_verdict(prompts.prompt_spec(template="probability"), reply.choices[0].message.content or "")
    assert (parsed.outcome, parsed.probability) == ("A", 0.7)  # the planted position bias: the first, slightly
