"""Duplicate and near-duplicate prompts: normalisation, MinHash + LSH candidates against all-pairs Jaccard."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from scoring.near_duplicates import THRESHOLD, find_duplicates, jaccard, normalise, shingles

WORDS = [
    *[
        "the",
        "model",
        "answer",
        "prompt",
        "explain",
        "why",
        "how",
        "what",
        "when",
        "write",
        "code",
        "python",
        "list",
        "table",
        "summary",
        "story",
        "poem",
    ],
    *[
        "translate",
        "french",
        "german",
        "short",
        "long",
        "detailed",
        "simple",
        "example",
        "function",
        "error",
        "fix",
        "bug",
        "test",
        "data",
        "chart",
    ],
]


def test_normalise_folds_case_punctuation_and_whitespace() -> None:
    assert normalise("  Hello,\tWORLD!!  ") == "hello world"
    assert normalise("Straße — «quoted»") == "strasse quoted"
    assert normalise("ﬁle①") == "file1"  # NFKC
    assert normalise("!!!") == ""


def test_shingles_of_a_short_text_are_the_text() -> None:
    assert shingles("hi") == {"hi"}
    assert shingles("abcdef") == {"abcde", "bcdef"}


def test_exact_duplicates_after_normalisation_form_one_group() -> None:
    texts = ["Hello, world!", "unrelated prompt about cooking pasta", "hello   WORLD", "HELLO WORLD?"]
    groups = find_duplicates(texts, near=False)
    assert [(group.kind, group.members) for group in groups] == [("exact", (0, 2, 3))]


@pytest.mark.parametrize("near", [False, True])
def test_empty_prompts_are_nobody_s_duplicates(near: bool) -> None:
    # An Arena log imported without its conversations leaves every prompt empty: 2,076 of 3,000 were one "exact" group.
    texts = ["", "  ", "?!", "hello world", "", "Hello, world."]
    groups = find_duplicates(texts, near=near)
    assert [(group.kind, group.members) for group in groups] == [("exact", (3, 5))]


def _random_text(rng: np.random.Generator, words: int) -> str:
    return " ".join(rng.choice(WORDS, words))


def _edited(rng: np.random.Generator, text: str, edits: int) -> str:
    words = text.split()
    for _ in range(edits):
        words[int(rng.integers(len(words)))] = str(rng.choice(WORDS))
    return " ".join(words)


def test_near_duplicates_match_an_all_pairs_jaccard_search() -> None:
    rng = np.random.default_rng(4)
    texts = [_random_text(rng, 40) for _ in range(150)]
    texts += [_edited(rng, texts[k], int(rng.integers(1, 6))) for k in range(0, 150, 3)]
    normalised = [normalise(text) for text in texts]
    truth = {
        (i, j)
        for i, j in itertools.combinations(range(len(texts)), 2)
        if jaccard(normalised[i], normalised[j]) >= THRESHOLD
    }
    assert len(truth) > 20  # some planted edits stay above the threshold, some fall below
    groups = find_duplicates(texts)
    found = {pair for group in groups for pair in itertools.combinations(group.members, 2)}
    # Every truly similar pair is in one group (LSH recall) ...
    assert truth <= found
    # ... and every group is held together by pairs above the threshold (no false links).
    for group in groups:
        assert group.kind == "near"
        linked = {(i, j) for i, j in truth if i in group.members}
        assert len({k for pair in linked for k in pair}) == len(group.members)


def test_pairs_below_the_threshold_stay_apart() -> None:
    base = "write a python function that returns the longest common prefix of a list of strings"
    other = "write a python function that returns the shortest path between two nodes of a graph"
    assert jaccard(normalise(base), normalise(other)) < THRESHOLD
    assert find_duplicates([base, other]) == []
    close = base.replace("longest", "largest")
    assert find_duplicates([base, other, close])[0].members == (0, 2)


def test_a_chain_of_near_duplicates_is_one_group_and_the_groups_are_reproducible() -> None:
    rng = np.random.default_rng(9)
    first = _random_text(rng, 60)
    second = _edited(rng, first, 2)
    third = _edited(rng, second, 2)
    texts = [first, _random_text(rng, 60), second, third, third.upper()]
    groups = find_duplicates(texts)
    assert [group.members for group in groups] == [(0, 2, 3, 4)]
    assert find_duplicates(texts, seed=1) == groups


def test_find_duplicates_rejects_a_threshold_outside_0_1() -> None:
    with pytest.raises(ValueError, match="threshold"):
        find_duplicates(["a", "b"], threshold=0.3)  # the bands are built for 0.5 and above
    assert find_duplicates([]) == []
