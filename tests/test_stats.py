"""normbench.stats against independent values: scipy on the same arrays, hand-worked cases, and
published worked examples (Student's sleep data; Wikipedia's Wilcoxon signed-rank example)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import stats as sps

from normbench import stats

# Student's (1908) sleep data (R's `sleep`): extra hours of sleep under two drugs, same 10 patients.
# R: t.test(extra ~ group, data = sleep, paired = TRUE) -> t = -4.0621, df = 9, p-value = 0.002833.
SLEEP_1 = np.array([0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0])
SLEEP_2 = np.array([1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4])

# Wikipedia, "Wilcoxon signed-rank test", worked example (x2 vs x1 for 10 pairs).
WIKI_X2 = np.array([125, 115, 130, 140, 140, 115, 140, 125, 140, 135], dtype=float)
WIKI_X1 = np.array([110, 122, 125, 120, 140, 124, 123, 137, 135, 145], dtype=float)


@pytest.fixture(autouse=True)
def _no_warnings():
    """Every statistics call must be silent, including the degenerate cases."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


# --- summaries -------------------------------------------------------------------------------

def test_summarize_matches_numpy_and_scipy():
    x = np.array([91.1, 93.4, 90.2, 95.0, 92.7, 88.9])
    summary = stats.summarize(x, np.random.default_rng(7))
    expected = sps.bootstrap((x,), np.mean, n_resamples=stats.DEFAULT_RESAMPLES, vectorized=True,
                             method="BCa", rng=np.random.default_rng(7)).confidence_interval
    assert summary.n == 6
    assert summary.mean == pytest.approx(np.mean(x), rel=1e-15)
    assert summary.std == pytest.approx(np.std(x, ddof=1), rel=1e-15)
    assert summary.median == pytest.approx(np.median(x), rel=1e-15)
    assert summary.iqm == pytest.approx(sps.trim_mean(x, 0.25), rel=1e-15)
    assert (summary.ci_low, summary.ci_high) == (expected.low, expected.high)
    assert summary.ci_method == "BCa"
    assert summary.ci_low < summary.mean < summary.ci_high


def test_iqm_by_hand():
    # The middle 50 % of 1..7, 100 is {3, 4, 5, 6}: the outlier does not move it.
    assert stats.iqm([1, 2, 3, 4, 5, 6, 7, 100]) == pytest.approx(4.5)
    assert stats.iqm([5, 1, 3]) == pytest.approx(3.0)  # n = 3 trims nothing, as rliable does


def test_summarize_small_and_degenerate_cases():
    two = stats.summarize([90.0, 92.0], np.random.default_rng(0))
    assert two.ci_method == "percentile" and 90.0 <= two.ci_low <= two.ci_high <= 92.0
    one = stats.summarize([90.0], np.random.default_rng(0))
    assert (one.n, one.mean, one.ci_method) == (1, 90.0, "none")
    assert math.isnan(one.std) and math.isnan(one.ci_low) and math.isnan(one.ci_high)
    same = stats.summarize([97.5, 97.5, 97.5], np.random.default_rng(0))
    assert (same.ci_low, same.ci_high, same.ci_method, same.std) == (97.5, 97.5, "degenerate", 0.0)
    empty = stats.summarize([], np.random.default_rng(0))
    assert empty.n == 0 and math.isnan(empty.mean) and empty.ci_method == "none"


def test_summarize_rejects_nan_rather_than_dropping():
    with pytest.raises(ValueError, match="NaN"):
        stats.summarize([90.0, float("nan")], np.random.default_rng(0))


def test_summarize_never_touches_the_global_rng():
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    stats.summarize([1.0, 2.0, 4.0, 8.0], np.random.default_rng(0))
    assert np.array_equal(np.random.get_state()[1], before)


def test_summarize_is_reproducible_with_the_same_seed():
    x = [80.0, 85.5, 83.1, 90.2]
    assert stats.summarize(x, np.random.default_rng(3)) == stats.summarize(x, np.random.default_rng(3))


# --- paired comparisons ----------------------------------------------------------------------

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


# --- Holm ------------------------------------------------------------------------------------

def test_holm_by_hand():
    # sorted: 0.01 x 3 = 0.03; 0.03 x 2 = 0.06; 0.04 x 1 = 0.04 -> raised to 0.06 (monotone)
    assert stats.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])


def test_holm_matches_statsmodels():
    multitest = pytest.importorskip("statsmodels.stats.multitest")
    rng = np.random.default_rng(5)
    for m in (1, 2, 5, 12):
        p = rng.uniform(0, 0.2, size=m)
        p[rng.random(m) < 0.3] = p[0]  # ties
        assert stats.holm(p) == pytest.approx(multitest.multipletests(p, method="holm")[1], abs=1e-15)


def test_holm_nan_passes_through_and_caps_at_one():
    adjusted = stats.holm([0.01, float("nan"), 0.04, 0.03])
    assert math.isnan(adjusted[1])
    assert adjusted[[0, 2, 3]] == pytest.approx([0.03, 0.06, 0.06])  # NaN is not part of the family
    assert stats.holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])
    assert stats.holm([]).shape == (0,)
    assert np.isnan(stats.holm([float("nan")])).all()


# --- curve bands -----------------------------------------------------------------------------

def test_mean_confidence_band_matches_scipy_t_interval():
    values = np.array([[10.0, 50.0, 80.0], [12.0, 55.0, np.nan], [11.0, 60.0, np.nan], [9.0, 52.0, np.nan]])
    band = stats.mean_confidence_band(values)
    for column in range(2):
        x = values[:, column]
        low, high = sps.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=sps.sem(x))
        assert band["mean"][column] == pytest.approx(x.mean())
        assert (band["low"][column], band["high"][column]) == pytest.approx((low, high))
    # one run at the last point: a mean but no band
    assert band["n"].tolist() == [4, 4, 1] and band["mean"][2] == 80.0
    assert math.isnan(band["low"][2]) and math.isnan(band["high"][2])
