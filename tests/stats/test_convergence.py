"""AUC, time to target and Kaplan-Meier against hand-worked cases and a textbook example."""

from __future__ import annotations

import math

import numpy as np
import pytest

from normbench import stats

# Freireich et al. (1963) 6-MP arm of the leukaemia remission trial, as tabulated in Kleinbaum &
# Klein, "Survival Analysis: A Self-Learning Text" (ch. 2): weeks in remission, + = censored.
WEEKS = [6, 6, 6, 6, 7, 9, 10, 10, 11, 13, 16, 17, 19, 20, 22, 23, 25, 32, 32, 34, 35]
RELAPSED = [1, 1, 1, 0, 1, 0, 1, 0, 0, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0]


def test_kaplan_meier_textbook_6mp():
    curve = stats.kaplan_meier(WEEKS, np.array(RELAPSED, dtype=bool))
    assert curve.times == (6, 7, 10, 13, 16, 22, 23)
    assert curve.at_risk == (21, 17, 15, 12, 11, 7, 6)
    assert curve.events == (3, 1, 1, 1, 1, 1, 1)
    # The book's S(t): .857, .807, .753, .690, .627, .538, .448
    assert curve.survival == pytest.approx([0.857, 0.807, 0.753, 0.690, 0.627, 0.538, 0.448], abs=5e-4)
    assert curve.median == 23  # smallest t with S(t) <= 0.5
    assert (curve.n, curve.n_events) == (21, 9)


def test_kaplan_meier_without_censoring_is_the_empirical_survival():
    curve = stats.kaplan_meier([3, 1, 2, 2], [True] * 4)
    assert curve.survival == pytest.approx([0.75, 0.25, 0.0])
    assert curve.median == 2  # S(2) = 0.25 <= 0.5


def test_kaplan_meier_median_not_reached_and_exact_half():
    assert math.isnan(stats.kaplan_meier([5, 10, 10, 10], [True, False, False, False]).median)
    assert stats.kaplan_meier([1, 2], [True, True]).median == 1  # S(1) = 0.5 exactly
    assert math.isnan(stats.kaplan_meier([], []).median)


def test_normalized_auc_by_hand():
    # trapezoids: (0+50)/2*10 + (50+90)/2*10 = 250 + 700 = 950 over 20 steps -> 47.5
    assert stats.normalized_auc([0, 10, 20], [0, 50, 90]) == pytest.approx(47.5)
    assert stats.normalized_auc([0, 10], [80, 80]) == pytest.approx(80)  # constant curve = its value
    assert stats.normalized_auc([5], [70]) == 70 and math.isnan(stats.normalized_auc([], []))
    with pytest.raises(ValueError, match="increase"):
        stats.normalized_auc([0, 0], [1, 2])
    with pytest.raises(ValueError, match="finite"):
        stats.normalized_auc([0, 1], [1, float("nan")])


def test_first_reach_censors_instead_of_dropping():
    assert stats.first_reach([0, 50, 100], [10, 91, 95], 90) == (50, True)
    assert stats.first_reach([0, 50, 100], [10, 80, 85], 90) == (100, False)
    assert stats.first_reach([0, 50, 100], [10, float("nan"), float("nan")], 5) == (0, True)
    assert stats.first_reach([0, 50], [1, float("nan")], 50) == (50, False)
