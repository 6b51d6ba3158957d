"""The one DRF exception handler: DomainError subclasses become 400/403/404/409 responses, and a database that is
unavailable for a moment (a restarting or failing-over PostgreSQL) a retryable 503."""

from __future__ import annotations

from typing import Any

from django.db import InterfaceError, OperationalError
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from evalplatform.exceptions import DomainError

# A lost connection, a server shutting down or restarting: clients retry (a rating with its idempotency key is
# stored once), so they get 503 and Retry-After rather than a 500 that says the request itself was wrong.
DATABASE_ERRORS = (OperationalError, InterfaceError)
DATABASE_UNAVAILABLE = {"detail": "The database is unavailable for a moment: retry.", "code": "database_unavailable"}
RETRY_AFTER_SECONDS = "1"


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DomainError):
        return Response(domain_error_body(exc), status=exc.status_code)
    if isinstance(exc, DATABASE_ERRORS):
        set_rollback()
        return Response(DATABASE_UNAVAILABLE, status=503, headers={"Retry-After": RETRY_AFTER_SECONDS})
    return drf_exception_handler(exc, context)


def domain_error_body(exc: DomainError) -> dict[str, Any]:
    """Return the JSON body of a DomainError's response: its message under `detail`, or under its field."""
    if exc.field:
        return {exc.field: [exc.message], "code": exc.code}
    return {"detail": exc.message, "code": exc.code}


def validated(serializer: serializers.Serializer[Any], data: Any) -> Any:
    """Return `data` validated by a serializer instance built once and shared, or raise its 400 ValidationError.

    The same checks and errors as `Serializer(data=data).is_valid(raise_exception=True)`, without building the
    serializer's fields anew for each request. The serializer must hold no per-request state: no context, no
    `validate_*` methods that read `self.initial_data`.
    """
    return serializer.run_validation(data)
