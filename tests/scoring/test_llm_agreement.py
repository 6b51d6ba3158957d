"""MT-Bench and AlpacaEval agreement on hand examples and on the published real data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from scoring import loo_mode_agreement, mtbench_agreement
from scoring.ratings import rating_codes
from tests.scoring.test_ratings import random_votes

REPO_ROOT = Path(__file__).resolve().parents[2]
DATA = REPO_ROOT / ".." / "shared" / "data"
PUBLISHED = json.loads((REPO_ROOT / "fixtures" / "scoring" / "llm_agreement_published.json").read_text())


def needs(name: str) -> Path:
    """Return the shared data file or skip the test when it is absent."""
    path = DATA / name
    if not path.exists():
        pytest.skip(f"shared data {name} not found at {DATA.resolve()} (expected <repo>/../shared/data)")
    return path


def mtbench_ratings() -> list[tuple[Any, str, str]]:
    """Return expert MT-Bench votes as (question, unordered pair) units valued by the winning model or tie."""
    out = []
    for line in needs(PUBLISHED["mtbench"]["file"]).read_text().splitlines():
        vote = json.loads(line)
        if vote["judge"].startswith("author"):
            continue
        a, b, winner = vote["model_a"], vote["model_b"], vote["winner"]
        value = a if winner == "model_a" else b if winner == "model_b" else "tie"
        out.append(((vote["question_id"], *sorted((a, b))), vote["judge"], value))
    return out


def test_mtbench_agreement_reproduces_the_papers_expert_figures() -> None:
    expected = PUBLISHED["mtbench"]["expected"]
    result = mtbench_agreement(mtbench_ratings())
    assert (result.agree, result.pairs) == (expected["agree"], expected["pairs"])
    assert (result.agree_without_ties, result.pairs_without_ties) == (
        expected["agree_without_ties"],
        expected["pairs_without_ties"],
    )
    assert round(100 * result.value) == expected["percent"]
    assert round(100 * result.value_without_ties) == expected["percent_without_ties"]


def test_loo_mode_agreement_reproduces_alpacaevals_human_agreement() -> None:
    expected = PUBLISHED["alpacaeval"]["expected"]
    records = json.loads(needs(PUBLISHED["alpacaeval"]["file"]).read_text())
    ratings = [
        ((r["instruction"], r["output_1"], r["output_2"]), r["annotator_index"], r["preference"]) for r in records
    ]
    result = loo_mode_agreement(ratings, max_per_unit=4)
    assert result.compared == expected["compared"]
    assert round(100 * result.value, 2) == expected["percent"]


def test_mtbench_pairs_skip_votes_by_the_same_rater_and_merge_tie_labels() -> None:
    ratings = [
        ("q1", "r1", "gpt"),
        ("q1", "r1", "gpt"),
        ("q1", "r2", "gpt"),
        ("q1", "r3", "tie"),
        ("q2", "r1", "tie (bothbad)"),
        ("q2", "r2", "tie"),
    ]
    result = mtbench_agreement(ratings)
    # q1: 6 pairs minus the r1-r1 pair = 5, of which r1-r2 twice agree; q2: one tie-tie pair agrees.
    assert (result.agree, result.pairs) == (3, 6)
    assert (result.agree_without_ties, result.pairs_without_ties) == (2, 2)


def test_loo_mode_agreement_scores_tied_modes_fractionally_and_limits_ratings() -> None:
    ratings = [("u", "a", 1), ("u", "b", 2), ("u", "c", 1), ("u", "d", 2), ("u", "e", 2)]
    # With 4 ratings (1, 2, 1, 2) each rating's others are split 1:2 or 2:1 -> the rating is not the mode.
    assert loo_mode_agreement(ratings, max_per_unit=4).value == pytest.approx(0.0)
    # Two ratings that differ: the other's single vote is the mode.
    assert loo_mode_agreement([("u", "a", 1), ("u", "b", 2)]).value == 0.0
    tied = [("u", "a", 1), ("u", "b", 2), ("u", "c", 3)]
    assert loo_mode_agreement(tied).value == 0.0
    tied_hit = [("u", "a", 1), ("u", "b", 1), ("u", "c", 2)]
    # a vs {1, 2}: modes 1 and 2 -> 1/2; b likewise 1/2; c vs {1, 1} -> 0.
    assert loo_mode_agreement(tied_hit).agree == pytest.approx(1.0)


def test_agreement_requires_two_raters_and_bootstraps_over_units() -> None:
    with pytest.raises(ValueError, match="at least 2 raters"):
        mtbench_agreement([("q", "r", "a"), ("q", "r", "b")])
    result = mtbench_agreement(mtbench_ratings(), bootstrap=200, rng=np.random.default_rng(0))
    assert result.ci is not None
    assert result.ci[0] < result.value < result.ci[1]
    assert result.ci_without_ties is not None


@pytest.mark.parametrize("seed", range(6))
def test_rating_codes_give_the_same_mtbench_and_leave_one_out_agreement_as_their_triples(seed: int) -> None:
    triples, codes = random_votes(seed)  # raters vote on a unit more than once, as the MT-Bench authors did
    for metric, options in (
        (mtbench_agreement, {"ties": ("tie", "both_bad")}),
        (loo_mode_agreement, {"max_per_unit": 4}),
    ):
        expected = metric(triples, bootstrap=30, rng=np.random.default_rng(seed), **options)
        got = metric(codes, bootstrap=30, rng=np.random.default_rng(seed), **options)
        assert str(got) == str(expected)  # str: nan equals nan


def test_rating_codes_of_one_rater_are_refused_as_triples_are() -> None:
    codes = rating_codes(np.array([1, 2]), np.array([0, 0]), np.array([0, 1]), raters=("r",), categories="ab")
    with pytest.raises(ValueError, match="at least 2 raters; found 1"):
        mtbench_agreement(codes)
