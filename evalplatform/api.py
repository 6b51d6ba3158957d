"""The one DRF exception handler: DomainError subclasses become 400/403/404/409 responses."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from evalplatform.exceptions import DomainError


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DomainError):
        return Response(domain_error_body(exc), status=exc.status_code)
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
