"""The Celery app's hook on task start: a connection that failed is replaced before the task runs."""

from __future__ import annotations

import pytest
from celery.signals import task_prerun
from django.db import connection

import evalplatform.celery  # noqa: F401  (connects the hook)


@pytest.mark.django_db(transaction=True)
def test_a_task_after_a_database_restart_starts_on_a_new_connection() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        old_pid = cursor.fetchone()[0]
    connection.connection.close()  # what a server restart leaves behind
    connection.errors_occurred = True  # set by Django when a query on it failed

    task_prerun.send(sender=None, task_id="t", task=None, args=(), kwargs={})

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] != old_pid


@pytest.mark.django_db(transaction=True)
def test_a_healthy_connection_is_kept_between_tasks(monkeypatch: pytest.MonkeyPatch) -> None:
    # Kept connections are the production setting (DATABASE_URL: CONN_MAX_AGE 60); the embedded server a fresh
    # clone tests on closes each one (CONN_MAX_AGE 0), so the connection is opened anew under the kept setting.
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", 60)
    connection.close()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        old_pid = cursor.fetchone()[0]

    task_prerun.send(sender=None, task_id="t", task=None, args=(), kwargs={})

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] == old_pid
