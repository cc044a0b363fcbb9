"""The declared unpaired tests (Welch, Mann-Whitney, no pre-test), effect sizes and the ratio of medians,
against scipy and by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from normbench import stats

pytestmark = pytest.mark.usefixtures("no_warnings")  # every statistics call must be silent


def test_welch_equals_scipy_and_cohens_d_by_hand():
    a = np.array([90.1, 91.3, 89.8, 92.0, 90.7])
    b = np.array([88.0, 88.9, 87.5, 89.2, 88.4, 87.9])
    result = stats.unpaired_comparison(a, b, test="welch")
    assert result.test == "welch t-test"
    reference = sps.ttest_ind(a, b, equal_var=False)
    assert (result.statistic, result.p_value) == pytest.approx((reference.statistic, reference.pvalue), rel=1e-12)
    pooled = ((4 * a.var(ddof=1)) + (5 * b.var(ddof=1))) / 9
    assert result.effect_size == pytest.approx((a.mean() - b.mean()) / math.sqrt(pooled))
    assert (result.n_a, result.n_b) == (5, 6)


# Skewed data that a Shapiro-Wilk pre-test rejects (p = 0.00013): the declared test is used all the same.
SKEWED_A = np.array([1.0, 1.0, 1.0, 1.0, 50.0])
SKEWED_B = np.array([0.0, 0.5, 2.0, 0.2, 0.1])


def test_declared_mann_whitney_equals_scipy_and_cliffs_delta_by_hand():
    result = stats.unpaired_comparison(SKEWED_A, SKEWED_B, test="mann_whitney")
    assert result.test == "mann-whitney" and result.reason == ""
    reference = sps.mannwhitneyu(SKEWED_A, SKEWED_B, alternative="two-sided")
    assert (result.statistic, result.p_value) == pytest.approx((reference.statistic, reference.pvalue))
    # pairs a > b: each 1.0 beats 0, 0.5, 0.2, 0.1 (4 of 5) -> 16, 50 beats all 5 -> 21; a < b: 4 (vs 2.0)
    assert result.effect_size == pytest.approx((21 - 4) / 25)
    assert result.effect_size == pytest.approx(2 * reference.statistic / 25 - 1)


def test_no_pre_test_the_declared_test_is_the_test_used():
    assert sps.shapiro(SKEWED_A).pvalue < 0.05  # what a pre-test would have acted on
    result = stats.unpaired_comparison(SKEWED_A, SKEWED_B, test="welch")
    reference = sps.ttest_ind(SKEWED_A, SKEWED_B, equal_var=False)
    assert result.test == "welch t-test" and result.p_value == pytest.approx(reference.pvalue, rel=1e-12)
    with pytest.raises(TypeError):
        stats.unpaired_comparison(SKEWED_A, SKEWED_B)  # no default: the caller declares the test
    with pytest.raises(ValueError, match="test must be one of welch, mann_whitney, got 'auto'"):
        stats.unpaired_comparison(SKEWED_A, SKEWED_B, test="auto")


def test_welch_with_one_constant_group_is_exact_and_silent():
    # One configuration timed at exactly the same speed every run: its variance is 0, Welch's t uses
    # the other group's alone - t = (mean a - mean b) / sqrt(var b / n_b) on n_b - 1 degrees of freedom.
    a = np.full(5, 2.0)
    b = np.array([1.0, 1.2, 0.9, 1.1, 1.3])
    result = stats.unpaired_comparison(a, b, test="welch")
    t = (2.0 - b.mean()) / math.sqrt(b.var(ddof=1) / 5)
    assert result.statistic == pytest.approx(t, rel=1e-12)
    assert result.p_value == pytest.approx(2 * sps.t.sf(t, 4), rel=1e-9)


@pytest.mark.parametrize("test", stats.UNPAIRED_TESTS)
def test_unpaired_degenerate_cases(test):
    assert stats.unpaired_comparison([1.0], [1.0, 2.0], test=test).test == "none"
    same = stats.unpaired_comparison([3.0, 3.0], [3.0, 3.0, 3.0], test=test)
    assert (same.p_value, same.effect_size) == (1.0, 0.0)


def test_median_ratio_and_bootstrap_interval():
    new = np.array([95.0, 100.0, 105.0, 98.0])
    base = np.array([200.0, 190.0, 210.0, 205.0])
    ratio, low, high = stats.median_ratio(new, base, np.random.default_rng(0))
    assert ratio == pytest.approx(np.median(new) / np.median(base))
    reference = sps.bootstrap((new, base), lambda x, y, axis=-1: np.median(x, axis=axis) / np.median(y, axis=axis),
                              vectorized=True, method="percentile", rng=np.random.default_rng(0))
    assert (low, high) == pytest.approx((reference.confidence_interval.low, reference.confidence_interval.high))
    assert low <= ratio <= high
    assert stats.median_ratio([2.0, 2.0], [1.0, 1.0], np.random.default_rng(0)) == (2.0, 2.0, 2.0)
    assert math.isnan(stats.median_ratio([2.0], [1.0, 1.5], np.random.default_rng(0))[1])
    with pytest.raises(ValueError, match="positive"):
        stats.median_ratio([0.0, 1.0], [1.0, 1.0], np.random.default_rng(0))
