"""Divergence rates: Clopper-Pearson by hand, Fisher/Barnard against scipy and by hand, diverged_as."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from normbench import stats


def test_clopper_pearson_by_hand():
    # 0 of 5: upper end solves (1 - p)^5 = 0.025 -> p = 1 - 0.025^(1/5)
    zero = stats.divergence_rate(0, 5)
    assert (zero.rate, zero.ci_low) == (0.0, 0.0)
    assert zero.ci_high == pytest.approx(1 - 0.025 ** (1 / 5), rel=1e-9)
    # 5 of 5 mirrors it; 2 of 5 equals the beta-quantile form
    full = stats.divergence_rate(5, 5)
    assert (full.ci_low, full.ci_high) == pytest.approx((0.025 ** (1 / 5), 1.0), rel=1e-9)
    two = stats.divergence_rate(2, 5)
    assert (two.ci_low, two.ci_high) == pytest.approx((sps.beta.ppf(0.025, 2, 4), sps.beta.ppf(0.975, 3, 3)), rel=1e-9)
    assert two.ci_method == "clopper-pearson"
    assert math.isnan(stats.divergence_rate(0, 0).rate)
    with pytest.raises(ValueError, match="diverged <= total"):
        stats.divergence_rate(3, 2)


def test_fisher_by_hand():
    # a: 3 of 3 diverged, b: 0 of 3. Hypergeometric with 3 divergences among 6 runs, 3 in a:
    # P(all 3 in a) = 1 / C(6, 3) = 1/20 one-sided; two-sided doubles the symmetric tail: 2/20.
    greater = stats.compare_divergence(3, 3, 0, 3, alternative="greater")
    assert greater.p_value == pytest.approx(1 / 20) and greater.rate_difference == 1.0
    assert stats.compare_divergence(3, 3, 0, 3).p_value == pytest.approx(2 / 20)


def test_barnard_equals_scipy_and_is_not_less_powerful_here():
    fisher = stats.compare_divergence(4, 5, 0, 5, test="fisher")
    barnard = stats.compare_divergence(4, 5, 0, 5, test="barnard")
    assert barnard.p_value == pytest.approx(sps.barnard_exact([[4, 0], [1, 5]]).pvalue)
    assert fisher.p_value == pytest.approx(sps.fisher_exact([[4, 0], [1, 5]]).pvalue)
    assert barnard.p_value < fisher.p_value


def test_no_variation_and_empty_cells():
    assert stats.compare_divergence(0, 5, 0, 5).p_value == 1.0
    assert stats.compare_divergence(5, 5, 3, 3, test="barnard").p_value == 1.0
    assert math.isnan(stats.compare_divergence(0, 0, 1, 5).p_value)


def test_diverged_as():
    values = np.array([90.0, 0.0, 91.0])
    diverged = np.array([False, True, False])
    assert np.isnan(stats.accuracy_values(values, diverged)).tolist() == [False, True, False]
    assert stats.accuracy_values(values, diverged, "zero").tolist() == [90.0, 0.0, 91.0]
    assert np.isnan(stats.accuracy_values(values, diverged, "worst_rank")[1])
    assert stats.rank_values(values, diverged, "worst_rank")[1] == -np.inf
    with pytest.raises(ValueError, match="diverged_as"):
        stats.accuracy_values(values, diverged, "drop")
