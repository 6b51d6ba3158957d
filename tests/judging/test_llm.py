"""The openai client module: classification of failures, Retry-After, request hashing."""

from __future__ import annotations

import pytest

from judging import llm
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


def test_client_errors_are_permanent(local_llm: LocalLLM) -> None:
    url, _ = local_llm()
    with pytest.raises(llm.PermanentLLMError, match="HTTP 404"):
        llm.complete(_request(url.removesuffix("/v1") + "/nowhere"), api_key_env="", timeout=5)


def test_missing_api_key_variable_is_permanent_and_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JUDGE_TEST_KEY", raising=False)
    with pytest.raises(llm.PermanentLLMError, match="JUDGE_TEST_KEY"):
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
