"""Unit bootstrap over distinct feature rows."""

from __future__ import annotations

import numpy as np
import pytest

from scoring.bootstrap import chance_corrected, percentile_interval, resampled_sums, unique_rows, unit_bootstrap


def test_unique_rows_counts_duplicates_for_small_and_wide_integer_rows() -> None:
    rows, counts = unique_rows(np.array([[1, 2], [1, 2], [3, 4]]))
    assert rows.tolist() == [[1, 2], [3, 4]]
    assert counts.tolist() == [2, 1]
    wide = np.array([[2**40, 1], [2**40, 1], [0, 2**40]])
    rows, counts = unique_rows(wide)
    assert sorted(counts.tolist()) == [1, 2]


def test_resampled_sums_draw_as_many_units_as_there_are() -> None:
    features = np.array([[1.0, 0.0], [0.0, 1.0]])
    sums = resampled_sums(features, np.array([3, 7]), 50, np.random.default_rng(0))
    assert np.allclose(sums.sum(axis=1), 10)


def test_unit_bootstrap_returns_the_point_value_and_an_interval() -> None:
    features = np.array([[1.0, 1.0], [0.0, 1.0]])
    value, ci = unit_bootstrap(features, np.array([30, 70]), lambda s: s[:, 0] / s[:, 1], 500, np.random.default_rng(0))
    assert value == pytest.approx(0.3)
    assert ci is not None
    assert ci[0] < 0.3 < ci[1]
    assert unit_bootstrap(features, np.array([1, 1]), lambda s: s[:, 0], 0, None)[1] is None


def test_percentile_interval_ignores_nan_and_chance_correction_handles_pe_one() -> None:
    assert percentile_interval(np.array([np.nan, 1.0, 1.0])) == (1.0, 1.0)
    assert all(np.isnan(percentile_interval(np.array([np.nan]))))
    assert np.isnan(chance_corrected(np.array([1.0]), np.array([1.0]))[0])
