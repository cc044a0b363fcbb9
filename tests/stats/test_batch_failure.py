"""The critical batch size: drops against a declared reference beyond a margin, one-sided,
corrected over the norm's smaller batch sizes, with t-intervals and a replication frequency."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from normbench import stats

SIZES = [1, 2, 4, 8, 16, 32]


def _table(means, seeds, spread=0.3, seed=0):
    rng = np.random.default_rng(seed)
    seed_effect = rng.normal(0, 1.0, size=seeds)  # shared by every batch size: pairing removes it
    return np.array([[m + s + rng.normal(0, spread) for s in seed_effect] for m in means])


def test_each_drop_is_a_one_sided_t_test_beyond_the_margin():
    table = _table([60, 93.5, 94.8, 95, 95, 95], seeds=6)
    result = stats.critical_batch_size_beyond_margin(SIZES, table)
    assert result.reference_batch_size == 32 and [d.batch_size for d in result.drops] == [1, 2, 4, 8, 16]
    raw = []
    for row, drop in zip(table[:-1], result.drops):
        d = table[-1] - row
        expected = sps.ttest_1samp(d - 1.0, 0.0, alternative="greater").pvalue
        assert drop.p_value == pytest.approx(expected, rel=1e-10)
        assert drop.drop == pytest.approx(d.mean())
        low, high = sps.t.interval(0.95, d.size - 1, loc=d.mean(), scale=sps.sem(d))
        assert (drop.ci_low, drop.ci_high) == pytest.approx((low, high))
        raw.append(drop.p_value)
    assert [d.p_adjusted for d in result.drops] == pytest.approx(list(stats.holm(raw)))
    assert result.critical_batch_size == max(d.batch_size for d in result.drops if d.significant)


def test_a_small_true_drop_does_not_become_critical_with_more_seeds():
    # The case: a true 0.5-point drop at batch 2-16 and a 17-point drop at 1. With a margin
    # of 1 point the answer is batch 1 at 3 seeds and at 30 seeds alike.
    for seeds in (3, 30):
        table = _table([78, 94.5, 94.5, 94.5, 94.5, 95], seeds=seeds, seed=seeds)
        result = stats.critical_batch_size_beyond_margin(SIZES, table)
        assert result.critical_batch_size == 1, seeds


def test_declared_reference_and_batch_sizes_above_it():
    # The largest batch is under-trained; the declared reference is 16. Batch 32 is shown, not tested.
    table = _table([60, 90, 95, 95, 95, 85], seeds=5)
    result = stats.critical_batch_size_beyond_margin(SIZES, table, reference_batch_size=16)
    above = result.drops[-1]
    assert result.reference_batch_size == 16 and above.batch_size == 32 and above.drop > 5
    assert math.isnan(above.p_value) and not above.significant
    assert result.critical_batch_size == 2
    with pytest.raises(ValueError, match="reference_batch_size 64"):
        stats.critical_batch_size_beyond_margin(SIZES, table, reference_batch_size=64)


def test_permutation_variant_and_missing_seeds():
    table = np.array([[80.0, 81.0, np.nan, 79.0, 80.0, 82.0], [95.0, 94.0, 96.0, 95.0, 94.5, 95.5]])
    result = stats.critical_batch_size_beyond_margin([4, 64], table, test="permutation")
    drop = result.drops[0]
    assert drop.n == 5 and drop.p_value == pytest.approx(1 / 32)  # 5 positive drops beyond 1 point
    assert result.critical_batch_size == 4 and result.test == "sign-flip permutation"


def test_replication_frequency_is_a_share_of_resamples():
    table = _table([60, 80, 94.9, 95, 95, 95], seeds=6, seed=4)
    result = stats.critical_batch_size_beyond_margin(SIZES, table, rng=np.random.default_rng(0), n_resamples=400)
    assert 0 <= result.replication_frequency <= 1 and result.n_resamples == 400
    shares = dict(result.replication_distribution)
    assert sum(shares.values()) == pytest.approx(1.0)
    assert shares[result.critical_batch_size] == pytest.approx(result.replication_frequency)
    again = stats.critical_batch_size_beyond_margin(SIZES, table, rng=np.random.default_rng(0), n_resamples=400)
    assert again == result
    few = stats.critical_batch_size_beyond_margin(SIZES, table[:, :3], rng=np.random.default_rng(0))
    assert math.isnan(few.replication_frequency) and "3 seeds complete" in few.note
    data = result.to_dict()
    assert data["drops"][0]["batch_size"] == 1 and isinstance(data["replication_distribution"], list)
