"""Serve the local OpenAI-compatible judge for tests, the demo and benchmarks."""

from __future__ import annotations

import asyncio
import contextlib
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from judging.localllm.server import FAULT_KINDS, MODEL_ID, LocalLLMServer, ServerConfig


class Command(BaseCommand):
    help = "Serve POST /v1/chat/completions and GET /v1/models with heuristic verdicts, latency and faults."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8001)
        parser.add_argument("--latency-ms", type=float, default=0.0, help="Delay before each reply.")
        parser.add_argument("--fault-rate", type=float, default=0.0, help="Share of calls that fail, 0 to 1.")
        parser.add_argument(
            "--faults",
            default=",".join(FAULT_KINDS),
            help=f"Comma-separated fault kinds drawn uniformly (default: all of {', '.join(FAULT_KINDS)}).",
        )
        parser.add_argument("--position-bias", type=float, default=0.0, help="Chance the first answer wins anyway.")
        parser.add_argument(
            "--length-bias",
            type=float,
            help="Plant a length bias: A wins with probability sigmoid(SLOPE * (ln(1+words A) - ln(1+words B))).",
        )
        parser.add_argument(
            "--self-preference",
            type=float,
            default=0.0,
            help="Chance that the one answer carrying a --self-marker wins anyway.",
        )
        parser.add_argument(
            "--self-marker",
            action="append",
            default=[],
            help="A substring marking one family's outputs (repeatable).",
        )
        parser.add_argument(
            "--flip-rate", type=float, default=0.0, help="Chance, drawn per call, that the verdict flips (noise)."
        )
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--retry-after", type=float, default=1.0, help="Retry-After seconds on 429 replies.")
        parser.add_argument("--hang-seconds", type=float, default=120.0, help="How long a hang fault lasts.")

    def handle(self, *args: Any, **options: Any) -> None:
        config = _config(options)
        server = LocalLLMServer(config)
        self.stdout.write(
            f"local LLM on http://{config.host}:{config.port}/v1 (model {MODEL_ID}): latency "
            f"{config.latency_ms:g} ms, fault rate {config.fault_rate:g} ({', '.join(config.faults)}), "
            f"position bias {config.position_bias:g}, length bias {config.length_bias}, self-preference "
            f"{config.self_preference:g} (markers {list(config.self_markers)}), flip rate {config.flip_rate:g}, seed "
            f"{config.seed}; per request: model local-judge:position=P,length=S,self=P,marker=M1|M2,flip=P"
        )
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(server.serve_forever())


def _config(options: dict[str, Any]) -> ServerConfig:
    faults = tuple(kind.strip() for kind in options["faults"].split(",") if kind.strip())
    unknown = sorted(set(faults) - set(FAULT_KINDS))
    if unknown:
        raise CommandError(f"--faults: unknown kind(s) {', '.join(unknown)}; choose from {', '.join(FAULT_KINDS)}")
    for name in ("fault_rate", "position_bias", "self_preference", "flip_rate"):
        if not 0 <= options[name] <= 1:
            raise CommandError(f"--{name.replace('_', '-')}: must be between 0 and 1")
    if options["length_bias"] is not None and not -20 <= options["length_bias"] <= 20:
        raise CommandError("--length-bias: must be between -20 and 20")
    if any(not marker for marker in options["self_marker"]):
        raise CommandError("--self-marker: must not be empty")
    if options["latency_ms"] < 0:
        raise CommandError("--latency-ms: must not be negative")
    return ServerConfig(
        host=options["host"],
        port=options["port"],
        latency_ms=options["latency_ms"],
        fault_rate=options["fault_rate"],
        faults=faults,
        position_bias=options["position_bias"],
        length_bias=options["length_bias"],
        self_preference=options["self_preference"],
        self_markers=tuple(options["self_marker"]),
        flip_rate=options["flip_rate"],
        seed=options["seed"],
        retry_after=options["retry_after"],
        hang_seconds=options["hang_seconds"],
    )
