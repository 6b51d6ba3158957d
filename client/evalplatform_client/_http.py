"""Requests with safe retries: backoff on connection errors, 5xx and 429, one Idempotency-Key per call."""

from __future__ import annotations

import os
import random
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any

import httpx

from evalplatform_client import errors
from evalplatform_client.progress import Progress, ProgressCallback

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# Errors raised before any byte of the request left: retrying cannot do the work twice, whatever the method.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry: `attempts` in all, waits of `backoff` x 2^n (at most `max_wait`) with
    jitter, or the server's Retry-After when it is longer."""

    attempts: int = 5
    backoff: float = 0.5
    max_wait: float = 30.0

    def wait(self, attempt: int, advised: float | None) -> float:
        delay = min(self.max_wait, self.backoff * 2.0**attempt) * random.uniform(0.5, 1.0)
        return min(self.max_wait, max(delay, advised or 0.0))


@dataclass(frozen=True)
class Upload:
    """A file to send as the multipart `file` field, reopened on each attempt."""

    path: str
    progress: ProgressCallback | None = None


class Session:
    """The HTTP session of a Client: base URL, token, timeouts and retries."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None,
        timeout: float,
        retry: RetryPolicy,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        headers = {"Accept": "application/json", "User-Agent": "evalplatform-client/0.1"}
        if token:
            headers["Authorization"] = f"Token {token}"
        self.http = httpx.Client(
            base_url=base_url.rstrip("/") + "/api/v1/", headers=headers, timeout=timeout, transport=transport
        )
        self.retry = retry
        self.sleep = sleep

    def close(self) -> None:
        self.http.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        upload: Upload | None = None,
        idempotency_key: bool = False,
        safe: bool | None = None,
    ) -> httpx.Response:
        """Send a request and return its 2xx response, or raise the typed error of its refusal.

        With `idempotency_key`, one key is made for this call and sent on each of its attempts, so the server
        does the work once. Safe requests (GET, PUT, PATCH, and POSTs with a key, unless `safe` says otherwise)
        are retried after connection errors, 5xx and 429; others only when the request was never sent or
        throttled (429, refused before any work).
        """
        headers = {"Idempotency-Key": uuid.uuid4().hex} if idempotency_key else {}
        if safe is None:
            safe = method in ("GET", "PUT", "PATCH") or idempotency_key
        params = {k: v for k, v in (params or {}).items() if v is not None}
        for attempt in range(self.retry.attempts):
            last = attempt == self.retry.attempts - 1
            try:
                with _body(upload) as files:
                    response = self.http.request(method, path, params=params, json=json, files=files, headers=headers)
            except httpx.TransportError as error:
                if last or not (safe or isinstance(error, NOT_SENT)):
                    raise errors.ConnectionFailed(f"{method} {path}: {error!r}") from error
                self.sleep(self.retry.wait(attempt, None))
                continue
            if response.status_code in RETRY_STATUSES and not last and (safe or response.status_code == 429):
                self.sleep(self.retry.wait(attempt, errors.retry_after(response)))
                continue
            if response.is_error:
                raise errors.error_for(response)
            return response
        raise AssertionError("unreachable: the last attempt returns or raises")

    def json(self, method: str, path: str, **options: Any) -> Any:
        """Send a request (as `request`) and return its JSON body (None for an empty one)."""
        response = self.request(method, path, **options)
        return response.json() if response.content else None

    def pages(self, path: str, params: dict[str, Any], *, page_size: int) -> Iterator[Any]:
        """Yield every row of a limit/offset listing, a page at a time."""
        offset = 0
        while True:
            page = self.json("GET", path, params={**params, "limit": page_size, "offset": offset})
            rows = page.get("results") or []
            yield from rows
            offset += len(rows)
            if not rows or offset >= int(page.get("count") or 0):
                return

    def download(
        self, path: str, params: dict[str, Any], target: str, progress: ProgressCallback | None
    ) -> httpx.Headers:
        """Stream a GET response into `target` (written beside it, then renamed); return the response headers.

        A connection lost mid-file, a 5xx or a 429 starts the download again (a GET is safe to repeat).
        """
        params = {k: v for k, v in params.items() if v is not None}
        partial = f"{target}.part"
        for attempt in range(self.retry.attempts):
            last = attempt == self.retry.attempts - 1
            try:
                with self.http.stream("GET", path, params=params) as response:
                    if response.status_code in RETRY_STATUSES and not last:
                        advised = errors.retry_after(response)
                        self.sleep(self.retry.wait(attempt, advised))
                        continue
                    if response.is_error:
                        response.read()
                        raise errors.error_for(response)
                    _save(response, partial, target, progress)
                    return response.headers
            except httpx.TransportError as error:
                if last:
                    raise errors.ConnectionFailed(f"GET {path}: {error!r}") from error
                self.sleep(self.retry.wait(attempt, None))
        raise AssertionError("unreachable: the last attempt returns or raises")


def _save(response: httpx.Response, partial: str, target: str, progress: ProgressCallback | None) -> None:
    total = int(response.headers["Content-Length"]) if "Content-Length" in response.headers else None
    done = 0
    try:
        with open(partial, "wb") as out:
            for chunk in response.iter_bytes(64 * 1024):
                out.write(chunk)
                done += len(chunk)
                if progress:
                    progress(Progress(f"export {os.path.basename(target)}", done, total, "bytes"))
        os.replace(partial, target)
    finally:
        if os.path.exists(partial):
            os.remove(partial)
    if progress:
        progress(Progress(f"export {os.path.basename(target)}", done, total, "bytes", finished=True))


class ProgressReader:
    """A file read by httpx's multipart encoder, reporting the bytes read so far."""

    def __init__(self, file: IO[bytes], name: str, progress: ProgressCallback) -> None:
        self.file = file
        self.name = name
        self.progress = progress
        self.total = os.fstat(file.fileno()).st_size
        self.done = 0

    def fileno(self) -> int:
        return self.file.fileno()

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        position = self.file.seek(offset, whence)
        self.done = position
        return position

    def tell(self) -> int:
        return self.file.tell()

    def read(self, size: int = -1) -> bytes:
        chunk = self.file.read(size)
        self.done += len(chunk)
        self.progress(Progress(f"upload {self.name}", self.done, self.total, "bytes", finished=not chunk))
        return chunk


@contextmanager
def _body(upload: Upload | None) -> Iterator[dict[str, Any] | None]:
    """Open an upload for one attempt: {"file": (name, file)} for httpx, closed afterwards."""
    if upload is None:
        yield None
        return
    name = os.path.basename(upload.path)
    with open(upload.path, "rb") as file:
        content: Any = ProgressReader(file, name, upload.progress) if upload.progress else file
        yield {"file": (name, content)}
