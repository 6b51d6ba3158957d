"""Krippendorff's alpha against Krippendorff (2011) and the krippendorff package."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import krippendorff
import numpy as np
import pytest

from scoring import krippendorff_alpha, rating_table_from_matrix
from scoring.ratings import rating_codes

Level = Literal["nominal", "ordinal", "interval", "ratio"]

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "scoring" / "krippendorff_2011.json"


def example() -> tuple[np.ndarray, dict[str, float]]:
    """Return Krippendorff's observers x units example and the printed alphas."""
    case = json.loads(FIXTURE.read_text())
    data = np.array([[np.nan if v is None else v for v in row] for row in case["reliability_data"]], dtype=float)
    return data, case["expected"]


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval", "ratio"])
def test_alpha_reproduces_krippendorffs_2011_example(level: str) -> None:
    data, expected = example()
    triples = [(u, o, data[o, u]) for o in range(4) for u in range(12) if not np.isnan(data[o, u])]
    result = krippendorff_alpha(triples, level=level)  # type: ignore[arg-type]
    assert round(result.value, 3) == expected[level]
    assert (result.n_units, result.n_raters, result.n_ratings) == (12, 4, 41)


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval", "ratio"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_alpha_matches_the_krippendorff_package_on_random_data(level: Level, seed: int) -> None:
    rng = np.random.default_rng(seed)
    truth = rng.integers(1, 6, 60)
    data = np.where(rng.random((5, 60)) < 0.6, truth, rng.integers(1, 6, (5, 60))).astype(float)
    data[rng.random((5, 60)) < 0.3] = np.nan
    ours = krippendorff_alpha(rating_table_from_matrix(data.T), level=level).value
    theirs = krippendorff.alpha(reliability_data=data, level_of_measurement=level)
    assert ours == pytest.approx(theirs, abs=1e-12)


def test_default_level_is_nominal_not_the_packages_interval() -> None:
    data, expected = example()
    assert round(krippendorff_alpha(rating_table_from_matrix(data.T)).value, 3) == expected["nominal"]


def test_alpha_is_nan_without_pairable_values_or_variation() -> None:
    assert np.isnan(krippendorff_alpha([(1, "a", 1), (2, "b", 2)]).value)
    assert np.isnan(krippendorff_alpha([(1, "a", 3), (1, "b", 3), (2, "a", 3), (2, "b", 3)]).value)


def test_alpha_rejects_a_single_rater_and_non_numeric_interval_data() -> None:
    with pytest.raises(ValueError, match="found 1"):
        krippendorff_alpha([(1, "a", 1), (2, "a", 2)])
    with pytest.raises(ValueError, match="numeric"):
        krippendorff_alpha([(1, "a", "x"), (1, "b", "y")], level="interval")
    with pytest.raises(ValueError, match="level"):
        krippendorff_alpha([(1, "a", 1), (1, "b", 2)], level="cardinal")  # type: ignore[arg-type]


def test_alpha_bootstrap_is_seeded() -> None:
    data, _ = example()
    table = rating_table_from_matrix(data.T)
    first = krippendorff_alpha(table, level="interval", bootstrap=200, rng=np.random.default_rng(3))
    second = krippendorff_alpha(table, level="interval", bootstrap=200, rng=np.random.default_rng(3))
    assert first.ci == second.ci
    assert first.ci is not None
    assert first.ci[0] < first.value <= first.ci[1]


@pytest.mark.parametrize("level", ["nominal", "ordinal"])
def test_rating_codes_give_the_krippendorff_package_alpha_without_a_dense_table(
    level: Literal["nominal", "ordinal"],
) -> None:
    rng = np.random.default_rng(7)
    units, raters, values = rng.integers(0, 200, 900), rng.integers(0, 9, 900), rng.integers(0, 3, 900)
    _, first = np.unique(units * 10 + raters, return_index=True)
    units, raters, values = units[first], raters[first], values[first]
    codes = rating_codes(units, raters, values, raters=range(9), categories=(0, 1, 2))
    matrix = np.full((9, 200), np.nan)
    matrix[raters, units] = values
    expected = krippendorff.alpha(reliability_data=matrix, level_of_measurement=level)
    assert krippendorff_alpha(codes, level=level).value == pytest.approx(expected, abs=1e-12)
