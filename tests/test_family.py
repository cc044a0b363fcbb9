"""normbench.family: one family corrected together, counted once per hypothesis, and the verdicts it allows."""

from __future__ import annotations

import math

import numpy as np
import pytest

from normbench import stats
from normbench.analysis import comparison_row
from normbench.analysis_config import AnalysisConfig
from normbench.family import Family, finish_comparison, register_comparison


def _holm_by_hand(p: list[float]) -> list[float]:
    order = np.argsort(p)
    out, running = [0.0] * len(p), 0.0
    for i, index in enumerate(order):
        running = max(running, min(1.0, p[index] * (len(p) - i)))
        out[index] = running
    return out


def test_holm_over_the_whole_family_with_shared_keys_counted_once():
    family = Family("verdicts", "holm", 0.05)
    rows = [{} for _ in range(5)]
    family.add("a", "difference", 0.01, rows[0])
    family.add("b", "difference", 0.04, rows[1])
    family.add("a", "difference", 0.01, rows[2])  # the same pair seen from the glance: one hypothesis
    family.add("c", "drop", 0.03, rows[3])
    family.add("d", "divergence", math.nan, rows[4])  # not testable: not part of m
    family.adjust()
    expected = _holm_by_hand([0.01, 0.04, 0.03])  # by hand: 0.03, 0.06, 0.06
    assert expected == pytest.approx([0.03, 0.06, 0.06])
    assert [rows[i]["p_adjusted"] for i in (0, 1, 3)] == pytest.approx(expected)
    assert rows[2]["p_adjusted"] == rows[0]["p_adjusted"] and math.isnan(rows[4]["p_adjusted"])
    assert family.size == 3 and family.counts() == {"difference": 2, "drop": 1}
    assert all(r["family"] == "verdicts" for r in rows)
    assert family.per_comparison_alpha == pytest.approx(0.05 / 3)
    # One rejection (0.01): raw p below alpha / (m - k) = 0.025 is exactly what Holm rejects.
    assert family.threshold == pytest.approx(0.025)


def test_benjamini_hochberg_and_its_threshold():
    family = Family("verdicts", "bh", 0.05)
    p = [0.001, 0.012, 0.02, 0.2]
    rows = [{} for _ in p]
    for i, (value, row) in enumerate(zip(p, rows)):
        family.add(str(i), "difference", value, row)
    family.adjust()
    # By hand: p_(i) m / i = 0.004, 0.024, 0.0267, 0.2 -> monotone from the top: 0.004, 0.024, 0.0267, 0.2.
    assert [r["p_adjusted"] for r in rows] == pytest.approx([0.004, 0.024, 0.08 / 3, 0.2])
    assert family.threshold == pytest.approx(0.05 * 3 / 4)  # three rejections of four
    rejected = [value < family.threshold for value in p]
    assert rejected == [r["p_adjusted"] < 0.05 for r in rows]


def test_unknown_kind_and_threshold_before_adjusting_are_errors():
    family = Family("verdicts", "holm", 0.05)
    with pytest.raises(ValueError, match="unknown hypothesis kind"):
        family.add("x", "anything", 0.1, {})
    with pytest.raises(RuntimeError, match="adjust"):
        family.threshold  # noqa: B018 - the property raises


def test_finish_comparison_direction_comes_from_the_mean_and_power_from_the_level():
    analysis = AnalysisConfig()
    family = Family("verdicts", "holm", 0.05)
    worse = comparison_row([80.0, 81.0, 79.5, 80.5], [90.0, 90.5, 89.0, 91.0], analysis)
    same = comparison_row([90.0, 90.2, 89.9, 90.1], [90.1, 90.0, 90.0, 90.0], analysis)
    noisy = comparison_row([80.0, 95.0, 70.0], [85.0, 88.0, 79.0], analysis)
    for key, row in (("worse", worse), ("same", same), ("noisy", noisy)):
        register_comparison(family, key, row)
    family.adjust()
    for row in (worse, same, noisy):
        finish_comparison(row, family, analysis)
    assert family.size == 6 and worse["direction"] == "worse" and same["direction"] == "equivalent"
    assert noisy["direction"] == "inconclusive"
    level = 0.05 / 6
    assert noisy["level"] == pytest.approx(level)
    assert noisy["detectable"] == pytest.approx(
        stats.minimum_detectable_dz(3, alpha=level, power=0.8) * noisy["sd_difference"])
    assert noisy["seeds_for_margin"] == stats.seeds_for_margin(1.0, noisy["sd_difference"], alpha=level)
    assert not noisy["cannot_reach"]


def test_a_sign_flip_test_that_cannot_reach_the_level_says_so():
    analysis = AnalysisConfig(test="permutation")
    family = Family("verdicts", "holm", 0.05)
    row = comparison_row([80.0, 81.0, 79.5], [90.0, 90.5, 89.0], analysis)  # 3 seeds: smallest p 0.25
    register_comparison(family, "pair", row)
    family.adjust()
    finish_comparison(row, family, analysis)
    assert row["min_p"] == pytest.approx(0.25) and row["cannot_reach"] and math.isinf(row["detectable"])
    assert row["direction"] == "inconclusive"
