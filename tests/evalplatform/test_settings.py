"""Settings come from the environment, refuse anything but PostgreSQL, and are safe for production."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.factories import REPO_ROOT


def _django_setup(**env: str) -> subprocess.CompletedProcess[str]:
    code = "import django; django.setup()"
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "evalplatform.settings", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_settings_refuse_a_database_that_is_not_postgresql() -> None:
    result = _django_setup(DATABASE_URL="sqlite:///db.sqlite3")
    assert result.returncode != 0
    assert "PostgreSQL only" in result.stderr


def test_settings_refuse_production_without_a_secret_key() -> None:
    result = _django_setup(DJANGO_DEBUG="0", DJANGO_SECRET_KEY="", DATABASE_URL="postgres://u@127.0.0.1:1/x")
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in result.stderr


def test_production_settings_pass_the_deployment_checks() -> None:
    env = {
        **os.environ,
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "k" * 20 + "-Zq9vX2mN7pL4rT8wY1uE5oI3aS6dF0gH",
        "DJANGO_ALLOWED_HOSTS": "eval.example.org",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout
