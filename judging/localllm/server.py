"""A local OpenAI-compatible server for tests, the demo and benchmarks: hand-rolled HTTP/1.1 on asyncio.

Implements `GET /v1/models` and `POST /v1/chat/completions` (plus `GET /_stats`) well enough for the official
client, with keep-alive, simulated latency and injected faults. One event loop serves any number of concurrent
connections: waiting out the latency costs a timer, not a thread.

Planted biases (heuristics.Biases) come from the server's settings, and each request may override them in its
model name: `local-judge:position=0.3,length=1.0,self=0.8,marker=[fam-x]|[fam-y],flip=0.1`, so one server plays
several judges. The flip (noise) is drawn per call: from the request's `seed` when it sends one, else from how
many times the server has answered this exact prompt and model, so a repeated run that bypasses the call cache
gets fresh draws while a run's first calls stay reproducible.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from judging.localllm import heuristics

FAULT_KINDS = ("rate_limit", "server_error", "hang", "malformed", "truncated")
MODEL_ID = "local-judge"
BIAS_OPTIONS = ("position", "length", "self", "marker", "flip")
MAX_SEEN_PROMPTS = 200_000  # prompts whose answer count is kept for the flip draws (then the count starts over)
_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    429: "Too Many Requests",
    500: "Internal Server Error",
}


@dataclass
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8001
    latency_ms: float = 0.0
    fault_rate: float = 0.0
    faults: tuple[str, ...] = FAULT_KINDS
    position_bias: float = 0.0
    length_bias: float | None = None
    self_preference: float = 0.0
    self_markers: tuple[str, ...] = ()
    flip_rate: float = 0.0
    seed: int = 0
    retry_after: float = 1.0
    hang_seconds: float = 120.0


@dataclass
class Reply:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


class LocalLLMServer:
    """The server; `serve_forever()` in an event loop, or `running_in_thread()` from synchronous code."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.stats: Counter[str] = Counter()
        self._fault_rng = random.Random(config.seed)
        self._seen: Counter[str] = Counter()  # answers given per (model, prompt): the flip draws' call keys
        self._in_flight = 0  # completions waiting out their latency (stats["max_in_flight"]: the most at once)
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        """Listen and return the bound port (useful with port 0)."""
        self._server = await asyncio.start_server(
            self._serve_connection, self.config.host, self.config.port, backlog=1024, reuse_address=True
        )
        return int(self._server.sockets[0].getsockname()[1])

    async def serve_forever(self) -> None:
        """Listen and serve until cancelled."""
        if self._server is None:
            await self.start()
        assert self._server is not None
        async with self._server:
            await self._server.serve_forever()

    @contextlib.contextmanager
    def running_in_thread(self) -> Iterator[str]:
        """Serve from a daemon thread while the block runs; yield the base URL (`http://host:port/v1`)."""
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="local-llm", daemon=True)
        thread.start()
        port = asyncio.run_coroutine_threadsafe(self.start(), loop).result(timeout=10)
        try:
            yield f"http://{self.config.host}:{port}/v1"
        finally:
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout=10)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
            loop.close()

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    break
                method, path, headers, body = request
                reply = await self._handle(method, path, body)
                if reply is None:  # a hang: the client gave up long ago
                    break
                writer.write(_encode(reply))
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    break
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            pass
        except asyncio.CancelledError:
            # Shutting down: finish quietly (on 3.11 a cancelled connection task logs a spurious traceback).
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def _handle(self, method: str, path: str, body: bytes) -> Reply | None:
        path = path.split("?", 1)[0].rstrip("/")
        self.stats["requests"] += 1
        if path == "/v1/models" and method == "GET":
            model = {"id": MODEL_ID, "object": "model", "created": 0, "owned_by": "evalplatform"}
            return Reply(200, {"object": "list", "data": [model]})
        if path == "/_stats" and method == "GET":
            return Reply(200, dict(self.stats))
        if path == "/v1/chat/completions":
            if method != "POST":
                return _error(405, "use POST", "invalid_request_error")
            return await self._chat(body)
        return _error(404, f"no route {method} {path}", "invalid_request_error")

    async def _chat(self, body: bytes) -> Reply | None:
        try:
            payload = json.loads(body or b"{}")
            messages = payload["messages"]
            model = str(payload["model"])
        except (ValueError, KeyError, TypeError):
            return _error(400, "body must be JSON with model and messages", "invalid_request_error")
        try:
            biases = self.biases_for(model)
        except ValueError as exc:
            return _error(400, str(exc), "invalid_request_error")
        fault = self._draw_fault()
        if fault:
            self.stats[f"fault_{fault}"] += 1
        if fault == "rate_limit":
            return _error(
                429,
                "rate limit reached, retry later",
                "rate_limit_error",
                headers={"retry-after": f"{self.config.retry_after:g}"},
            )
        self._in_flight += 1
        self.stats["max_in_flight"] = max(self.stats["max_in_flight"], self._in_flight)
        try:
            await asyncio.sleep(self.config.latency_ms / 1000)
        finally:
            self._in_flight -= 1
        if fault == "server_error":
            return _error(500, "the server had an error while processing your request", "server_error")
        if fault == "hang":
            await asyncio.sleep(self.config.hang_seconds)
            return None
        self.stats["completions"] += 1
        return Reply(200, self._completion(model, messages, payload, biases, fault))

    def _draw_fault(self) -> str | None:
        if not self.config.faults or self._fault_rng.random() >= self.config.fault_rate:
            return None
        return self._fault_rng.choice(self.config.faults)

    def biases_for(self, model: str) -> heuristics.Biases:
        """Return the biases of a request: the server's, overridden by the options in the model name."""
        config = self.config
        numbers, markers = parse_model_options(model)
        return heuristics.Biases(
            position=numbers.get("position", config.position_bias),
            length=numbers.get("length", config.length_bias),
            self_preference=numbers.get("self", config.self_preference),
            markers=config.self_markers if markers is None else markers,
            flip=numbers.get("flip", config.flip_rate),
        )

    def _call_key(self, model: str, prompt: str, seed: Any) -> str:
        if isinstance(seed, int) and not isinstance(seed, bool):
            return f"seed:{seed}"
        key = hashlib.sha256(f"{model}\n{prompt}".encode()).hexdigest()[:32]  # bounded memory per prompt
        if len(self._seen) >= MAX_SEEN_PROMPTS:
            self._seen.clear()
        self._seen[key] += 1
        return f"call:{self._seen[key] - 1}"

    def _completion(
        self,
        model: str,
        messages: list[dict[str, Any]],
        payload: dict[str, Any],
        biases: heuristics.Biases,
        fault: str | None,
    ) -> dict[str, Any]:
        response_format = payload.get("response_format")
        prompt = "\n".join(str(m.get("content", "")) for m in messages if isinstance(m, dict))
        judgement = heuristics.judge(
            prompt,
            position_bias=self.config.position_bias,
            seed=self.config.seed,
            biases=biases,
            call_key=self._call_key(model, prompt, payload.get("seed")),
        )
        text = heuristics.reply_text(
            messages, response_format if isinstance(response_format, dict) else None, judgement
        )
        finish_reason = "stop"
        if fault == "malformed":
            text = "Both answers have merit; I cannot decide on a final verdict."
        elif fault == "truncated":
            text, finish_reason = text[: max(1, len(text) // 3)], "length"
        tokens_in, tokens_out = heuristics.count_tokens(prompt), heuristics.count_tokens(text)
        return {
            "id": "chatcmpl-" + uuid.uuid4().hex[:24],
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish_reason}
            ],
            "usage": {
                "prompt_tokens": tokens_in,
                "completion_tokens": tokens_out,
                "total_tokens": tokens_in + tokens_out,
            },
        }


def parse_model_options(model: str) -> tuple[dict[str, float], tuple[str, ...] | None]:
    """Return the bias options in a model name (`name:key=value,...`): the numbers, and the markers when given;
    raise ValueError naming a bad option.

    position, self and flip are probabilities in [0, 1]; length is a slope in [-20, 20]; marker is a list of
    substrings separated by `|`.
    """
    numbers: dict[str, float] = {}
    markers: tuple[str, ...] | None = None
    if ":" not in model:
        return numbers, markers
    for item in model.split(":", 1)[1].split(","):
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or key not in BIAS_OPTIONS:
            raise ValueError(f"model option {item!r}: expected key=value with key one of {', '.join(BIAS_OPTIONS)}")
        if key == "marker":
            markers = tuple(m for m in value.split("|") if m)
            continue
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"model option {key}: {value!r} is not a number") from None
        low, high = (-20.0, 20.0) if key == "length" else (0.0, 1.0)
        if not low <= number <= high:  # also refuses nan
            raise ValueError(f"model option {key}: must be between {low:g} and {high:g}, not {value}")
        numbers[key] = number
    return numbers, markers


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str, dict[str, str], bytes] | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, path, _version = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0") or 0)
    body = await reader.readexactly(length) if length else b""
    return method, path, headers, body


def _encode(reply: Reply) -> bytes:
    body = json.dumps(reply.body).encode()
    headers = {"content-type": "application/json", "content-length": str(len(body)), **reply.headers}
    head = f"HTTP/1.1 {reply.status} {_REASONS.get(reply.status, 'Unknown')}\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return head.encode("latin-1") + b"\r\n" + body


def _error(status: int, message: str, kind: str, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status, {"error": {"message": message, "type": kind, "code": None}}, headers or {})
