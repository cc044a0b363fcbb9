"""Summaries (mean, SD, median, IQM, bootstrap CI) and curve bands against NumPy and scipy on the same
arrays, and hand-worked cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from normbench import stats

pytestmark = pytest.mark.usefixtures("no_warnings")  # every statistics call must be silent


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
