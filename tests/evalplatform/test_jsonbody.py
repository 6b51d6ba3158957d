"""JSON bodies with bounded depth: the depth is counted exactly, brackets inside strings do not count."""

from __future__ import annotations

import json

import pytest

from evalplatform.jsonbody import BodyTooDeep, loads, nested_deeper_than


def _alternating(depth: int) -> bytes:
    opening = "".join('{"k": ' if level % 2 else "[" for level in range(depth))
    closing = "".join("}" if level % 2 else "]" for level in reversed(range(depth)))
    return (opening + "1" + closing).encode()


@pytest.mark.parametrize("depth", [1, 2, 31, 32])
def test_a_body_nested_up_to_the_limit_parses(depth: int) -> None:
    raw = _alternating(depth)

    assert loads(raw, max_depth=32) == json.loads(raw)


@pytest.mark.parametrize("depth", [33, 34, 64, 5000])
def test_a_body_nested_past_the_limit_is_refused_before_parsing(depth: int) -> None:
    with pytest.raises(BodyTooDeep, match="nested deeper than 32 levels"):
        loads(_alternating(depth), max_depth=32)


def test_brackets_in_strings_and_wide_bodies_do_not_count_as_depth() -> None:
    raw = json.dumps({"text": '[[[{{{"\\"]]]' * 100, "list": [[1]] * 1000}).encode()

    assert not nested_deeper_than(raw, 3)
    assert nested_deeper_than(raw, 2)


def test_more_unclosed_brackets_than_the_limit_count_as_too_deep() -> None:
    assert nested_deeper_than(b"[" * 33, 32)
    assert not nested_deeper_than(b"[" * 32, 32)  # json refuses it, without recursing deeper than the limit
