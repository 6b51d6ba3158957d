"""Raw SQL for the request hot paths: prepared statements on Django's own connection and transaction.

The ORM costs a millisecond or more of Python per query to build and compile; the annotator's next and rating
requests run a few fixed statements instead. PostgreSQL plans a statement like the claim (six index arms) in
about a millisecond, so these statements are also prepared once per connection: later executions skip parse
and plan. They go through Django's cursor wrapper, so errors are Django's (IntegrityError, ...), the
transaction is Django's (`transaction.atomic`), and tests that capture queries see them.

Prepared statements live in the server session: behind a connection pooler in transaction mode (PgBouncer
before 1.21) they would need its prepared-statement support.
"""

from __future__ import annotations

from typing import Any, cast

import psycopg
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.utils import CursorWrapper


class _PreparingCursor(psycopg.Cursor[Any]):
    """A psycopg cursor with server-side binding that prepares every statement it executes."""

    def execute(
        self, query: Any, params: Any = None, *, prepare: bool | None = None, binary: bool | None = None
    ) -> Any:
        return super().execute(query, params, prepare=True, binary=binary)


def prepared_cursor() -> CursorWrapper:
    """Return a cursor on the default connection whose statements are prepared (use it as a context manager).

    Parameters are bound by the server, so each statement must be a single statement with %s or %(name)s
    placeholders, and a parameter whose type the statement does not fix (NULL in a SELECT list) needs a cast.
    """
    db = connections[DEFAULT_DB_ALIAS]
    db.ensure_connection()
    db.validate_thread_sharing()
    raw = _PreparingCursor(db.connection)
    cursor = cast(Any, raw)  # django-stubs type these as taking a CursorWrapper; they wrap a DB-API cursor
    return db.make_debug_cursor(cursor) if db.queries_logged else db.make_cursor(cursor)
