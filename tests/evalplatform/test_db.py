"""Prepared statements for the hot paths run on Django's connection, transaction and error mapping."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from evalplatform.db import prepared_cursor

pytestmark = pytest.mark.django_db

PROBE = "SELECT %s::int + 1 AS evalplatform_db_probe"


def test_statements_run_through_prepared_cursor_are_prepared_in_the_session() -> None:
    with prepared_cursor() as cursor:
        cursor.execute(PROBE, [41])
        assert cursor.fetchone() == (42,)

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE '%%evalplatform_db_probe%%'")
        assert cursor.fetchone() == (1,)


def test_orm_queries_are_not_prepared() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 AS evalplatform_db_orm_probe")
        cursor.execute("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE '%%orm_probe%%'")
        assert cursor.fetchone() == (0,)


def test_errors_are_djangos_and_the_transaction_is_djangos() -> None:
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMPORARY TABLE db_probe (id int PRIMARY KEY)")

    with transaction.atomic(), prepared_cursor() as cursor:
        cursor.execute("INSERT INTO db_probe VALUES (%s)", [1])
    with pytest.raises(IntegrityError), transaction.atomic(), prepared_cursor() as cursor:
        cursor.execute("INSERT INTO db_probe VALUES (%s), (%s)", [2, 1])

    with connection.cursor() as cursor:
        cursor.execute("SELECT array_agg(id) FROM db_probe")
        assert cursor.fetchone() == ([1],)


def test_query_capture_sees_prepared_statements() -> None:
    with CaptureQueriesContext(connection) as queries, prepared_cursor() as cursor:
        cursor.execute(PROBE, [1])

    assert len(queries.captured_queries) == 1
