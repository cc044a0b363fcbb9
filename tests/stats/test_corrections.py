"""Benjamini-Hochberg against statsmodels and by hand; the per-comparison level of a family."""

from __future__ import annotations

import math

import numpy as np
import pytest

from normbench import stats

multitest = pytest.importorskip("statsmodels.stats.multitest")


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
