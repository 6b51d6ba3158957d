"""scripts/cluster end to end: up, status, the faults with their SQL checks, down.

It builds network namespaces and needs root, iproute2, HAProxy and PostgreSQL 15, and takes several minutes, so it
runs only when asked: EVALPLATFORM_CLUSTER_TESTS=1 (CI does not set it). It starts and removes its own cluster; one
must not be up already.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent.parent
CLUSTER = REPO / "scripts" / "cluster"

pytestmark = pytest.mark.skipif(
    os.environ.get("EVALPLATFORM_CLUSTER_TESTS") != "1" or os.geteuid() != 0 or shutil.which("ip") is None,
    reason="the cluster test needs root, iproute2 and EVALPLATFORM_CLUSTER_TESTS=1",
)


def cluster(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(CLUSTER), *args], cwd=REPO, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def cluster_up() -> Iterator[str]:
    up = cluster("up", timeout=600)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        yield up.stdout
    finally:
        down = cluster("down", timeout=120)
        assert down.returncode == 0, down.stdout + down.stderr


def test_up_reports_every_host_healthy_and_status_gives_the_addresses(cluster_up: str) -> None:
    status = cluster("status", timeout=60)

    assert status.returncode == 0, status.stdout + status.stderr
    lines = {line.split()[0]: line for line in status.stdout.splitlines()[1:] if line.strip()}
    assert set(lines) == {"lb", "web1", "web2", "worker1", "worker2", "db", "replica"}
    assert all(" ok: " in line for line in lines.values()), status.stdout
    assert "http://10.77.0.10/" in status.stdout
    assert "streaming" in lines["replica"]


def test_the_faults_pass_every_check(cluster_up: str) -> None:
    run = cluster(
        "faults", "--seconds", "60", "--baseline-seconds", "10", "--baseline-judge", "100", "--judge", "600",
        timeout=1800,
    )  # fmt: skip

    checks = [line for line in run.stdout.splitlines() if line.startswith(("PASS", "FAIL"))]
    assert len(checks) == 5, run.stdout + run.stderr
    assert all(line.startswith("PASS") for line in checks), run.stdout + run.stderr
    assert run.returncode == 0
    status = cluster("status", timeout=60)  # every host is back after the faults
    assert status.returncode == 0, status.stdout
