"""Fixtures for judging tests: the local OpenAI-compatible server in a thread, and judges pointing at it."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from judging import services
from judging.localllm.server import LocalLLMServer, ServerConfig
from judging.models import JudgeConfig

LocalLLM = Callable[..., tuple[str, LocalLLMServer]]


TEST_ENDPOINTS = ["http://127.0.0.1:9/v1", "http://127.0.0.1:8001/v1"]  # make_judge's default (nothing listens)


@pytest.fixture(autouse=True)
def _judge_endpoints(settings: Any) -> None:
    """Allow the endpoints these tests' judges point at (production allows none), and no key variable."""
    settings.EVALPLATFORM_JUDGE_ALLOWED_ENDPOINTS = list(TEST_ENDPOINTS)
    settings.EVALPLATFORM_JUDGE_KEY_ENVS = []
    settings.EVALPLATFORM_JUDGE_PRIVATE_NETWORKS = []


@pytest.fixture
def local_llm(settings: Any) -> Iterator[LocalLLM]:
    """Return a starter: local_llm(latency_ms=..., fault_rate=...) -> (base URL, server), stopped after the test.

    Each server's URL is added to the allowed endpoints.
    """
    with contextlib.ExitStack() as stack:

        def start(**config: Any) -> tuple[str, LocalLLMServer]:
            server = LocalLLMServer(ServerConfig(port=0, **config))
            url = stack.enter_context(server.running_in_thread())
            settings.EVALPLATFORM_JUDGE_ALLOWED_ENDPOINTS = [*settings.EVALPLATFORM_JUDGE_ALLOWED_ENDPOINTS, url]
            return url, server

        yield start


@pytest.fixture
def make_judge(db: None) -> Callable[..., JudgeConfig]:
    """Return a builder of judges (default: MT-Bench template, generous limits, short timeout)."""

    def make(name: str = "local-judge", **options: Any) -> JudgeConfig:
        options.setdefault("base_url", "http://127.0.0.1:9/v1")
        options.setdefault("model", "local-judge")
        options.setdefault("timeout_seconds", 2.0)
        options.setdefault("max_concurrency", 64)
        options.setdefault("requests_per_minute", 60_000)
        judge, _ = services.save_judge(name=name, **options)
        return judge

    return make


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, float | None]]:
    """Record the tasks services would send to the broker."""
    calls: list[tuple[int, float | None]] = []
    monkeypatch.setattr(
        services, "enqueue_verdicts", lambda ids, countdown=None: calls.extend((i, countdown) for i in ids)
    )
    return calls


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Any) -> None:
    """Hash the personas' passwords cheaply: PBKDF2 would dominate these tests' setup."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def judge_form(**changes: str) -> dict[str, str]:
    """Return the admin's judge form data for a valid judge of the local server, with these fields changed."""
    data = {
        "name": "admin-judge", "base_url": "http://127.0.0.1:8001/v1", "model": "local-judge", "api_key_env": "",
        "template": "arena_hard", "system_prompt": "", "custom_template": "", "verdict_format": "pattern",
        "verdict_pattern": "", "temperature": "0", "max_tokens": "512", "both_orders": "on", "max_concurrency": "8",
        "requests_per_minute": "600", "timeout_seconds": "30", "max_attempts": "5", "price_input_per_million": "0",
        "price_output_per_million": "0",
    }  # fmt: skip
    data.update(changes)
    return data
