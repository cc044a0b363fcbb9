"""Verdict vocabulary: direction from the mean, sign conflicts, equivalence within the margin."""

from __future__ import annotations

import math

import pytest

from normbench import stats


@pytest.mark.parametrize(("p", "eq_p", "mean", "effect", "expected"), [
    (0.01, 0.9, +2.0, +1.5, "better"),
    (0.01, 0.9, -2.0, -1.5, "worse"),
    (0.30, 0.01, +0.1, +0.1, "equivalent"),
    (0.30, 0.40, +0.5, +0.3, "inconclusive"),
    (math.nan, math.nan, math.nan, math.nan, "inconclusive"),
    (0.01, 0.9, -2.0, math.nan, "worse"),  # d_z undefined (constant difference): the mean decides
])
def test_classification_table(p, eq_p, mean, effect, expected):
    verdict = stats.classify_comparison(p, eq_p, mean, effect_size=effect)
    assert verdict.direction == expected and verdict.direction in stats.VERDICTS


def test_sign_conflict_is_never_better_or_worse():
    # The case: 11 seeds slightly better, one diverged at -40: mean -2.0, rank effect +0.69.
    verdict = stats.classify_comparison(0.034, 0.9, -2.0, effect_size=0.69)
    assert verdict.direction == "inconclusive" and verdict.sign_conflict and verdict.significant
    assert "disagree" in verdict.reason


def test_significant_but_inside_margin_is_equivalent():
    verdict = stats.classify_comparison(0.001, 0.002, 0.3, effect_size=3.0)
    assert verdict.direction == "equivalent" and verdict.within_margin and verdict.significant


def test_lower_is_better_flips_the_words():
    assert stats.classify_comparison(0.01, 0.9, -2.0, higher_is_better=False).direction == "better"


def test_alpha_is_strict():
    assert stats.classify_comparison(0.05, 0.05, 1.0).direction == "inconclusive"
