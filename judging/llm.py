"""Chat completions through the official openai client: the only module that imports openai.

Retries live one layer up (the judging service retries with backoff), so every client is built with max_retries=0
and every failure is classified here as transient (rate limit, timeout, connection, 5xx) or permanent.

Judging sends its calls through a CallPool: `openai.AsyncOpenAI` on one event loop per process (a daemon thread),
with openai's aiohttp transport, one client (and connection pool) per endpoint, key and timeout. A call costs that
loop about half the CPU of the synchronous client in a thread, and waiting costs a timer, not a thread.
`complete()` is the synchronous client, one call at a time.

The operator's rules (judging.policy) hold at call time too: the key variable is checked right before os.environ
is read; clients follow no redirects (a 3xx is a permanent failure, never a request to another host); the async
clients resolve hosts through a resolver that refuses any address the rules do not allow (a name that resolves to
127.0.0.1 at connect time, after passing the check at save time, still goes nowhere); complete() checks the
endpoint, resolving its host, before each call.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import hashlib
import json
import os
import queue
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar, cast

from judging import policy

if TYPE_CHECKING:
    import aiohttp
    import openai

# One client per endpoint, key and timeout in each process: clients hold a connection pool and are thread-safe.
_clients: dict[tuple[str, str, float], openai.OpenAI] = {}
_clients_lock = threading.Lock()
# The process's event loop for CallPools, and its clients (touched only on the loop's thread).
_loop: asyncio.AbstractEventLoop | None = None
_loop_pid = 0
_async_clients: dict[tuple[str, str, float], openai.AsyncOpenAI] = {}
_E = TypeVar("_E", bound=BaseException)
NO_KEY = "no-key"  # local servers ignore the key, but the client insists on one
_TELEMETRY_HEADERS = (
    "X-Stainless-Lang",
    "X-Stainless-Package-Version",
    "X-Stainless-OS",
    "X-Stainless-Arch",
    "X-Stainless-Runtime",
    "X-Stainless-Runtime-Version",
    "X-Stainless-Async",
)


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
    seed: int | None = None  # sent only when set (a run's seed), so requests without one hash as before

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
        if self.seed is not None:
            body["seed"] = self.seed
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

    try:
        policy.check_endpoint(request.base_url)
    except policy.PolicyError as exc:
        raise PermanentLLMError(f"refused by the operator's rules: {exc}") from exc
    client = _client(request.base_url, _api_key(api_key_env, request.base_url), timeout)
    started = time.monotonic()
    try:
        completion = client.chat.completions.create(**request.payload())
    except openai.OpenAIError as exc:
        raise classify(exc, timeout=timeout) from exc
    latency_ms = int((time.monotonic() - started) * 1000)
    return _result(completion, latency_ms)


def classify(exc: Exception, *, timeout: float) -> LLMError:
    """Return the failure of a call as transient (rate limit, timeout, connection, 5xx) or permanent."""
    import openai

    if isinstance(exc, openai.RateLimitError):
        return TransientLLMError("429 rate limited", retry_after=retry_after_seconds(exc.response.headers))
    if isinstance(exc, openai.APIConnectionError):  # a timeout is one too
        barred = _caused_by(exc, AddressRefused)
        if barred is not None:
            raise PermanentLLMError(f"refused by the operator's rules: {barred}") from exc
        refused = _connection_error(exc)
        if isinstance(exc, openai.APITimeoutError) and refused is None:
            return TransientLLMError(f"timed out after {timeout:g}s")
        return TransientLLMError(f"connection error: {refused or exc}")
    if isinstance(exc, openai.APIStatusError):
        message = re.sub(r"^Error code: \d+ - ", "", exc.message)
        reason = f"HTTP {exc.status_code}: {_short(message)}"
        if exc.status_code >= 500:
            return TransientLLMError(reason, retry_after=retry_after_seconds(exc.response.headers))
        return PermanentLLMError(reason)
    return PermanentLLMError(f"{type(exc).__name__}: {_short(str(exc))}")


Outcome = tuple[Hashable, "ChatResult | LLMError"]


class CallPool:
    """Send chat requests on the process's event loop, at most `limit` at once, in the order submitted.

    Submit and collect from one thread (the caller's); the calls run on the loop's thread. Every submitted
    request comes back from collect() exactly once, with its reply or its classified failure.
    """

    def __init__(self, *, timeout: float, limit: int) -> None:
        self.timeout = timeout
        self.outstanding = 0  # submitted and not yet collected
        self._limit = limit
        self._loop = _event_loop()
        self._done: queue.SimpleQueue[Outcome] = queue.SimpleQueue()
        self._waiting: deque[tuple[Hashable, ChatRequest, str]] = deque()  # loop thread only, as are the next two
        self._running = 0
        self._tasks: set[asyncio.Task[None]] = set()

    def submit(self, key: Hashable, request: ChatRequest, *, api_key_env: str) -> None:
        """Queue one request; its outcome comes back from collect() under `key`."""
        self.outstanding += 1
        try:
            api_key = _api_key(api_key_env, request.base_url)
        except PermanentLLMError as exc:
            self._done.put((key, exc))
            return
        self._loop.call_soon_threadsafe(self._enqueue, key, request, api_key)

    def set_limit(self, limit: int) -> None:
        """Change how many calls may be in flight at once (calls already sent finish)."""
        self._loop.call_soon_threadsafe(self._set_limit, limit)

    def collect(self, timeout: float | None, *, linger: float = 0.0) -> list[Outcome]:
        """Return the finished calls: wait up to `timeout` seconds for the first, then up to `linger` seconds more
        for others (none once every outstanding call is back), and take all that are done."""
        if not self.outstanding:
            return []
        try:
            outcomes = [self._done.get(timeout=timeout)]
        except queue.Empty:
            return []
        until = time.monotonic() + linger
        while len(outcomes) < self.outstanding:
            try:
                left = until - time.monotonic()
                outcomes.append(self._done.get(timeout=left) if left > 0 else self._done.get_nowait())
            except queue.Empty:
                break
        self.outstanding -= len(outcomes)
        return outcomes

    def _enqueue(self, key: Hashable, request: ChatRequest, api_key: str) -> None:
        self._waiting.append((key, request, api_key))
        self._pump()

    def _set_limit(self, limit: int) -> None:
        self._limit = limit
        self._pump()

    def _pump(self) -> None:
        while self._waiting and self._running < self._limit:
            key, request, api_key = self._waiting.popleft()
            self._running += 1
            task = self._loop.create_task(self._call(key, request, api_key))
            self._tasks.add(task)  # the loop keeps only weak references to tasks
            task.add_done_callback(self._tasks.discard)

    async def _call(self, key: Hashable, request: ChatRequest, api_key: str) -> None:
        outcome: ChatResult | LLMError
        try:
            outcome = await _send(request, api_key, self.timeout)
        except LLMError as exc:
            outcome = exc
        except Exception as exc:  # a result must come back for every request, whatever went wrong
            outcome = PermanentLLMError(f"{type(exc).__name__}: {_short(str(exc))}")
        self._running -= 1
        self._done.put((key, outcome))
        self._pump()


async def _send(request: ChatRequest, api_key: str, timeout: float) -> ChatResult:
    import openai

    client = _async_client(request.base_url, api_key, timeout)
    started = time.monotonic()
    try:
        # The generic post with cast_to=object returns the reply's JSON as is: the typed create() would first
        # walk the messages through openai's TypedDict transform and build pydantic models, for the same bytes.
        reply = await client.post("/chat/completions", body=request.payload(), cast_to=object)
    except openai.OpenAIError as exc:
        raise classify(exc, timeout=timeout) from exc
    except ValueError as exc:  # a body that claims to be JSON and is not
        raise PermanentLLMError(f"unreadable reply: {_short(str(exc))}") from exc
    latency_ms = int((time.monotonic() - started) * 1000)
    return result_from_json(reply, latency_ms)


def result_from_json(reply: Any, latency_ms: int) -> ChatResult:
    """Return the result of a chat completion given as its JSON; raise PermanentLLMError when it has no choice.

    Null characters in the reply become U+FFFD: PostgreSQL stores none, in text or in jsonb.
    """
    reply = storable(reply)
    choices = reply.get("choices") if isinstance(reply, dict) else None
    if not choices or not isinstance(choices[0], dict):
        raise PermanentLLMError("reply has no choices")
    choice = choices[0]
    usage = reply.get("usage") or {}
    return ChatResult(
        text=(choice.get("message") or {}).get("content") or "",
        finish_reason=choice.get("finish_reason") or "",
        tokens_in=usage.get("prompt_tokens") or 0,
        tokens_out=usage.get("completion_tokens") or 0,
        latency_ms=latency_ms,
        raw=reply,
    )


def storable(value: Any) -> Any:
    """Return a JSON value with every null character in its strings (and keys) replaced by U+FFFD."""
    if isinstance(value, str):
        return value.replace("\0", "\ufffd") if "\0" in value else value
    if isinstance(value, dict):
        return {storable(k): storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [storable(v) for v in value]
    return value


def _event_loop() -> asyncio.AbstractEventLoop:
    global _loop, _loop_pid
    with _clients_lock:
        if _loop is None or _loop_pid != os.getpid():  # none yet, or inherited through a fork without its thread
            _async_clients.clear()
            _loop, _loop_pid = asyncio.new_event_loop(), os.getpid()
            threading.Thread(target=_loop.run_forever, name="llm-calls", daemon=True).start()
        return _loop


def _async_client(base_url: str, api_key: str, timeout: float) -> openai.AsyncOpenAI:
    import openai

    key = (base_url, api_key, timeout)
    if key not in _async_clients:
        _async_clients[key] = openai.AsyncOpenAI(
            base_url=base_url,
            api_key=api_key,
            timeout=timeout,
            max_retries=0,
            http_client=openai.DefaultAioHttpClient(follow_redirects=False, transport=_guarded_transport()),
            # The SDK's telemetry headers (language, OS, runtime versions) are copied, merged, normalised and
            # encoded on every call; no endpoint needs them, and without them a call costs about 0.1 ms less CPU.
            default_headers=cast("dict[str, str]", dict.fromkeys(_TELEMETRY_HEADERS, openai.Omit())),
        )
    return _async_clients[key]


@atexit.register
def _close_async_clients() -> None:
    """Close the loop's clients at exit, so their connections close cleanly instead of warning."""
    loop = _loop
    if loop is None or _loop_pid != os.getpid() or not loop.is_running():
        return

    async def close_all() -> None:
        await asyncio.gather(*(client.close() for client in _async_clients.values()), return_exceptions=True)

    with contextlib.suppress(Exception):  # exiting anyway
        asyncio.run_coroutine_threadsafe(close_all(), loop).result(timeout=2)


def _connection_error(exc: BaseException) -> ConnectionError | None:
    # The aiohttp transport reports a refused connection as a connect timeout: the causes tell which it was.
    return _caused_by(exc, ConnectionError)


def _caused_by(exc: BaseException, kind: type[_E]) -> _E | None:
    seen: BaseException | None = exc
    for _ in range(50):  # a cycle of causes ends here
        if seen is None:
            return None
        if isinstance(seen, kind):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


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
    """Return the result of the synchronous client's reply object: the same reading as its JSON."""
    return result_from_json(completion.model_dump(mode="json"), latency_ms)


def _guarded_transport() -> Any:
    """Return openai's aiohttp transport with connections resolved through GuardedResolver."""
    import aiohttp
    from openai._vendor.httpx_aiohttp import AiohttpTransport

    transport = AiohttpTransport()

    def session() -> aiohttp.ClientSession:
        limits = transport.limits
        connector = aiohttp.TCPConnector(
            resolver=cast("aiohttp.abc.AbstractResolver", GuardedResolver()),
            ssl=transport.ssl_context,
            keepalive_timeout=limits.keepalive_expiry,
            limit=limits.max_connections or 100,
        )
        return aiohttp.ClientSession(connector=connector)

    transport.client = session
    return transport


class AddressRefused(OSError):
    """A host resolved to an address the operator's rules do not allow: the call is refused for good."""


class GuardedResolver:
    """An aiohttp resolver that refuses a host when any address it resolves to is not allowed (judging.policy)."""

    def __init__(self) -> None:
        import aiohttp

        self._inner: aiohttp.abc.AbstractResolver = aiohttp.ThreadedResolver()

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET) -> Any:
        results = await self._inner.resolve(host, port, family)
        for result in results:
            problem = policy.address_problem(result["host"])
            if problem:
                raise AddressRefused(f"host {host!r} resolves to {problem}")
        return results

    async def close(self) -> None:
        await self._inner.close()


def _api_key(env_name: str, base_url: str) -> str:
    """Return the key a judge at base_url names, once the operator's rules allow it (checked again here)."""
    if not env_name:
        return NO_KEY
    try:
        policy.check_key_env(env_name, base_url)
    except policy.PolicyError as exc:
        raise PermanentLLMError(f"refused by the operator's rules: {exc}") from exc
    key = os.environ.get(env_name)
    if not key:
        raise PermanentLLMError(f"environment variable {env_name} (the judge's api_key_env) is not set in the worker")
    return key


def _client(base_url: str, api_key: str, timeout: float) -> openai.OpenAI:
    import openai

    key = (base_url, api_key, timeout)
    with _clients_lock:
        if key not in _clients:
            _clients[key] = openai.OpenAI(
                base_url=base_url, api_key=api_key, timeout=timeout, max_retries=0,
                http_client=openai.DefaultHttpxClient(follow_redirects=False),
            )  # fmt: skip
        return _clients[key]


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit] + "..."
