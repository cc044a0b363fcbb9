"""Power and minimum detectable effect against statsmodels' TTestPower and hand-worked values."""

from __future__ import annotations

import math

import pytest

from normbench import stats

statsmodels_power = pytest.importorskip("statsmodels.stats.power")


@pytest.mark.parametrize("n", [2, 3, 5, 10, 30])
def test_minimum_detectable_dz_equals_statsmodels(n):
    expected = statsmodels_power.TTestPower().solve_power(effect_size=None, nobs=n, alpha=0.05, power=0.8)
    assert stats.minimum_detectable_dz(n) == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize(("dz", "n"), [(0.5, 10), (1.0, 5), (2.0, 3), (0.2, 100)])
def test_power_equals_statsmodels(dz, n):
    analysis = statsmodels_power.TTestPower()
    assert stats.paired_t_power(dz, n) == pytest.approx(analysis.power(dz, n, 0.05), rel=1e-6)
    assert stats.paired_t_power(dz, n, alternative="greater") == pytest.approx(
        analysis.power(dz, n, 0.05, alternative="larger"), rel=1e-6)


def test_seeds_needed_is_the_smallest_sufficient_n():
    n = stats.seeds_needed(0.5)
    # Cohen's tables: d = 0.5, two-sided 0.05, power 0.8 -> 34 pairs for the paired t-test
    assert n == 34
    assert stats.paired_t_power(0.5, n) >= 0.8 > stats.paired_t_power(0.5, n - 1)
    assert stats.seeds_needed(0.0) is None and stats.seeds_needed(float("nan")) is None


# --- smallest detectable effect and seeds for the margin ------------------------------------

def test_smallest_detectable_effect_t_equals_statsmodels_at_the_corrected_alpha():
    alpha = stats.per_comparison_alpha(0.05, 12)
    expected = statsmodels_power.TTestPower().solve_power(effect_size=None, nobs=5, alpha=alpha, power=0.8)
    assert stats.smallest_detectable_effect(5, 2.0, alpha=alpha) == pytest.approx(2.0 * expected, rel=1e-4)
    one_sided = statsmodels_power.TTestPower().solve_power(effect_size=None, nobs=5, alpha=0.05, power=0.8,
                                                           alternative="larger")
    assert stats.smallest_detectable_effect(5, 1.0, alternative="less") == pytest.approx(one_sided, rel=1e-4)


def test_smallest_detectable_effect_permutation():
    assert math.isinf(stats.smallest_detectable_effect(5, 1.0, test="permutation"))  # min p 0.0625
    # n = 6 two-sided: attainable level 2/64 = 0.03125, so the t figure at that level
    assert stats.smallest_detectable_effect(6, 1.0, test="permutation") == pytest.approx(
        stats.minimum_detectable_dz(6, alpha=1 / 32))
    assert math.isnan(stats.smallest_detectable_effect(1, 1.0))
    assert stats.smallest_detectable_effect(4, 0.0) == 0.0


def test_seeds_for_margin():
    # margin 1, sd 2 -> d_z 0.5 -> 34 seeds for the two-sided t-test (Cohen)
    assert stats.seeds_for_margin(1.0, 2.0) == 34
    n = stats.seeds_for_margin(1.0, 2.0, test="permutation")
    assert n >= 34 and stats.smallest_detectable_effect(n, 2.0, test="permutation") <= 1.0
    assert stats.smallest_detectable_effect(n - 1, 2.0, test="permutation") > 1.0
    assert stats.seeds_for_margin(1.0, 0.0, test="permutation") == 6  # first n whose min p <= 0.05
    assert stats.seeds_for_margin(1.0, math.nan) is None
    assert stats.seeds_for_margin(0.01, 50.0, max_seeds=100) is None
