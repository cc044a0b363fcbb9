"""Paired comparisons against scipy on the same arrays, hand-worked cases and published worked
examples (Student's sleep data; Wikipedia's Wilcoxon signed-rank example)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import stats as sps

from normbench import stats

pytestmark = pytest.mark.usefixtures("no_warnings")  # every statistics call must be silent

# Student's (1908) sleep data (R's `sleep`): extra hours of sleep under two drugs, same 10 patients.
# R: t.test(extra ~ group, data = sleep, paired = TRUE) -> t = -4.0621, df = 9, p-value = 0.002833.
SLEEP_1 = np.array([0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0])
SLEEP_2 = np.array([1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4])

# Wikipedia, "Wilcoxon signed-rank test", worked example (x2 vs x1 for 10 pairs).
WIKI_X2 = np.array([125, 115, 130, 140, 140, 115, 140, 125, 140, 135], dtype=float)
WIKI_X1 = np.array([110, 122, 125, 120, 140, 124, 123, 137, 135, 145], dtype=float)


def test_paired_t_on_students_sleep_data():
    result = stats.paired_comparison(SLEEP_1, SLEEP_2, test="t")
    assert result.test == "paired t-test"
    assert result.statistic == pytest.approx(-4.0621, abs=5e-5)  # R's printed value
    assert result.p_value == pytest.approx(0.002833, abs=5e-7)
    # d_z by hand: mean(d) = -1.58, sd(d) = 1.229995 -> -1.28456
    assert result.mean_difference == pytest.approx(-1.58)
    assert result.effect_size == pytest.approx(-1.58 / 1.2299955, rel=1e-6)
    assert result.effect_name == "d_z" and result.n == 10
    # P(a > b): 0 of 10 pairs, one tie (patient 5) counts half
    assert result.probability_of_improvement == pytest.approx(0.05)


def test_auto_uses_shapiro_on_differences():
    # Sleep differences are not normal (Shapiro-Wilk p = 0.033): auto must pick Wilcoxon.
    result = stats.paired_comparison(SLEEP_1, SLEEP_2)
    assert result.normality_p == pytest.approx(sps.shapiro(SLEEP_1 - SLEEP_2).pvalue)
    assert result.normality_p < 0.05 and result.test == "wilcoxon"
    assert "Shapiro" in result.reason


def test_auto_t_test_equals_scipy_ttest_rel():
    rng = np.random.default_rng(1)
    a = rng.normal(90, 2, size=8)
    b = a - rng.normal(1.0, 0.8, size=8)
    result = stats.paired_comparison(a, b)
    assert sps.shapiro(a - b).pvalue >= 0.05 and result.test == "paired t-test"
    reference = sps.ttest_rel(a, b)
    assert result.statistic == pytest.approx(reference.statistic, rel=1e-9)
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-9)
    d = a - b
    assert result.effect_size == pytest.approx(d.mean() / d.std(ddof=1), rel=1e-9)


def test_wilcoxon_on_wikipedia_example_with_hand_ranks():
    # d = 15, -7, 5, 20, 0, -9, 17, -12, 5, -10; the zero is dropped, |d| ranks:
    # 5, 5 -> 1.5 each; 7 -> 3; 9 -> 4; 10 -> 5; 12 -> 6; 15 -> 7; 17 -> 8; 20 -> 9.
    r_plus = 7 + 1.5 + 9 + 8 + 1.5   # 15, 5, 20, 17, 5
    r_minus = 3 + 4 + 6 + 5          # -7, -9, -12, -10
    assert (r_plus, r_minus) == (27, 18)  # Wikipedia: W = 27 - 18 = 9
    result = stats.paired_comparison(WIKI_X2, WIKI_X1, test="wilcoxon")
    assert result.test == "wilcoxon"
    assert result.effect_size == pytest.approx((r_plus - r_minus) / (r_plus + r_minus))  # 0.2
    reference = sps.wilcoxon(WIKI_X2, WIKI_X1)
    assert result.statistic == reference.statistic == min(r_plus, r_minus)
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-12)
    assert result.probability_of_improvement == pytest.approx(5.5 / 10)


def test_rank_biserial_and_dz_by_hand():
    assert stats.rank_biserial([1.0, -2.0, 3.0]) == pytest.approx((4 - 2) / 6)  # R+ = 1 + 3, R- = 2
    assert stats.rank_biserial([2.0, 3.0]) == 1.0
    assert stats.cohens_dz([1.0, 2.0, 3.0]) == pytest.approx(2.0)  # mean 2, sd 1
    assert math.isnan(stats.cohens_dz([2.0, 2.0]))


def test_probability_of_improvement_counts_ties_half():
    assert stats.probability_of_improvement(np.array([1, 2, 3, 4]) - np.array([0, 2, 4, 3])) == pytest.approx(0.625)


def test_all_zero_differences_mean_no_difference():
    result = stats.paired_comparison([90.0, 91.0, 92.0], [90.0, 91.0, 92.0])
    assert (result.test, result.p_value, result.effect_size, result.mean_difference) == ("none", 1.0, 0.0, 0.0)
    assert result.probability_of_improvement == 0.5 and "zero" in result.reason


@pytest.mark.parametrize("n", [0, 1])
def test_too_few_pairs_is_not_testable(n):
    result = stats.paired_comparison([90.0] * n, [80.0] * n)
    assert result.test == "none" and math.isnan(result.p_value) and result.n == n
    assert "at least 2" in result.reason


def test_two_pairs_use_wilcoxon_with_a_reason():
    result = stats.paired_comparison([90.0, 95.0], [80.0, 94.0])
    assert result.test == "wilcoxon" and "fewer than 3" in result.reason
    assert result.p_value == pytest.approx(sps.wilcoxon([10.0, 1.0]).pvalue)


def test_constant_difference_up_to_rounding_is_a_tie_not_a_huge_t():
    # Accuracies k/100: exactly +5 points on every seed, but an ulp apart in floating point.
    a = np.array([95, 90, 85, 97]) / 100
    b = np.array([90, 85, 80, 92]) / 100
    assert np.ptp(a - b) > 0  # the noise this test is about
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        naive = sps.ttest_rel(a, b)
    assert not np.isfinite(naive.statistic) or abs(naive.statistic) > 1e10  # what unsnapped data gives
    result = stats.paired_comparison(a, b)
    assert result.test == "wilcoxon" and result.effect_size == 1.0
    assert result.p_value == pytest.approx(sps.wilcoxon([1.0, 1.0, 1.0, 1.0]).pvalue)
    assert result.mean_difference == pytest.approx(0.05, rel=1e-12)


def test_paired_comparison_checks_lengths_and_test_name():
    with pytest.raises(ValueError, match="same length"):
        stats.paired_comparison([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="test must be"):
        stats.paired_comparison([1.0, 2.0], [1.0, 3.0], test="anova")
