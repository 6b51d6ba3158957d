"""The annotator benchmark's open-loop driver: arrivals on a schedule, latency counted from when a rating was due."""

from __future__ import annotations

import asyncio
import importlib
import itertools
import json
import random
from collections import Counter
from typing import Any

import pytest

# Imported by name: bench/ is a directory of scripts (bench_claim_history imports this one as a top-level module),
# so importing it as bench.bench_assignment here would make mypy see the same file under two names.
bench = importlib.import_module("bench.bench_assignment")
Connection, Samples, arrival_offsets, drive_open_loop = (
    bench.Connection,
    bench.Samples,
    bench.arrival_offsets,
    bench.drive_open_loop,
)

NEXT_DELAY = 0.05


# The client port of each `next` request the stub answered.
next_peers: list[int] = []


async def _stub_server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answer `next` after NEXT_DELAY seconds and `rating` at once, over one keep-alive connection."""
    peer = writer.get_extra_info("peername")[1]
    try:
        while True:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            length = int(head.lower().split("content-length:", 1)[1].split("\r\n", 1)[0])
            await reader.readexactly(length)
            if "/next/" in head.split("\r\n", 1)[0]:
                next_peers.append(peer)
                await asyncio.sleep(NEXT_DELAY)
                status, body = "200 OK", json.dumps({"assignment": 1}).encode()
            else:
                status, body = "201 Created", b"{}"
            writer.write(f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
            await writer.drain()
    except asyncio.IncompleteReadError:
        writer.close()


async def _open_loop(offsets: list[float], clients: int) -> tuple[Any, Any]:
    server = await asyncio.start_server(_stub_server, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    samples = Samples()
    try:
        connections = [Connection(port, f"token-{i}") for i in range(clients)]
        outcome = await drive_open_loop(connections, 1, offsets, samples, grace=5.0)
    finally:
        server.close()
    return samples, outcome


def test_even_arrivals_are_spaced_one_over_the_rate() -> None:
    offsets = arrival_offsets(rate=300, seconds=2, arrivals="even", rng=random.Random(1))

    assert len(offsets) == 600
    assert offsets[0] == 0
    assert offsets[1] - offsets[0] == pytest.approx(1 / 300)
    assert offsets[-1] < 2


def test_poisson_arrivals_keep_the_mean_rate_within_the_run() -> None:
    offsets = arrival_offsets(rate=300, seconds=20, arrivals="poisson", rng=random.Random(1))

    assert len(offsets) == 6000  # exactly the offered rate
    assert offsets == sorted(offsets)
    assert offsets[0] >= 0
    assert offsets[-1] < 20
    gaps = sorted(b - a for a, b in itertools.pairwise(offsets))
    assert gaps[len(gaps) // 2] == pytest.approx(0.693 / 300, rel=0.1)  # the exponential's median gap, ln 2 / rate
    assert gaps[int(len(gaps) * 0.9)] == pytest.approx(2.303 / 300, rel=0.1)  # and its 90th percentile, ln 10 / rate
    per_second = Counter(int(t) for t in offsets)
    assert max(per_second.values()) - min(per_second.values()) > 30  # bursts and lulls, unlike even arrivals


def test_open_loop_latency_counts_the_wait_for_a_busy_client() -> None:
    # Three ratings due at once on one client: the third starts after two others, and its latency shows it.
    samples, outcome = asyncio.run(_open_loop([0.0, 0.0, 0.0], clients=1))

    assert samples.ratings == 3
    assert not samples.errors
    next_latencies = samples.requests[0::2]
    assert next_latencies[0] >= NEXT_DELAY
    assert next_latencies[2] >= 3 * NEXT_DELAY
    assert samples.round_trips[2] >= 3 * NEXT_DELAY
    assert outcome.due == outcome.started == 3
    assert outcome.max_start_lag >= 2 * NEXT_DELAY


def test_open_loop_starts_simultaneous_arrivals_on_different_free_clients() -> None:
    next_peers.clear()
    samples, outcome = asyncio.run(_open_loop([0.0, 0.0, 0.0], clients=3))

    assert samples.ratings == 3
    assert outcome.due == outcome.started == 3
    assert len(set(next_peers)) == 3


def test_open_loop_reuses_a_client_once_it_is_free() -> None:
    next_peers.clear()
    samples, _ = asyncio.run(_open_loop([0.0, 0.0, 0.0], clients=1))

    assert samples.ratings == 3
    assert len(set(next_peers)) == 1


def _warm_up_with(monkeypatch: pytest.MonkeyPatch, rounds: list[list[int]]) -> list[int]:
    """Run warm_up against a server whose workers hold these connection counts round by round; return the loads."""
    counts = iter(rounds)
    loads: list[int] = []
    monkeypatch.setattr(bench, "split_midway", lambda pid, port, seconds: lambda: next(counts))
    monkeypatch.setattr(bench, "run_load", lambda port, tokens, campaign_id, seconds: loads.append(len(tokens)))
    bench.warm_up(1, 8765, ["a", "b", "c"], 1)
    return loads


def test_warm_up_drives_load_until_every_worker_has_taken_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    # The second worker is still importing the application for two rounds: its boot must not fall in the measurement.
    loads = _warm_up_with(monkeypatch, [[3, 0], [3, 0], [2, 1]])

    assert loads == [3, 3, 3]  # every client, every round


def test_warm_up_refuses_a_worker_that_never_takes_a_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bench, "WARM_UP_LIMIT_SECONDS", 0.0)

    with pytest.raises(RuntimeError, match="took no connection"):
        _warm_up_with(monkeypatch, [[3, 0], [3, 0]])
