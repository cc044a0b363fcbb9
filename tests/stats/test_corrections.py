"""Holm and Benjamini-Hochberg adjustments by hand and against statsmodels; the per-comparison level of a family."""

from __future__ import annotations

import math

import numpy as np
import pytest
from statsmodels.stats import multitest

from normbench import stats

pytestmark = pytest.mark.usefixtures("no_warnings")  # every statistics call must be silent


def test_holm_by_hand():
    # sorted: 0.01 x 3 = 0.03; 0.03 x 2 = 0.06; 0.04 x 1 = 0.04 -> raised to 0.06 (monotone)
    assert stats.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])


def test_holm_matches_statsmodels():
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


def test_holm_rows_equal_holm_per_row():
    rng = np.random.default_rng(4)
    p = rng.uniform(0, 0.1, size=(20, 5))
    p[rng.random(p.shape) < 0.2] = np.nan
    adjusted = stats.holm(p)
    assert adjusted.shape == p.shape
    for row, expected in zip(p, adjusted):
        np.testing.assert_allclose(stats.holm(row), expected, rtol=0, atol=0)




def test_bh_by_hand():
    # sorted 0.01, 0.03, 0.04, 0.2 (m = 4): x 4/1, 4/2, 4/3, 4/4 = 0.04, 0.06, 0.0533, 0.2;
    # monotone from the top: 0.04, 0.0533, 0.0533, 0.2
    assert stats.benjamini_hochberg([0.01, 0.04, 0.03, 0.2]) == pytest.approx([0.04, 0.16 / 3, 0.16 / 3, 0.2])


def test_bh_matches_statsmodels_and_skips_nan():
    rng = np.random.default_rng(3)
    for m in (1, 3, 8, 20):
        p = rng.uniform(0, 0.3, size=m)
        assert stats.benjamini_hochberg(p) == pytest.approx(multitest.multipletests(p, method="fdr_bh")[1], abs=1e-15)
    with_nan = stats.benjamini_hochberg([0.01, math.nan, 0.04, 0.03, 0.2])
    assert math.isnan(with_nan[1]) and with_nan[[0, 2, 3, 4]] == pytest.approx(stats.benjamini_hochberg([0.01, 0.04, 0.03, 0.2]))
    rows = rng.uniform(0, 0.2, size=(5, 4))
    assert stats.benjamini_hochberg(rows) == pytest.approx(np.array([stats.benjamini_hochberg(r) for r in rows]))


def test_adjust_dispatches():
    p = [0.01, 0.04, 0.03]
    assert stats.adjust(p, "holm") == pytest.approx(stats.holm(p))
    assert stats.adjust(p, "bh") == pytest.approx(stats.benjamini_hochberg(p))
    assert stats.adjust(p, "none") == pytest.approx(p)
    with pytest.raises(ValueError, match="correction"):
        stats.adjust(p, "bonferroni-ish")
    with pytest.raises(ValueError, match="0, 1"):
        stats.adjust([1.5], "bh")


def test_per_comparison_alpha():
    assert stats.per_comparison_alpha(0.05, 10) == pytest.approx(0.005)
    assert stats.per_comparison_alpha(0.05, 10, "bh") == pytest.approx(0.005)
    assert stats.per_comparison_alpha(0.05, 10, "none") == 0.05
    assert stats.per_comparison_alpha(0.05, 1) == 0.05
