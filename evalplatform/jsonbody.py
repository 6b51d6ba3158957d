"""JSON request bodies with bounded size and nesting depth.

Python's json module parses nested arrays and objects recursively: a body of a few kilobytes nested 5,000 deep
raises RecursionError, which DRF's JSONParser does not catch (a 500). Bodies here are refused before parsing when
they are larger than a limit or nested deeper than MAX_DEPTH, with a 400 naming the problem; the depth is found
with a few passes of C-speed byte operations, and only for bodies with more brackets than the limit.
"""

from __future__ import annotations

import json
import re
from typing import Any

from django.conf import settings
from rest_framework import exceptions, parsers

MAX_DEPTH = 32
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
# Each pass removes the innermost pairs of the bytes as they were before the pass: exactly one level.
_INNERMOST = re.compile(rb"\[\]|\{\}")


class BodyTooDeep(ValueError):
    """A JSON body nested deeper than allowed."""


def nested_deeper_than(raw: bytes, limit: int) -> bool:
    """Return whether the JSON text nests arrays and objects more than `limit` deep (or has more unclosed brackets).

    Brackets inside strings do not count. Costs one count for any body with at most `limit` brackets.
    """
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    skeleton = _STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    for _ in range(limit):
        if not skeleton:
            return False
        skeleton = _INNERMOST.sub(b"", skeleton)
    return bool(skeleton)


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")  # NaN and Infinity: DRF's strict parser refuses them too


def loads(raw: bytes, *, encoding: str = "utf-8", max_depth: int = MAX_DEPTH) -> Any:
    """Return the JSON value in `raw`; ValueError if it is not JSON (BodyTooDeep if nested too deep)."""
    if nested_deeper_than(raw, max_depth):
        raise BodyTooDeep(f"JSON nested deeper than {max_depth} levels.")
    return json.loads(raw.decode(encoding), parse_constant=_refuse_constant)


class BodyTooLarge(exceptions.APIException):
    status_code = 413
    default_detail = "Request body too large."
    default_code = "too_large"


class BoundedJSONParser(parsers.JSONParser):
    """DRF's JSONParser with a size limit (`max_bytes`) and a nesting limit (MAX_DEPTH), both answered 4xx."""

    max_bytes = 256 * 1024

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        raw = stream.read(self.max_bytes + 1) if stream is not None else b""
        if len(raw) > self.max_bytes:
            raise BodyTooLarge(f"Request body larger than {self.max_bytes} bytes.")
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            return loads(raw, encoding=encoding)
        except ValueError as error:  # as DRF's parser words it
            raise exceptions.ParseError(f"JSON parse error - {error}") from error
