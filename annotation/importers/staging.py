"""Keep an uploaded file between the preview and the confirmation, behind a signed token."""

from __future__ import annotations

import secrets
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from django.core import signing

from evalplatform.exceptions import DomainError

SALT = "annotation.importers.staging"
MAX_AGE_SECONDS = 3600


@dataclass(frozen=True)
class StagedFile:
    """An uploaded file waiting for confirmation, and whom it belongs to."""

    name: str
    path: Path
    campaign_id: int
    kind: str
    user_id: int

    @property
    def size(self) -> int:
        return self.path.stat().st_size


class Upload(Protocol):
    """What is staged: a Django UploadedFile, or anything else that yields its bytes in chunks."""

    def chunks(self) -> Iterator[bytes]: ...


def staging_dir() -> Path:
    path = Path(tempfile.gettempdir()) / "evalplatform-imports"
    path.mkdir(mode=0o700, exist_ok=True)
    return path


def stage_upload(*, name: str, upload: Upload | bytes, campaign_id: int, kind: str, user_id: int) -> str:
    """Copy the upload, chunk by chunk, into a private temporary file and return a signed token naming it."""
    _remove_stale_files()
    key = secrets.token_urlsafe(24)
    with (staging_dir() / key).open("wb") as staged:
        for chunk in [upload] if isinstance(upload, bytes) else upload.chunks():
            staged.write(chunk)
    return signing.dumps({"key": key, "name": name, "campaign": campaign_id, "kind": kind, "user": user_id}, salt=SALT)


def load_staged(token: str, *, campaign_id: int, kind: str, user_id: int) -> StagedFile:
    """Return the staged upload the token names, if it was staged by this user for this campaign and kind."""
    try:
        payload = signing.loads(token, salt=SALT, max_age=MAX_AGE_SECONDS)
    except signing.BadSignature as exc:
        raise DomainError("this upload has expired or is invalid: upload the file again") from exc
    if (payload["campaign"], payload["kind"], payload["user"]) != (campaign_id, kind, user_id):
        raise DomainError("this upload belongs to another import: upload the file again")
    path = staging_dir() / payload["key"]
    if not path.exists():
        raise DomainError("this upload was already imported or has expired: upload the file again")
    return StagedFile(payload["name"], path, campaign_id, kind, user_id)


def discard_staged(token: str) -> None:
    """Delete the staged file of a token (after a successful import)."""
    payload = signing.loads(token, salt=SALT)
    (staging_dir() / payload["key"]).unlink(missing_ok=True)


def _remove_stale_files() -> None:
    cutoff = time.time() - MAX_AGE_SECONDS
    for path in staging_dir().iterdir():
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink(missing_ok=True)
        except FileNotFoundError:  # another request removed it meanwhile
            continue
