"""Divergence as its own outcome: per-cell rates with exact (Clopper-Pearson) intervals, exact tests
comparing two rates (Fisher, Barnard), and the declared treatment of diverged runs in accuracy
statistics (``diverged_as``: exclude, zero or worst_rank)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as sps

from normbench.stats.conventions import ALTERNATIVES, PlainRecord, check_choice

DIVERGED_AS = ("exclude", "zero", "worst_rank")
RATE_TESTS = ("fisher", "barnard")


@dataclass(frozen=True)
class DivergenceRate(PlainRecord):
    """``diverged`` of ``total`` runs, the rate and its exact (Clopper-Pearson) ``confidence`` interval."""

    diverged: int
    total: int
    rate: float
    ci_low: float
    ci_high: float
    ci_method: str
    confidence: float


@dataclass(frozen=True)
class DivergenceComparison(PlainRecord):
    """Exact test of equal divergence rates of two cells (a and b); ``rate_difference`` = rate_a - rate_b."""

    test: str
    alternative: str
    p_value: float
    rate_a: float
    rate_b: float
    rate_difference: float
    diverged_a: int
    total_a: int
    diverged_b: int
    total_b: int
    reason: str = ""


def _counts(diverged: int, total: int, name: str) -> tuple[int, int]:
    if int(diverged) != diverged or int(total) != total or not 0 <= diverged <= total:
        raise ValueError(f"{name}: need whole numbers with 0 <= diverged <= total, got {diverged} of {total}")
    return int(diverged), int(total)


def divergence_rate(diverged: int, total: int, *, confidence: float = 0.95) -> DivergenceRate:
    """Divergence rate ``diverged / total`` with its Clopper-Pearson interval (scipy.stats.binomtest).

    Exact: it covers at least ``confidence`` for every true rate, which matters at 3-10 runs where
    0 of 5 diverged still allows a true rate up to 52 %. No runs: NaN with ``ci_method`` "none".
    """
    k, n = _counts(diverged, total, "divergence rate")
    if n == 0:
        return DivergenceRate(0, 0, math.nan, math.nan, math.nan, "none", confidence)
    interval = sps.binomtest(k, n).proportion_ci(confidence_level=confidence, method="exact")
    return DivergenceRate(k, n, k / n, float(interval.low), float(interval.high), "clopper-pearson", confidence)


def compare_divergence(
    diverged_a: int, total_a: int, diverged_b: int, total_b: int, *, test: str = "fisher",
    alternative: str = "two-sided",
) -> DivergenceComparison:
    """Exact test that cells a and b diverge at the same rate (``alternative`` "greater": a more often).

    ``test="fisher"``: Fisher's exact test (conditional on both margins, conservative);
    ``"barnard"``: Barnard's unconditional exact test (scipy.stats.barnard_exact, more power at
    small counts). A cell without runs, or no variation at all (no run or every run diverged in
    both), cannot show a difference: NaN for a missing cell, p = 1 for no variation.
    """
    check_choice("test", test, RATE_TESTS)
    check_choice("alternative", alternative, ALTERNATIVES)
    ka, na = _counts(diverged_a, total_a, "cell a")
    kb, nb = _counts(diverged_b, total_b, "cell b")
    rate_a = ka / na if na else math.nan
    rate_b = kb / nb if nb else math.nan
    base = dict(test=test, alternative=alternative, rate_a=rate_a, rate_b=rate_b, rate_difference=rate_a - rate_b,
                diverged_a=ka, total_a=na, diverged_b=kb, total_b=nb)
    if na == 0 or nb == 0:
        return DivergenceComparison(p_value=math.nan, reason="a cell has no runs", **base)
    if ka + kb in (0, na + nb):
        return DivergenceComparison(p_value=1.0, reason="no variation: the same outcome in every run", **base)
    # Columns are the cells, as barnard_exact compares column proportions (Fisher's odds ratio is
    # the same either way round).
    table = np.array([[ka, kb], [na - ka, nb - kb]])
    if test == "fisher":
        p = sps.fisher_exact(table, alternative=alternative).pvalue
    else:
        p = sps.barnard_exact(table, alternative=alternative).pvalue
    return DivergenceComparison(p_value=float(p), **base)


def accuracy_values(values: Any, diverged: Any, diverged_as: str = "exclude") -> np.ndarray:
    """Per-run values for means, intervals and paired tests under the declared ``diverged_as``.

    ``values`` and the boolean ``diverged`` have the same shape. "zero": a diverged run counts as
    0 accuracy; "exclude" and "worst_rank": it becomes NaN (missing), so accuracy statistics use
    completed runs only and the caller shows the number excluded next to them ("worst_rank" acts
    on rankings alone, see :func:`rank_values`).
    """
    array, mask = _aligned(values, diverged, diverged_as)
    return np.where(mask, 0.0 if diverged_as == "zero" else np.nan, array)


def rank_values(values: Any, diverged: Any, diverged_as: str = "exclude") -> np.ndarray:
    """Per-run values for rankings (Friedman blocks) under the declared ``diverged_as``.

    As :func:`accuracy_values`, except that "worst_rank" makes a diverged run -inf: it ranks below
    every completed run of its block (diverged runs of one block tie for last).
    """
    array, mask = _aligned(values, diverged, diverged_as)
    fill = {"exclude": np.nan, "zero": 0.0, "worst_rank": -np.inf}[diverged_as]
    return np.where(mask, fill, array)


def _aligned(values: Any, diverged: Any, diverged_as: str) -> tuple[np.ndarray, np.ndarray]:
    check_choice("diverged_as", diverged_as, DIVERGED_AS)
    array = np.asarray(values, dtype=float)
    mask = np.asarray(diverged, dtype=bool)
    if array.shape != mask.shape:
        raise ValueError(f"values and diverged must have the same shape, got {array.shape} and {mask.shape}")
    return array, mask
