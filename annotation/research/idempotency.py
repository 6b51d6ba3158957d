"""`Idempotency-Key` on the research API's creates and uploads: a retry gets the first answer, the work done once.

The key's row is inserted in the transaction of the write itself, so the write and the answer kept for retries
commit together or not at all. A second request with the same key waits on the row's unique index until the first
commits (then it answers what the first answered) or rolls back (then it does the work itself). Refusals (4xx)
are not kept: nothing was written, and a retry is checked afresh. Keys are per user and kept 24 hours.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable
from datetime import timedelta

from django.contrib.auth.models import User
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone
from rest_framework.response import Response

from annotation.models import IdempotencyKey
from evalplatform.exceptions import DomainError

HEADER = "Idempotency-Key"
KEEP = timedelta(hours=24)
SWEEP = 100  # expired rows deleted per request that brings a key
_VALID_KEY = re.compile(r"[\x21-\x7e]{1,255}")  # printable ASCII, no spaces

_INSERT = """
INSERT INTO annotation_idempotencykey (user_id, key, request_digest, status_code, response, created_at)
VALUES (%s, %s, %s, 0, NULL, %s)
ON CONFLICT (user_id, key) DO NOTHING
RETURNING id
"""


class KeyReused(DomainError):
    status_code = 422
    code = "idempotency_key_reused"


def request_digest(method: str, path: str, query: str, body_parts: Iterable[bytes]) -> str:
    """Return the sha256 naming one request: its method, path, query string and body (given in parts)."""
    digest = hashlib.sha256(f"{method} {path}?{query}\n".encode())
    for part in body_parts:
        digest.update(part)
    return digest.hexdigest()


def json_body(data: object) -> bytes:
    """Return a JSON body in one canonical form, so that the same object sent twice has the same digest."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=str).encode()


def idempotent(*, user: User, key: str | None, digest: str, work: Callable[[], Response]) -> Response:
    """Return work()'s response, done once per key: a retry with the key and the same request gets it again.

    The same key with another request is refused (422), as is a malformed key (400).
    """
    if key is None:
        return work()
    if not _VALID_KEY.fullmatch(key):
        raise DomainError("1 to 255 printable ASCII characters without spaces.", field=HEADER)
    now = timezone.now()
    _sweep(now - KEEP)
    with transaction.atomic():
        IdempotencyKey.objects.filter(user=user, key=key, created_at__lt=now - KEEP).delete()
        with connection.cursor() as cursor:
            cursor.execute(_INSERT, [user.pk, key, digest, now])
            inserted = cursor.fetchone()
        if inserted is None:
            return _replay(IdempotencyKey.objects.get(user=user, key=key), digest)
        response = work()
        if not 200 <= response.status_code < 300:
            transaction.set_rollback(True)  # a refusal wrote nothing and is not kept
            return response
        kept = json.loads(json.dumps(response.data, cls=DjangoJSONEncoder))
        IdempotencyKey.objects.filter(pk=inserted[0]).update(status_code=response.status_code, response=kept)
        return response


def _replay(row: IdempotencyKey, digest: str) -> Response:
    if row.request_digest != digest:
        raise KeyReused(
            f"This {HEADER} was used for a different request (another route or body) in the last 24 hours: "
            "send a new key for a new request."
        )
    return Response(row.response, status=row.status_code, headers={"Idempotent-Replayed": "true"})


def _sweep(cutoff: object) -> None:
    """Delete a bounded number of expired keys, so the table holds about a day of keys."""
    expired = IdempotencyKey.objects.filter(created_at__lt=cutoff).values("pk")[:SWEEP]
    IdempotencyKey.objects.filter(pk__in=expired).delete()
