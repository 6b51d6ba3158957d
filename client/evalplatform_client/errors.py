"""Typed errors: each carries the HTTP status, the server's `code` and its messages."""

from __future__ import annotations

from typing import Any

import httpx


class EvalPlatformError(Exception):
    """Base of the client's errors."""


class WaitTimeout(EvalPlatformError):
    """A wait (an import job, a judge run) did not end within its timeout."""


class APIError(EvalPlatformError):
    """The server refused a request; `message` is its explanation, `body` the parsed JSON answer (or None)."""

    def __init__(self, status: int, message: str, *, code: str | None = None, body: Any = None) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message
        self.code = code
        self.body = body


class ValidationError(APIError):
    """400: bad input. `errors` maps each field (or `detail`) to the server's messages."""

    def __init__(self, status: int, message: str, *, code: str | None = None, body: Any = None) -> None:
        super().__init__(status, message, code=code, body=body)
        self.errors: dict[str, list[str]] = field_errors(body)


class ImportRefused(ValidationError):
    """400 `import_refused`: the upload was refused and nothing was written; `lines` are its bad lines."""

    def __init__(self, status: int, message: str, *, code: str | None = None, body: Any = None) -> None:
        super().__init__(status, message, code=code, body=body)
        body = body if isinstance(body, dict) else {}
        self.lines: list[str] = [str(line) for line in body.get("errors") or []]
        self.total: int = int(body.get("error_total") or len(self.lines))


class AuthenticationFailed(APIError):
    """401: no credentials, or an unknown token."""


class PermissionDenied(APIError):
    """403: signed in, but not allowed (an annotator of the campaign, or a missing permission)."""


class NotFound(APIError):
    """404: no such object that you may see."""


class Conflict(APIError):
    """409: refused in the current state (closing a closed campaign, cancelling a finished run)."""


class PayloadTooLarge(APIError):
    """413: the body is larger than the server accepts."""


class IdempotencyKeyReused(APIError):
    """422: the Idempotency-Key was already used for a different request."""


class RateLimited(APIError):
    """429: too many requests; `retry_after` is the server's advice in seconds, when it gave one."""

    def __init__(
        self, status: int, message: str, *, code: str | None = None, body: Any = None, retry_after: float | None = None
    ) -> None:
        super().__init__(status, message, code=code, body=body)
        self.retry_after = retry_after


class ServerError(APIError):
    """5xx, after the retries."""


class ConnectionFailed(EvalPlatformError):
    """The server could not be reached (or the connection broke), after the retries."""


BY_STATUS: dict[int, type[APIError]] = {
    400: ValidationError,
    401: AuthenticationFailed,
    403: PermissionDenied,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    422: IdempotencyKeyReused,
}


def field_errors(body: Any) -> dict[str, list[str]]:
    """Return a DRF error body as {field: [messages]} (a `detail` string becomes {"detail": [it]})."""
    if not isinstance(body, dict):
        return {}
    errors: dict[str, list[str]] = {}
    for field, messages in body.items():
        if field in ("code", "error_total"):
            continue
        if isinstance(messages, list):
            errors[str(field)] = [str(m) for m in messages]
        elif isinstance(messages, dict):
            errors[str(field)] = [f"{k}: {v}" for k, v in messages.items()]
        else:
            errors[str(field)] = [str(messages)]
    return errors


def retry_after(response: httpx.Response) -> float | None:
    """Return the Retry-After header in seconds (the number form; dates are ignored)."""
    value = response.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def error_for(response: httpx.Response) -> APIError:
    """Return the typed error of a 4xx/5xx response, with the server's messages."""
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    code = body.get("code") if isinstance(body, dict) and isinstance(body.get("code"), str) else None
    message = describe(body) or response.reason_phrase or f"HTTP {response.status_code}"
    status = response.status_code
    if status == 429:
        return RateLimited(status, message, code=code, body=body, retry_after=retry_after(response))
    if status >= 500:
        return ServerError(status, message, code=code, body=body)
    if status == 400 and code == "import_refused":
        return ImportRefused(status, message, code=code, body=body)
    return BY_STATUS.get(status, APIError)(status, message, code=code, body=body)


def describe(body: Any) -> str:
    """Return the server's messages in one line: `detail`, else `field: message; ...`."""
    if isinstance(body, dict):
        if isinstance(body.get("detail"), str):
            return str(body["detail"])
        parts = []
        for field, messages in field_errors(body).items():
            parts.append(f"{field}: {' '.join(messages)}" if field != "non_field_errors" else " ".join(messages))
        return "; ".join(parts)
    if isinstance(body, list):
        return "; ".join(str(item) for item in body)
    return ""
