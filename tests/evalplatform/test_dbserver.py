"""The embedded PostgreSQL server starts on demand and stops when the last process using it ends."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.factories import REPO_ROOT

pytestmark = pytest.mark.slow

HOLD = "import django, time; django.setup(); from django.db import connection; connection.ensure_connection(); " + (
    "print('ready', flush=True); time.sleep(60)"
)


def _start_user(pgdata: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(DJANGO_SETTINGS_MODULE="evalplatform.settings", EVALPLATFORM_PGDATA=str(pgdata))
    process = subprocess.Popen([sys.executable, "-c", HOLD], cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    return process


def _server_running(pgdata: Path) -> bool:
    return (pgdata / "postmaster.pid").exists()


def _wait_for_stop(pgdata: Path, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _server_running(pgdata):
            return True
        time.sleep(0.2)
    return False


def test_the_server_outlives_one_user_and_stops_with_the_last_even_when_it_is_terminated(tmp_path: Path) -> None:
    pgdata = tmp_path / "pgdata"
    first, second = _start_user(pgdata), _start_user(pgdata)
    assert _server_running(pgdata)

    first.send_signal(signal.SIGTERM)
    first.wait(timeout=30)
    assert _server_running(pgdata), "the server stopped while a process still used it"

    second.send_signal(signal.SIGTERM)
    second.wait(timeout=30)
    assert _wait_for_stop(pgdata), "the server kept running after its last user ended"


def test_a_user_killed_without_signing_off_does_not_keep_the_server_alive(tmp_path: Path) -> None:
    pgdata = tmp_path / "pgdata"
    killed = _start_user(pgdata)
    killed.kill()
    killed.wait(timeout=30)
    assert killed.pid in json.loads((pgdata / ".handle_pids.json").read_text())

    last = _start_user(pgdata)
    last.send_signal(signal.SIGTERM)
    last.wait(timeout=30)
    assert _wait_for_stop(pgdata), "a dead process kept the server running"
