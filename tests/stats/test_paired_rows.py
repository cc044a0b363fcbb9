"""The exact signed-rank test and the vectorized paired decision rule against scipy, row by row."""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pytest
from scipy import stats as sps

from normbench import stats


def _brute_force_p(d: np.ndarray, alternative: str) -> float:
    """Enumerate every sign assignment of the non-zero differences (the definition of the null)."""
    d = d[d != 0]
    ranks = sps.rankdata(np.abs(d))
    observed = ranks[d > 0].sum()
    null = np.array([sum(r for r, s in zip(ranks, signs) if s) for signs in itertools.product((0, 1), repeat=d.size)])
    less, greater = np.mean(null <= observed + 1e-9), np.mean(null >= observed - 1e-9)
    return {"less": less, "greater": greater, "two-sided": min(1.0, 2 * min(less, greater))}[alternative]


@pytest.mark.parametrize("alternative", ["two-sided", "less", "greater"])
def test_signed_rank_equals_scipy_without_ties(alternative):
    rng = np.random.default_rng(0)
    for n in (1, 2, 3, 5, 8, 13, 20):
        d = rng.normal(0.3, 1.0, size=n)
        statistic, p = stats.signed_rank_rows(d[None, :], alternative)
        reference = sps.wilcoxon(d, alternative=alternative)
        assert p[0] == pytest.approx(reference.pvalue, rel=1e-10, abs=1e-15)
        assert statistic[0] == pytest.approx(reference.statistic)


@pytest.mark.parametrize("alternative", ["two-sided", "less", "greater"])
def test_signed_rank_with_ties_and_zeros_equals_scipy_permutation(alternative):
    # Accuracy differences are multiples of 1/n_test: ties and zeros are the normal case.
    rng = np.random.default_rng(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(15):
            n = int(rng.integers(3, 10))
            d = rng.choice([-2.0, -1.0, 0.0, 0.5, 1.0, 1.0, 2.0, 3.0], size=n)
            if not np.any(d != 0):
                continue
            _, p = stats.signed_rank_rows(d[None, :], alternative)
            # n <= 13 with ties: scipy enumerates every sign flip exactly
            assert p[0] == pytest.approx(sps.wilcoxon(d, alternative=alternative).pvalue, rel=1e-9)
            assert p[0] == pytest.approx(_brute_force_p(d, alternative), rel=1e-9)


def test_signed_rank_is_exact_beyond_scipys_enumeration_limit():
    d = np.array([1, 1, 2, -1, 3, 2, 2, -2, 4, 1, 1, 5, 3, -1, 2, 2], dtype=float)  # n = 16 with ties
    _, p = stats.signed_rank_rows(d[None, :], "two-sided")
    assert p[0] == pytest.approx(_brute_force_p(d, "two-sided"), rel=1e-12)


def test_signed_rank_rows_are_independent_and_all_zero_rows_are_nan():
    d = np.array([[1.0, 2.0, -0.5], [0.0, 0.0, 0.0], [3.0, 3.0, 3.0]])
    statistic, p = stats.signed_rank_rows(d)
    assert p[0] == pytest.approx(sps.wilcoxon(d[0]).pvalue)
    assert math.isnan(p[1]) and math.isnan(statistic[1])
    assert p[2] == pytest.approx(2 / 8)  # three equal positive differences: 2 x (1/2)^3


def test_paired_rows_apply_the_same_rule_as_paired_comparison():
    rng = np.random.default_rng(2)
    rows = np.vstack([
        rng.normal(1.0, 1.0, size=(30, 6)),                   # mostly t-tests
        rng.choice([0.0, 1.0, -1.0, 4.0], size=(30, 6)),       # ties and zeros
        np.array([[2.0] * 6, [0.0] * 6, [0, 0, 0, 0, 0, 1.0]]),  # constant, all zero, nearly
    ])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for alternative in ("two-sided", "less"):
            vectorized = stats.paired_test_rows(rows, alternative=alternative)
            for i, d in enumerate(rows):
                scalar = stats.paired_comparison(d, np.zeros_like(d), alternative=alternative)
                if math.isnan(scalar.p_value):
                    assert math.isnan(vectorized["p_value"][i])
                else:
                    assert vectorized["p_value"][i] == pytest.approx(scalar.p_value, rel=1e-12)


def test_one_sided_paired_t_equals_scipy():
    rng = np.random.default_rng(3)
    a, b = rng.normal(90, 2, size=8), rng.normal(91, 2, size=8)
    result = stats.paired_comparison(a, b, test="t", alternative="less")
    reference = sps.ttest_rel(a, b, alternative="less")
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-10)
    assert result.alternative == "less" and result.sd_difference == pytest.approx(np.std(a - b, ddof=1))


def test_bad_alternative_is_named():
    with pytest.raises(ValueError, match="alternative"):
        stats.paired_comparison([1.0, 2.0], [0.0, 1.0], alternative="bigger")
