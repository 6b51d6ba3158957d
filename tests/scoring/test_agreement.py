"""Agreement coefficients against published worked examples and hand computations."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from scoring import (
    bootstrap_ci,
    brennan_prediger,
    cohen_kappa,
    conger_kappa,
    fleiss_kappa,
    gwet_ac1,
    percent_agreement,
    rating_table_from_matrix,
    scott_pi,
)
from scoring.ratings import rating_codes
from tests.scoring.test_ratings import random_votes

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "scoring"


def load(name: str) -> Any:
    """Return a known-answer fixture."""
    return json.loads((FIXTURES / name).read_text())


def table_to_ratings(counts: list[list[int]], categories: list[str] | None = None) -> list[tuple[int, str, Any]]:
    """Expand a two-rater contingency table into (unit, rater, value) triples."""
    out: list[tuple[int, str, Any]] = []
    unit = 0
    for i, row in enumerate(counts):
        for j, n in enumerate(row):
            for _ in range(n):
                a, b = (categories[i], categories[j]) if categories else (i, j)
                out += [(unit, "first", a), (unit, "second", b)]
                unit += 1
    return out


def distribution_to_ratings(counts: list[list[int]]) -> list[tuple[int, int, int]]:
    """Expand subjects x categories rater counts into triples (raters numbered within each subject)."""
    out = []
    for unit, row in enumerate(counts):
        rater = 0
        for category, n in enumerate(row):
            for _ in range(n):
                out.append((unit, rater, category))
                rater += 1
    return out


def gwet_matrix() -> np.ndarray:
    """Return Gwet's raw4raters example as a subjects x raters float matrix."""
    data = load("gwet_2014_raw4raters.json")["ratings"]
    return np.array([[np.nan if v is None else v for v in row] for row in data], dtype=float)


@pytest.mark.parametrize(
    ("metric", "function"),
    [
        ("gwet_ac1", gwet_ac1),
        ("fleiss_kappa", fleiss_kappa),
        ("conger_kappa", conger_kappa),
        ("brennan_prediger", brennan_prediger),
        ("percent_agreement", percent_agreement),
    ],
)
def test_multi_rater_coefficients_reproduce_gwets_handbook_example(metric: str, function: Any) -> None:
    expected = load("gwet_2014_raw4raters.json")["expected"][metric]
    result = function(rating_table_from_matrix(gwet_matrix()))
    assert round(result.value, 3) == expected["value"]
    if "observed" in expected:
        assert round(result.observed, 3) == expected["observed"]
        assert round(result.expected, 3) == expected["expected"]
    assert (result.n_units, result.n_raters, result.n_ratings) == (12, 4, 41)


@pytest.mark.parametrize("name", ["cont3x3abstractors", "cont4x4diagnosis"])
def test_two_rater_coefficients_reproduce_gwets_contingency_tables(name: str) -> None:
    case = load("gwet_2014_two_rater_tables.json")["tables"][name]
    ratings = table_to_ratings(case["counts"], case["categories"])
    categories = case["categories"]
    expected = case["expected"]

    def check(value: float, printed: float) -> None:
        digits = len(str(printed).split(".")[1])
        assert round(value, digits) == printed

    check(cohen_kappa(ratings, categories=categories).value, expected["cohen_kappa"])
    check(cohen_kappa(ratings, weights="linear", categories=categories).value, expected["cohen_kappa_linear"])
    check(
        cohen_kappa(ratings, weights="quadratic", categories=categories).value,
        expected["cohen_kappa_quadratic"],
    )
    check(gwet_ac1(ratings).value, expected["gwet_ac1"])
    if "scott_pi" in expected:
        check(scott_pi(ratings).value, expected["scott_pi"])


def test_cohen_kappa_reproduces_the_textbook_example() -> None:
    case = load("textbook_kappa.json")["cohen"]
    result = cohen_kappa(table_to_ratings(case["counts"], case["categories"]))
    assert result.value == pytest.approx(case["expected"]["value"])
    assert result.observed == pytest.approx(case["expected"]["observed"])
    assert result.expected == pytest.approx(case["expected"]["expected"])


def test_fleiss_kappa_reproduces_the_wikipedia_worked_example() -> None:
    case = load("textbook_kappa.json")["fleiss"]
    result = fleiss_kappa(distribution_to_ratings(case["counts"]))
    for key in ("value", "observed", "expected"):
        assert round(getattr(result, key), 3) == case["expected"][key]


def test_cohen_kappa_equals_a_hand_computation_on_random_data() -> None:
    rng = np.random.default_rng(0)
    a = rng.integers(0, 4, 300)
    b = np.where(rng.random(300) < 0.6, a, rng.integers(0, 4, 300))
    joint = np.zeros((4, 4))
    np.add.at(joint, (a, b), 1)
    joint /= joint.sum()
    idx = np.arange(4)
    for weights, w in [(None, np.eye(4)), ("quadratic", 1 - (idx[:, None] - idx[None, :]) ** 2 / 9)]:
        pa = (joint * w).sum()
        pe = (np.outer(joint.sum(1), joint.sum(0)) * w).sum()
        ratings = [(u, "x", int(a[u])) for u in range(300)] + [(u, "y", int(b[u])) for u in range(300)]
        assert cohen_kappa(ratings, weights=weights).value == pytest.approx((pa - pe) / (1 - pe))  # type: ignore[arg-type]


def test_conger_equals_cohen_and_fleiss_equals_scott_for_two_complete_raters() -> None:
    case = load("gwet_2014_two_rater_tables.json")["tables"]["cont4x4diagnosis"]
    ratings = table_to_ratings(case["counts"])
    assert conger_kappa(ratings).value == pytest.approx(cohen_kappa(ratings).value)
    assert fleiss_kappa(ratings).value == pytest.approx(scott_pi(ratings).value)


def test_unused_categories_change_ac1_and_brennan_prediger() -> None:
    ratings = [(u, r, "yes" if (u + r) % 5 else "no") for u in range(20) for r in range(3)]
    plain = brennan_prediger(ratings)
    wider = brennan_prediger(ratings, categories=["yes", "no", "maybe"])
    assert plain.expected == pytest.approx(1 / 2)
    assert wider.expected == pytest.approx(1 / 3)
    assert gwet_ac1(ratings, categories=["yes", "no", "maybe"]).value != gwet_ac1(ratings).value
    with pytest.raises(ValueError, match="'no'"):
        gwet_ac1(ratings, categories=["yes"])


def test_percent_agreement_is_the_mean_over_units_of_pairwise_agreement() -> None:
    ratings = [(1, "a", "x"), (1, "b", "x"), (1, "c", "y"), (2, "a", "x"), (2, "b", "x"), (3, "a", "z")]
    # Unit 1: 1 of 3 pairs agree; unit 2: 1 of 1; unit 3 has one rating and is left out.
    assert percent_agreement(ratings).value == pytest.approx((1 / 3 + 1) / 2)


def test_no_unit_with_two_ratings_gives_nan() -> None:
    ratings = [(1, "a", "x"), (2, "b", "y"), (3, "c", "x")]
    for function in (fleiss_kappa, gwet_ac1, brennan_prediger, percent_agreement, conger_kappa):
        assert np.isnan(function(ratings).value)
    assert np.isnan(cohen_kappa([(1, "a", "x"), (2, "b", "y")]).value)


def test_a_single_rater_is_a_clear_value_error() -> None:
    ratings = [(1, "only", "x"), (2, "only", "y")]
    for function in (fleiss_kappa, gwet_ac1, brennan_prediger, percent_agreement, conger_kappa, cohen_kappa):
        with pytest.raises(ValueError, match="at least 2 raters; found 1"):
            function(ratings)


def test_cohen_kappa_needs_exactly_two_raters() -> None:
    with pytest.raises(ValueError, match="exactly two raters"):
        cohen_kappa([(1, "a", 1), (1, "b", 1), (1, "c", 2)])


def test_duplicate_rating_by_the_same_rater_is_rejected() -> None:
    with pytest.raises(ValueError, match="more than once"):
        fleiss_kappa([(1, "a", 1), (1, "a", 2), (1, "b", 2)])


def test_bootstrap_intervals_are_seeded_and_contain_the_estimate() -> None:
    table = rating_table_from_matrix(gwet_matrix())
    first = gwet_ac1(table, bootstrap=300, rng=np.random.default_rng(1))
    second = gwet_ac1(table, bootstrap=300, rng=np.random.default_rng(1))
    assert first.ci == second.ci
    assert first.ci is not None
    assert first.ci[0] <= first.value <= first.ci[1]
    assert bootstrap_ci(gwet_ac1, table, n=300, rng=np.random.default_rng(1)) == first.ci


def test_bootstrap_ci_resamples_any_callable_by_units() -> None:
    table = rating_table_from_matrix(gwet_matrix())

    def share_of_ones(ratings: Any) -> float:
        codes = ratings.codes
        return float((codes == 0).sum() / (codes >= 0).sum())

    low, high = bootstrap_ci(share_of_ones, table, n=200, rng=np.random.default_rng(0))
    assert low <= share_of_ones(table) <= high


def test_cohen_kappa_can_pick_two_raters_out_of_more() -> None:
    ratings = [(u, r, (u + (r == "c")) % 3) for u in range(10) for r in ("a", "b", "c")]
    assert cohen_kappa(ratings, raters=("a", "b")).value == pytest.approx(1.0)
    assert cohen_kappa(ratings, raters=("a", "c")).value < 0.5
    with pytest.raises(ValueError, match="'z'"):
        cohen_kappa(ratings, raters=("a", "z"))


@pytest.mark.parametrize("seed", range(4))
def test_rating_codes_give_the_same_coefficients_and_intervals_as_their_triples(seed: int) -> None:
    triples, codes = random_votes(seed, one_per_rater=True)
    for metric in (percent_agreement, fleiss_kappa, gwet_ac1, brennan_prediger, conger_kappa):
        expected = metric(triples, bootstrap=30, rng=np.random.default_rng(seed))
        assert str(metric(codes, bootstrap=30, rng=np.random.default_rng(seed))) == str(expected)


def test_rating_codes_with_a_repeat_are_refused_by_one_rating_per_rater_coefficients() -> None:
    codes = rating_codes(np.array([1, 1]), np.array([0, 0]), np.array([0, 1]), raters="ab", categories="xy")
    with pytest.raises(ValueError, match="rater 'a' rated unit 1 more than once"):
        fleiss_kappa(codes)
