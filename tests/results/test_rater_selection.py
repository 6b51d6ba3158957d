"""Parsing a rater selection (results.raters.parse_raters): keywords, names, and their mix refused by name."""

from __future__ import annotations

import pytest

from evalplatform.exceptions import DomainError
from results.raters import parse_raters


def test_keywords_and_names() -> None:
    assert parse_raters("humans").kind == "human"
    assert parse_raters("all").kind is None
    assert parse_raters("alice, bob,alice").names == ("alice", "bob")


@pytest.mark.parametrize("text", ["humans,alice", "alice,judges", "all,alice"])
def test_a_keyword_mixed_with_names_is_refused_naming_it(text: str) -> None:
    keyword = next(part for part in text.split(",") if part in ("humans", "judges", "all"))
    with pytest.raises(DomainError, match=f"raters: {keyword} stands alone") as caught:
        parse_raters(text)
    assert caught.value.field == "raters"
