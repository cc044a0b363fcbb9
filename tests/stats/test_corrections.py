"""Holm's step-down adjustment by hand and against statsmodels."""

from __future__ import annotations

import math

import numpy as np
import pytest

from normbench import stats

pytestmark = pytest.mark.usefixtures("no_warnings")  # every statistics call must be silent


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


def test_holm_rows_equal_holm_per_row():
    rng = np.random.default_rng(4)
    p = rng.uniform(0, 0.1, size=(20, 5))
    p[rng.random(p.shape) < 0.2] = np.nan
    adjusted = stats.holm(p)
    assert adjusted.shape == p.shape
    for row, expected in zip(p, adjusted):
        np.testing.assert_allclose(stats.holm(row), expected, rtol=0, atol=0)
