from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.signals import task_prerun
from django.db import close_old_connections

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalplatform.settings")

app = Celery("evalplatform")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def close_broken_database_connections(**kwargs: Any) -> None:
    """Close the thread's database connections that failed or outlived CONN_MAX_AGE, as Django does per request.

    CELERY_DB_REUSE_MAX keeps connections between tasks, and Celery's Django fixup then never checks them: after a
    PostgreSQL restart each worker thread would fail every task on its dead connection ("the connection is closed").
    """
    close_old_connections()


task_prerun.connect(close_broken_database_connections, weak=False)
