"""At most a few report computations per user at a time, counted across every web process and host.

A report's cost is bounded per request (bootstrap rounds, rater selections, categories), but each request whose
options are new to the cache computes again: a researcher sending leaderboards with ``influence=1`` and a new
``seed`` each time (several seconds of CPU each on a campaign of a hundred models) could keep every web worker busy.
So each user holds one of ``EVALPLATFORM_REPORT_SLOTS_PER_USER`` slots (default 2; 0: no limit) while a report is
answered; a request finding all of them taken is refused at once (429 in the API, with ``Retry-After``) instead of
queueing. The slots are PostgreSQL session advisory locks on the primary: every process sees them, and a process
that dies releases its own with its connection.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import Any, TypeVar, cast

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import DatabaseError, connection
from rest_framework.exceptions import Throttled

from evalplatform.exceptions import DomainError

SLOTS_VARIABLE = "EVALPLATFORM_REPORT_SLOTS_PER_USER"
DEFAULT_SLOTS = 2
RETRY_AFTER_SECONDS = 2
# Advisory lock keys are one bigint: this namespace in the top 16 bits, then the user's id and the slot's number.
NAMESPACE = 0x7265  # "re"
SLOT_BITS = 8
ViewMethod = TypeVar("ViewMethod", bound=Callable[..., Any])


class TooManyReports(DomainError):
    status_code = 429
    code = "throttled"


def slots_per_user() -> int:
    """Return the operator's number of report slots per user (0: no limit); ValueError names a bad setting."""
    text = os.environ.get(SLOTS_VARIABLE, "").strip()
    if not text:
        return DEFAULT_SLOTS
    if not text.isdigit() or int(text) >= 1 << SLOT_BITS:
        raise ValueError(f"{SLOTS_VARIABLE}: expected a whole number from 0 to {(1 << SLOT_BITS) - 1}, not {text!r}")
    return int(text)


def slot_key(user_id: int, slot: int) -> int:
    """Return the advisory lock key of one of a user's report slots."""
    return (NAMESPACE << 47) | (user_id << SLOT_BITS) | slot


@contextmanager
def report_slot(user: AbstractBaseUser | AnonymousUser) -> Iterator[None]:
    """Hold one of the user's report slots while the block runs; raise TooManyReports when all are taken."""
    most = slots_per_user()
    if most == 0 or not user.is_authenticated or user.pk is None:
        yield
        return
    key = _take(int(user.pk), most)
    if key is None:
        raise TooManyReports(
            f"You already have {most} reports being computed; retry when one has finished "
            f"(at most {most} at a time per user)."
        )
    try:
        yield
    finally:
        _release(key)


def _take(user_id: int, most: int) -> int | None:
    with connection.cursor() as cursor:
        for slot in range(most):
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [slot_key(user_id, slot)])
            row = cursor.fetchone()
            if row is not None and row[0]:
                return slot_key(user_id, slot)
    return None


def _release(key: int) -> None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
    except DatabaseError:
        connection.close()  # a session's advisory locks end with it: never leave a slot taken


def one_report_at_a_slot(method: ViewMethod) -> ViewMethod:
    """Run an APIView method in one of its user's report slots: 429 with Retry-After when all are taken."""

    @wraps(method)
    def wrapped(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            with report_slot(request.user):
                return method(self, request, *args, **kwargs)
        except TooManyReports as exc:
            raise Throttled(wait=RETRY_AFTER_SECONDS, detail=exc.message) from exc

    return cast(ViewMethod, wrapped)
