"""Intervals of the mean: Student-t against scipy, the small-n cases, BCa kept as an option."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from normbench import stats


def test_t_interval_equals_scipy():
    x = np.array([91.1, 93.4, 90.2, 95.0, 92.7])
    result = stats.mean_interval(x)
    low, high = sps.t.interval(0.95, x.size - 1, loc=x.mean(), scale=sps.sem(x))
    assert (result.ci_low, result.ci_high) == pytest.approx((low, high), rel=1e-14)
    assert (result.ci_method, result.n, result.mean) == ("t", 5, pytest.approx(x.mean()))
    ninety = stats.mean_interval(x, confidence=0.90)
    assert ninety.ci_high - ninety.ci_low < result.ci_high - result.ci_low


def test_t_interval_by_hand_at_three_seeds():
    # mean 2, sd 1, t_{0.975, 2} = 4.3027 (printed tables) -> 2 -/+ 4.3027 / sqrt(3)
    result = stats.mean_interval([1.0, 2.0, 3.0])
    half = 4.3027 / math.sqrt(3)
    assert (result.ci_low, result.ci_high) == pytest.approx((2 - half, 2 + half), abs=1e-4)


def test_one_value_has_no_interval_and_equal_values_a_point():
    one = stats.mean_interval([90.0])
    assert one.ci_method == "none" and one.mean == 90.0 and math.isnan(one.ci_low) and math.isnan(one.ci_high)
    same = stats.mean_interval([97.5, 97.5, 97.5])
    assert (same.ci_low, same.ci_high, same.ci_method) == (97.5, 97.5, "degenerate")
    empty = stats.mean_interval([])
    assert empty.n == 0 and math.isnan(empty.mean) and empty.ci_method == "none"


def test_bca_is_an_option_equal_to_the_bootstrap_helper():
    x = [80.0, 85.5, 83.1, 90.2]
    result = stats.mean_interval(x, method="bca", rng=np.random.default_rng(3))
    low, high, method = stats.bootstrap_mean_ci(x, np.random.default_rng(3))
    assert (result.ci_low, result.ci_high, result.ci_method) == (low, high, method) and method == "BCa"
    with pytest.raises(ValueError, match="rng"):
        stats.mean_interval(x, method="bca")
    with pytest.raises(ValueError, match="method"):
        stats.mean_interval(x, method="wald")


def test_summarize_with_t_interval():
    x = np.array([91.1, 93.4, 90.2, 95.0])
    summary = stats.summarize(x, np.random.default_rng(0), interval="t")
    expected = stats.mean_interval(x)
    assert (summary.ci_low, summary.ci_high, summary.ci_method) == (expected.ci_low, expected.ci_high, "t")
    assert stats.summarize(x, np.random.default_rng(0)).ci_method == "BCa"  # default unchanged for now


def test_t_interval_rows_match_scalar_and_need_two_values():
    rng = np.random.default_rng(1)
    rows = rng.normal(size=(4, 6))
    low, high = stats.t_interval_rows(rows)
    for row, lo, hi in zip(rows, low, high):
        expected = stats.mean_interval(row)
        assert (lo, hi) == pytest.approx((expected.ci_low, expected.ci_high), rel=1e-14)
    with pytest.raises(ValueError, match="at least 2"):
        stats.t_interval_rows([[1.0]])
