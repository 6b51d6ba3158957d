"""Chat completions through the official openai client: the only module that imports openai.

Retries live one layer up (the judging service re-enqueues with backoff), so the client is built with
max_retries=0 and every failure is classified here as transient (rate limit, timeout, connection, 5xx) or permanent.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import openai

# One client per endpoint, key and timeout in each process: clients hold a connection pool and are thread-safe.
_clients: dict[tuple[str, str, float], openai.OpenAI] = {}
_clients_lock = threading.Lock()
NO_KEY = "no-key"  # local servers ignore the key, but the client insists on one


class LLMError(Exception):
    """A call that produced no reply."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TransientLLMError(LLMError):
    """Worth retrying: rate limited, timed out, connection failed or a 5xx. retry_after comes from the server."""

    def __init__(self, reason: str, *, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class PermanentLLMError(LLMError):
    """Retrying would not help: bad request, authentication, unknown model, unreadable reply."""


@dataclass(frozen=True)
class ChatRequest:
    base_url: str
    model: str
    messages: tuple[tuple[str, str], ...]  # (role, content)
    temperature: float
    max_tokens: int
    response_format: dict[str, Any] | None = field(default=None, hash=False)

    def payload(self) -> dict[str, Any]:
        """Return the request body, without the endpoint."""
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": role, "content": content} for role, content in self.messages],
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }
        if self.response_format is not None:
            body["response_format"] = self.response_format
        return body

    def sha256(self) -> str:
        """Return the SHA-256 over endpoint, model, messages and parameters, in canonical JSON."""
        canonical = json.dumps({"base_url": self.base_url, **self.payload()}, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class ChatResult:
    text: str
    finish_reason: str
    tokens_in: int
    tokens_out: int
    latency_ms: int
    raw: dict[str, Any]


def complete(request: ChatRequest, *, api_key_env: str, timeout: float) -> ChatResult:
    """Send one chat completion and return the reply; raise TransientLLMError or PermanentLLMError."""
    import openai  # imported on first call: building its models takes seconds, which every manage.py run would pay

    client = _client(request.base_url, _api_key(api_key_env), timeout)
    started = time.monotonic()
    try:
        completion = client.chat.completions.create(**request.payload())
    except openai.RateLimitError as exc:
        raise TransientLLMError("429 rate limited", retry_after=retry_after_seconds(exc.response.headers)) from exc
    except openai.APITimeoutError as exc:
        raise TransientLLMError(f"timed out after {timeout:g}s") from exc
    except openai.APIConnectionError as exc:
        raise TransientLLMError(f"connection error: {exc}") from exc
    except openai.APIStatusError as exc:
        message = re.sub(r"^Error code: \d+ - ", "", exc.message)
        reason = f"HTTP {exc.status_code}: {_short(message)}"
        if exc.status_code >= 500:
            raise TransientLLMError(reason, retry_after=retry_after_seconds(exc.response.headers)) from exc
        raise PermanentLLMError(reason) from exc
    except openai.OpenAIError as exc:
        raise PermanentLLMError(f"{type(exc).__name__}: {_short(str(exc))}") from exc
    latency_ms = int((time.monotonic() - started) * 1000)
    return _result(completion, latency_ms)


def retry_after_seconds(headers: Any) -> float | None:
    """Return the server's Retry-After (seconds, or retry-after-ms) or None when absent or a date."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name) if headers is not None else None
        if value is None:
            continue
        try:
            return max(0.0, float(value) * scale)
        except ValueError:
            continue
    return None


def _result(completion: Any, latency_ms: int) -> ChatResult:
    if not getattr(completion, "choices", None):
        raise PermanentLLMError("reply has no choices")
    choice = completion.choices[0]
    usage = completion.usage
    return ChatResult(
        text=choice.message.content or "",
        finish_reason=choice.finish_reason or "",
        tokens_in=usage.prompt_tokens if usage else 0,
        tokens_out=usage.completion_tokens if usage else 0,
        latency_ms=latency_ms,
        raw=completion.model_dump(mode="json"),
    )


def _api_key(env_name: str) -> str:
    if not env_name:
        return NO_KEY
    key = os.environ.get(env_name)
    if not key:
        raise PermanentLLMError(f"environment variable {env_name} (the judge's api_key_env) is not set in the worker")
    return key


def _client(base_url: str, api_key: str, timeout: float) -> openai.OpenAI:
    import openai

    key = (base_url, api_key, timeout)
    with _clients_lock:
        if key not in _clients:
            _clients[key] = openai.OpenAI(base_url=base_url, api_key=api_key, timeout=timeout, max_retries=0)
        return _clients[key]


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit] + "..."
