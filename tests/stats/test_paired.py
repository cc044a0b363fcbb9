"""Paired comparisons by seed: the declared tests (t against scipy and R on Student's sleep data, the
sign-flip test against hand enumeration and scipy.stats.permutation_test), attainable p-values,
direction from the mean, snapped differences, d_z and the share of seeds better by hand."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats as sps

from normbench import stats

pytestmark = pytest.mark.usefixtures("no_warnings")  # every statistics call must be silent


# Student's (1908) sleep data (R's `sleep`): extra hours of sleep under two drugs, same 10 patients.
# R: t.test(extra ~ group, data = sleep, paired = TRUE) -> t = -4.0621, df = 9, p-value = 0.002833.
SLEEP_1 = np.array([0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0])
SLEEP_2 = np.array([1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4])


def test_paired_t_on_students_sleep_data():
    result = stats.paired_test(SLEEP_1, SLEEP_2)
    assert result.test == "paired t-test"
    assert result.statistic == pytest.approx(-4.0621, abs=5e-5)  # R's printed value
    assert result.p_value == pytest.approx(0.002833, abs=5e-7)
    # d_z by hand: mean(d) = -1.58, sd(d) = 1.229995 -> -1.28456
    assert result.mean_difference == pytest.approx(-1.58)
    assert result.effect_size == pytest.approx(-1.58 / 1.2299955, rel=1e-6)
    assert result.n == 10 and result.direction == -1
    # a > b in 0 of 10 pairs, one tie (patient 5) counts half
    assert stats.share_of_seeds_better(stats.snapped_differences(SLEEP_1, SLEEP_2)) == pytest.approx(0.05)


def test_t_equals_scipy_ttest_rel_all_alternatives():
    rng = np.random.default_rng(0)
    a, b = rng.normal(90, 2, size=7), rng.normal(89, 2, size=7)
    for alternative in ("two-sided", "greater", "less"):
        result = stats.paired_test(a, b, alternative=alternative)
        reference = sps.ttest_rel(a, b, alternative=alternative)
        assert (result.statistic, result.p_value) == pytest.approx((reference.statistic, reference.pvalue), rel=1e-12)
    d = a - b
    assert result.effect_size == pytest.approx(d.mean() / d.std(ddof=1))
    assert result.sd_difference == pytest.approx(d.std(ddof=1)) and result.n == 7
    assert result.direction == int(np.sign(d.mean())) and result.test == "paired t-test"


def test_sign_flip_by_hand_enumeration():
    # d = (1, 2, 3.5): the 8 sign patterns give sums +-1 +-2 +-3.5; observed 6.5. |sum| >= 6.5 only
    # for (+,+,+) and (-,-,-) -> p = 2/8. One-sided greater: only (+,+,+) -> 1/8.
    d = np.array([1.0, 2.0, 3.5])
    sums = [sum(s * x for s, x in zip(signs, d)) for signs in itertools.product((1, -1), repeat=3)]
    assert sum(abs(s) >= 6.5 for s in sums) == 2
    result = stats.paired_test(d, np.zeros(3), test="permutation")
    assert result.p_value == pytest.approx(0.25) == result.min_p
    assert stats.paired_test(d, np.zeros(3), test="permutation", alternative="greater").p_value == pytest.approx(1 / 8)
    assert stats.paired_test(d, np.zeros(3), test="permutation", alternative="less").p_value == pytest.approx(1.0)
    # d = (1, -2, 3.5): observed 2.5; |sums| of the 8 patterns are 6.5, 4.5, 2.5, 0.5 (each twice),
    # and 6 of 8 are >= 2.5
    mixed = stats.paired_test([1.0, -2.0, 3.5], np.zeros(3), test="permutation")
    assert mixed.p_value == pytest.approx(6 / 8)


def test_sign_flip_equals_scipy_permutation_test():
    rng = np.random.default_rng(1)
    for n in (4, 7, 10):
        d = rng.normal(0.5, 1.0, size=n)
        for alternative in ("two-sided", "greater", "less"):
            reference = sps.permutation_test((d,), np.mean, permutation_type="samples", alternative=alternative,
                                             n_resamples=np.inf, vectorized=True)
            ours = stats.paired_test(d, np.zeros(n), test="permutation", alternative=alternative)
            assert ours.p_value == pytest.approx(reference.pvalue, rel=1e-12)
            assert ours.exact and ours.p_resolution == pytest.approx((2 if alternative == "two-sided" else 1) / 2**n)


def test_sign_flip_counts_ties_as_extreme():
    # Three equal differences: every +/- pattern with the same count of + signs ties; |sum| = 3 for 2 of 8.
    result = stats.paired_test([2.0, 2.0, 2.0], [1.0, 1.0, 1.0], test="permutation")
    assert result.p_value == pytest.approx(0.25)


def test_monte_carlo_beyond_sixteen_pairs_states_its_resolution():
    rng = np.random.default_rng(2)
    d = rng.normal(0.3, 1.0, size=20)
    result = stats.paired_test(d, np.zeros(20), test="permutation", rng=np.random.default_rng(0), n_resamples=4999)
    assert not result.exact and result.p_resolution == pytest.approx(1 / 5000) == result.min_p
    reference = sps.permutation_test((d,), np.mean, permutation_type="samples", n_resamples=20000, vectorized=True,
                                     rng=np.random.default_rng(1))
    assert result.p_value == pytest.approx(reference.pvalue, abs=0.02)
    with pytest.raises(ValueError, match="rng"):
        stats.paired_test(d, np.zeros(20), test="permutation")


def test_min_p_and_effective_alpha():
    assert stats.sign_flip_min_p(3) == 0.25 and stats.sign_flip_min_p(3, "greater") == 0.125
    assert stats.sign_flip_min_p(5) == 0.0625 and stats.sign_flip_min_p(6) == pytest.approx(1 / 32)
    assert stats.sign_flip_effective_alpha(5, 0.05) == 0.0  # cannot reach 0.05 two-sided at 5 seeds
    assert stats.sign_flip_effective_alpha(5, 0.05, "greater") == pytest.approx(1 / 32)
    assert stats.sign_flip_effective_alpha(10, 0.05) == pytest.approx(50 / 1024)  # 2j/1024 <= 0.05 -> j = 25
    assert stats.sign_flip_effective_alpha(20, 0.05) == 0.05


def test_direction_follows_the_mean_not_the_majority():
    # 11 seeds slightly better, one diverged at -40: the mean is negative, so is the direction.
    a = np.array([91.0] * 11 + [50.0])
    b = np.array([90.0] * 11 + [90.0])
    result = stats.paired_test(a, b)
    assert result.mean_difference == pytest.approx((11 - 40) / 12) and result.direction == -1
    assert result.effect_size < 0


def test_constant_difference_is_detected_by_the_t_test():
    # The CI-gate case: every seed exactly 5 points lower (k/100 accuracies, an ulp apart).
    a = np.array([95, 90, 85]) / 100
    b = a + 0.05
    result = stats.paired_test(a, b)
    assert result.p_value == 0.0 and result.statistic == -math.inf and result.direction == -1
    assert "constant" in result.reason
    assert stats.paired_test(a, b, alternative="less").p_value == 0.0
    assert stats.paired_test(a, b, alternative="greater").p_value == 1.0
    assert stats.paired_test(a, b, test="permutation").p_value == pytest.approx(0.25)


def test_untestable_and_identical():
    none = stats.paired_test([1.0], [0.0])
    assert math.isnan(none.p_value) and "at least 2" in none.reason
    same = stats.paired_test([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert same.p_value == 1.0 and same.direction == 0 and "zero" in same.reason
    assert stats.paired_test([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], test="permutation").p_value == 1.0
    with pytest.raises(ValueError, match="test must be"):
        stats.paired_test([1.0, 2.0], [0.0, 0.0], test="wilcoxon")


def test_paired_t_rows_limits():
    t, p = stats.paired_t_rows(np.array([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [-2.0, -2.0, -2.0]]), "greater")
    assert t[0] == math.inf and p.tolist() == [0.0, 1.0, 1.0] and math.isnan(t[1])


def test_snapped_differences_merge_rounding_noise_only():
    # Accuracies k/100: exactly +5 points on every seed, but an ulp apart in floating point.
    a = np.array([95, 90, 85, 97]) / 100
    b = np.array([90, 85, 80, 92]) / 100
    assert np.ptp(a - b) > 0  # the noise this is about
    d = stats.snapped_differences(a, b)
    assert np.ptp(d) == 0 and d[0] == pytest.approx(0.05, rel=1e-12)
    assert stats.snapped_differences([0.3], [0.1 + 0.2]).tolist() == [0.0]  # 0.3 - 0.30000000000000004
    assert stats.snapped_differences([1.0, 2.0], [0.0, 0.0]).tolist() == [1.0, 2.0]  # real differences stay
    with pytest.raises(ValueError, match="same length"):
        stats.paired_test([1.0, 2.0], [1.0])


def test_dz_and_share_of_seeds_better_by_hand():
    assert stats.cohens_dz([1.0, 2.0, 3.0]) == pytest.approx(2.0)  # mean 2, sd 1
    assert math.isnan(stats.cohens_dz([2.0, 2.0])) and math.isnan(stats.cohens_dz([1.0]))
    # d = (1, 0, -1, 1): two better, one tie (half), one worse -> 2.5 / 4
    assert stats.share_of_seeds_better(np.array([1, 2, 3, 4]) - np.array([0, 2, 4, 3])) == pytest.approx(0.625)
