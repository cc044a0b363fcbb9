"""TOST equivalence against statsmodels' ttost_paired, by hand, and its permutation variant."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from normbench import stats

weightstats = pytest.importorskip("statsmodels.stats.weightstats")


@pytest.mark.parametrize("margin", [0.5, 1.0, 2.0])
def test_t_tost_equals_statsmodels(margin):
    rng = np.random.default_rng(0)
    a = rng.normal(90, 1.0, size=6)
    b = a - rng.normal(0.2, 0.4, size=6)
    result = stats.equivalence_test(a, b, margin=margin)
    p, lower, upper = weightstats.ttost_paired(a, b, -margin, margin)
    assert result.p_value == pytest.approx(p, rel=1e-12)
    assert (result.p_lower, result.p_upper) == pytest.approx((lower[1], upper[1]), rel=1e-12)


def test_tost_p_below_alpha_exactly_when_the_90_interval_lies_inside_the_margin():
    rng = np.random.default_rng(1)
    for _ in range(50):
        d = rng.normal(rng.uniform(-1, 1), rng.uniform(0.1, 1.5), size=5)
        result = stats.equivalence_test(d, np.zeros(5), margin=1.0)
        low, high = sps.t.interval(0.90, 4, loc=d.mean(), scale=sps.sem(d))
        assert (result.ci_low, result.ci_high) == pytest.approx((low, high))
        assert (result.p_value < 0.05) == (-1.0 < low and high < 1.0)


def test_constant_differences_inside_and_outside_the_margin():
    assert stats.equivalence_test([90.3, 91.3, 92.3], [90.0, 91.0, 92.0]).p_value == 0.0
    assert stats.equivalence_test([92.0, 93.0, 94.0], [90.0, 91.0, 92.0]).p_value == 1.0
    assert stats.equivalence_test([91.0, 92.0, 93.0], [90.0, 91.0, 92.0]).p_value == 1.0  # on the margin


def test_permutation_tost_by_hand():
    # d = (0.1, -0.2, 0.3), margin 1: d + 1 = (1.1, 0.8, 1.3) all positive -> "greater" p = 1/8;
    # d - 1 all negative -> "less" p = 1/8; TOST p = 1/8, the smallest possible at 3 seeds.
    result = stats.equivalence_test([0.1, -0.2, 0.3], [0.0, 0.0, 0.0], test="permutation")
    assert result.p_value == pytest.approx(1 / 8) and result.test == "sign-flip permutation"


def test_too_few_and_bad_margin():
    assert math.isnan(stats.equivalence_test([1.0], [1.0]).p_value)
    with pytest.raises(ValueError, match="margin"):
        stats.equivalence_test([1.0, 2.0], [1.0, 2.0], margin=0.0)
