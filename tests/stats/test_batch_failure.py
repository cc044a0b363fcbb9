"""Critical batch size: hand-checked decisions, Holm over the norm's batch sizes, the bootstrap."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from normbench import stats

BATCH_SIZES = [1, 2, 4, 8, 16, 32, 64]


def _table(means, seeds=8, spread=0.5, seed=0):
    rng = np.random.default_rng(seed)
    seed_effect = rng.normal(0, 1.0, size=seeds)  # shared by all batch sizes: what pairing removes
    return np.array([[m + s + rng.normal(0, spread) for s in seed_effect] for m in means])


def test_each_batch_size_against_the_largest_one_sided_with_holm():
    table = _table([60, 80, 92, 94.5, 95, 95, 95])
    result = stats.critical_batch_size(BATCH_SIZES, table, np.random.default_rng(0), n_resamples=300)
    assert result.reference_batch_size == 64 and result.batch_sizes == (1, 2, 4, 8, 16, 32)
    assert len(result.comparisons) == 6
    raw = []
    for i, comparison in enumerate(result.comparisons):
        d = table[i] - table[-1]
        assert comparison.alternative == "less"
        if comparison.test == "paired t-test":
            assert comparison.p_value == pytest.approx(sps.ttest_rel(table[i], table[-1], alternative="less").pvalue)
        else:
            assert comparison.p_value == pytest.approx(sps.wilcoxon(d, alternative="less").pvalue)
        raw.append(comparison.p_value)
    assert result.p_holm == pytest.approx(tuple(stats.holm(raw)))
    largest_worse = max(b for b, s in zip(result.batch_sizes, result.significant) if s)
    assert result.critical_batch_size == largest_worse
    assert result.significant[:3] == (True, True, True)  # 60, 80, 92 vs 95: far worse
    assert result.significant[-2:] == (False, False)  # 95 vs 95


def test_interval_only_around_a_failure_and_contains_the_estimate():
    table = _table([95] * 7, seed=1)
    result = stats.critical_batch_size(BATCH_SIZES, table, np.random.default_rng(1), n_resamples=300)
    assert result.critical_batch_size is None
    assert result.interval is None and result.interval_note == "no batch size is significantly worse"

    failing = _table([50, 60, 70, 80, 90, 95, 95], seed=2)
    result = stats.critical_batch_size(BATCH_SIZES, failing, np.random.default_rng(2), n_resamples=300)
    low, high = result.interval
    assert result.critical_batch_size in (8, 16)
    assert low <= result.critical_batch_size <= high
    assert stats.describe_interval(result.interval) == "[" + ", ".join("none" if v == 0 else str(v) for v in (low, high)) + "]"
    assert sum(f for _, f in result.distribution) == pytest.approx(1.0)


def test_bootstrap_is_reproducible_and_uses_only_the_given_generator():
    table = _table([80, 90, 95, 95], seeds=6, seed=3)
    first = stats.critical_batch_size([8, 16, 32, 64], table, np.random.default_rng(5), n_resamples=200)
    again = stats.critical_batch_size([8, 16, 32, 64], table, np.random.default_rng(5), n_resamples=200)
    assert first.interval == again.interval and first.distribution == again.distribution


def test_diverged_seeds_counted_as_zero_make_small_batches_fail():
    # BN at batch 2: 3 of 5 seeds diverged (0 %), the others fine - failure, never dropped.
    table = np.array([[0.0, 93.0, 0.0, 94.0, 0.0], [95.0, 94.5, 95.5, 95.0, 94.0]])
    result = stats.critical_batch_size([2, 64], table, np.random.default_rng(0), n_resamples=200)
    assert result.comparisons[0].mean_difference < -50


def test_interval_needs_enough_complete_seeds_and_nan_means_missing():
    table = np.array([[80.0, 81.0, np.nan, 79.0], [95.0, 94.0, 96.0, 95.0]])
    result = stats.critical_batch_size([4, 64], table, np.random.default_rng(0))
    assert result.interval is None and "3 seeds complete" in result.interval_note
    assert result.comparisons[0].n == 3  # the pair with a missing seed is left out of that comparison
    single = stats.critical_batch_size([64], [[95.0, 94.0]], np.random.default_rng(0))
    assert single.critical_batch_size is None and single.interval_note == "only one batch size"
    with pytest.raises(ValueError, match="shape"):
        stats.critical_batch_size([4, 64], [[1.0, 2.0]], np.random.default_rng(0))


def test_smoothed_resamples_keep_mean_and_variance_and_break_ties():
    from normbench.stats.batch_failure import _smoothed

    d = np.array([-0.3, -0.3, 0.3, -0.3, 0.3, -0.6])
    rng = np.random.default_rng(0)
    draws = rng.integers(0, d.size, size=(200_000, d.size))
    smoothed = _smoothed(d, draws, rng)
    s2 = d.var(ddof=1)
    q75, q25 = np.percentile(d, [75, 25])
    h = 0.9 * min(d.std(ddof=1), (q75 - q25) / 1.34) * d.size ** -0.2
    # Var = (plug-in variance + h^2) / (1 + h^2 / s^2), Silverman's shrunk smoothed bootstrap
    expected = (d.var(ddof=0) + h**2) / (1 + h**2 / s2)
    assert smoothed.mean() == pytest.approx(d.mean(), abs=2e-3)
    assert smoothed.var() == pytest.approx(expected, rel=0.01)
    assert np.unique(smoothed[0]).size == d.size  # no artificial ties left
    constant = _smoothed(np.array([2.0, 2.0, 2.0]), draws[:10, :3] % 3, rng)
    assert np.all(constant == 2.0)
