"""Domain errors: services raise these; evalplatform.api maps them to HTTP statuses."""

from __future__ import annotations


class DomainError(Exception):
    """A request that the domain refuses; the message is safe to show to the user."""

    status_code = 400
    code = "invalid"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class NotFound(DomainError):
    status_code = 404
    code = "not_found"


class PermissionDenied(DomainError):
    status_code = 403
    code = "permission_denied"


class Conflict(DomainError):
    status_code = 409
    code = "conflict"
