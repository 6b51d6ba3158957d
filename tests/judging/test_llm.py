"""The openai client module: classification of failures, Retry-After, request hashing."""

from __future__ import annotations

import time
from typing import Any

import pytest

from judging import llm
from judging.models import LLMCall
from tests.judging.conftest import LocalLLM


def _request(url: str, **changes: object) -> llm.ChatRequest:
    fields: dict[str, object] = {
        "base_url": url,
        "model": "local-judge",
        "messages": (("system", "judge"), ("user", "[User Question]\nq")),
        "temperature": 0.0,
        "max_tokens": 64,
    }
    fields.update(changes)
    return llm.ChatRequest(**fields)  # type: ignore[arg-type]


def test_complete_returns_text_tokens_and_latency(local_llm: LocalLLM) -> None:
    url, _ = local_llm(latency_ms=20)
    result = llm.complete(_request(url), api_key_env="", timeout=5)
    assert result.text
    assert result.finish_reason == "stop"
    assert result.tokens_in > 0
    assert result.tokens_out > 0
    assert result.latency_ms >= 20
    assert result.raw["object"] == "chat.completion"


def test_rate_limit_is_transient_and_carries_retry_after(local_llm: LocalLLM) -> None:
    url, server = local_llm(fault_rate=1.0, faults=("rate_limit",), retry_after=3)
    with pytest.raises(llm.TransientLLMError, match="429") as caught:
        llm.complete(_request(url), api_key_env="", timeout=5)
    assert caught.value.retry_after == 3.0
    assert server.stats["requests"] == 1  # the client did not retry on its own


def test_server_error_and_timeout_are_transient(local_llm: LocalLLM) -> None:
    url, _ = local_llm(fault_rate=1.0, faults=("server_error",))
    with pytest.raises(llm.TransientLLMError, match="HTTP 500"):
        llm.complete(_request(url), api_key_env="", timeout=5)
    hang_url, _ = local_llm(fault_rate=1.0, faults=("hang",), hang_seconds=5)
    with pytest.raises(llm.TransientLLMError, match="timed out"):
        llm.complete(_request(hang_url), api_key_env="", timeout=0.3)


def test_connection_refused_is_transient() -> None:
    with pytest.raises(llm.TransientLLMError, match="connection error"):
        llm.complete(_request("http://127.0.0.1:9/v1"), api_key_env="", timeout=2)


def test_client_errors_are_permanent(local_llm: LocalLLM, settings: Any) -> None:
    url, _ = local_llm()
    settings.EVALPLATFORM_JUDGE_ALLOWED_ENDPOINTS = [url.removesuffix("/v1")]
    with pytest.raises(llm.PermanentLLMError, match="HTTP 404"):
        llm.complete(_request(url.removesuffix("/v1") + "/nowhere"), api_key_env="", timeout=5)


def test_missing_api_key_variable_is_permanent_and_named(monkeypatch: pytest.MonkeyPatch, settings: Any) -> None:
    settings.EVALPLATFORM_JUDGE_KEY_ENVS = ["JUDGE_TEST_KEY"]
    monkeypatch.delenv("JUDGE_TEST_KEY", raising=False)
    with pytest.raises(llm.PermanentLLMError, match=r"JUDGE_TEST_KEY .*is not set"):
        llm.complete(_request("http://127.0.0.1:9/v1"), api_key_env="JUDGE_TEST_KEY", timeout=2)


def test_request_hash_covers_model_messages_and_parameters() -> None:
    base = _request("http://x/v1")
    assert base.sha256() == _request("http://x/v1").sha256()
    assert len(base.sha256()) == 64
    for change in (
        {"model": "other"},
        {"temperature": 0.7},
        {"max_tokens": 65},
        {"messages": (("user", "[User Question]\nq"),)},
        {"response_format": {"type": "json_object"}},
    ):
        assert _request("http://x/v1", **change).sha256() != base.sha256(), change


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "2"}, 2.0),
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after": "Wed, 21 Oct 2015"}, None),
        ({}, None),
    ],
)
def test_retry_after_reads_seconds_or_milliseconds(headers: dict[str, str], expected: float | None) -> None:
    assert llm.retry_after_seconds(headers) == expected


def _collect_all(pool: llm.CallPool) -> dict[object, llm.ChatResult | llm.LLMError]:
    outcomes: dict[object, llm.ChatResult | llm.LLMError] = {}
    while pool.outstanding:
        outcomes.update(pool.collect(timeout=10))
    return outcomes


def test_call_pool_returns_every_reply_under_its_key_with_at_most_limit_calls_in_flight(local_llm: LocalLLM) -> None:
    url, server = local_llm(latency_ms=30)
    pool = llm.CallPool(timeout=5, limit=3)
    for i in range(10):
        pool.submit(i, _request(url, messages=(("user", f"[User Question]\nq{i}"),)), api_key_env="")
    outcomes = _collect_all(pool)
    assert sorted(outcomes) == list(range(10))  # type: ignore[type-var]
    assert all(isinstance(o, llm.ChatResult) and o.text and o.tokens_in > 0 for o in outcomes.values())
    assert all(o.raw["object"] == "chat.completion" for o in outcomes.values() if isinstance(o, llm.ChatResult))
    assert server.stats["max_in_flight"] == 3


def test_call_pool_collect_lingers_for_calls_finishing_soon_after_the_first_but_not_past_the_last(
    local_llm: LocalLLM,
) -> None:
    url, _ = local_llm(latency_ms=50)
    pool = llm.CallPool(timeout=5, limit=2)
    pool.submit(0, _request(url, messages=(("user", "[User Question]\nfirst"),)), api_key_env="")
    time.sleep(0.02)
    pool.submit(1, _request(url, messages=(("user", "[User Question]\nsecond"),)), api_key_env="")
    started = time.monotonic()
    outcomes = pool.collect(timeout=10, linger=30)
    assert sorted(key for key, _ in outcomes) == [0, 1]  # type: ignore[type-var]
    assert pool.outstanding == 0
    assert time.monotonic() - started < 30  # every outstanding call was back: no reason to linger on (a bound)


def test_call_pool_classifies_failures_like_the_synchronous_client(local_llm: LocalLLM) -> None:
    limited_url, server = local_llm(fault_rate=1.0, faults=("rate_limit",), retry_after=3)
    failing_url, _ = local_llm(fault_rate=1.0, faults=("server_error",))
    hanging_url, _ = local_llm(fault_rate=1.0, faults=("hang",), hang_seconds=5)
    ok_url, _ = local_llm()
    pool = llm.CallPool(timeout=0.5, limit=8)
    pool.submit("limited", _request(limited_url), api_key_env="")
    pool.submit("failing", _request(failing_url), api_key_env="")
    pool.submit("hanging", _request(hanging_url), api_key_env="")
    pool.submit("refused", _request("http://127.0.0.1:9/v1"), api_key_env="")
    pool.submit("missing", _request(ok_url.removesuffix("/v1") + "/nowhere"), api_key_env="")
    outcomes = _collect_all(pool)
    limited = outcomes["limited"]
    assert isinstance(limited, llm.TransientLLMError)
    assert (limited.reason, limited.retry_after) == ("429 rate limited", 3.0)
    assert server.stats["requests"] == 1  # the client did not retry on its own
    assert isinstance(outcomes["failing"], llm.TransientLLMError)
    assert outcomes["failing"].reason.startswith("HTTP 500")
    assert isinstance(outcomes["hanging"], llm.TransientLLMError)
    assert outcomes["hanging"].reason == "timed out after 0.5s"
    assert isinstance(outcomes["refused"], llm.TransientLLMError)
    assert outcomes["refused"].reason.startswith("connection error")
    assert isinstance(outcomes["missing"], llm.PermanentLLMError)
    assert outcomes["missing"].reason.startswith("HTTP 404")


def test_call_pool_fails_a_call_at_once_when_the_api_key_variable_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JUDGE_TEST_KEY", raising=False)
    pool = llm.CallPool(timeout=2, limit=1)
    pool.submit("k", _request("http://127.0.0.1:9/v1"), api_key_env="JUDGE_TEST_KEY")
    (key, outcome), *_ = pool.collect(timeout=0)
    assert key == "k"
    assert isinstance(outcome, llm.PermanentLLMError)
    assert "JUDGE_TEST_KEY" in outcome.reason


def test_result_from_json_refuses_a_reply_without_choices() -> None:
    with pytest.raises(llm.PermanentLLMError, match="no choices"):
        llm.result_from_json({"choices": []}, 5)
    with pytest.raises(llm.PermanentLLMError, match="no choices"):
        llm.result_from_json("not json", 5)


@pytest.mark.django_db
def test_a_reply_holding_null_characters_is_stored_with_replacement_characters() -> None:
    reply = {
        "choices": [{"message": {"content": "A is better\u0000 [[A]]"}, "finish_reason": "stop"}],
        "system_fingerprint": "fp\u0000",
        "usage": {"prompt_tokens": 3, "completion_tokens": 2},
    }

    result = llm.result_from_json(reply, 5)

    assert result.text == "A is better\ufffd [[A]]"
    assert result.raw["system_fingerprint"] == "fp\ufffd"
    call = LLMCall.objects.create(request_hash="h" * 64, model="m", request={}, response=result.raw, text=result.text)
    call.refresh_from_db()
    assert call.response["choices"][0]["message"]["content"] == result.text
