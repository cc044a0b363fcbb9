"""Unpaired comparisons (two independent groups, e.g. two result sets without matching seeds) by a
declared test, Welch's t or Mann-Whitney U, and the ratio of medians with a bootstrap interval
(throughput changes)."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as sps

from normbench.stats.conventions import PlainRecord, check_choice, finite_values
from normbench.stats.summary import DEFAULT_RESAMPLES

UNPAIRED_TESTS = ("welch", "mann_whitney")


@dataclass(frozen=True)
class UnpairedResult(PlainRecord):
    """Outcome of comparing group ``a`` with group ``b`` (independent samples), two-sided.

    ``test`` is ``"welch t-test"``, ``"mann-whitney"`` or ``"none"``. ``effect_size`` is Cohen's d
    (pooled SD) for Welch and the rank-biserial correlation 2U/(n_a n_b) - 1 (= Cliff's delta,
    P(a > b) - P(a < b)) for Mann-Whitney; positive when ``a`` tends to exceed ``b``.
    """

    test: str
    statistic: float
    p_value: float
    effect_size: float
    effect_name: str
    mean_difference: float
    median_difference: float
    n_a: int
    n_b: int
    reason: str


def cohens_d(a: Any, b: Any) -> float:
    """Cohen's d of ``a`` vs ``b`` (shapes ``(n_a,)``, ``(n_b,)``) with the pooled SD (ddof 1 each).

    NaN when a group has fewer than 2 values or the pooled SD is zero.
    """
    x, y = finite_values(a, "a"), finite_values(b, "b")
    if x.size < 2 or y.size < 2:
        return math.nan
    pooled = ((x.size - 1) * np.var(x, ddof=1) + (y.size - 1) * np.var(y, ddof=1)) / (x.size + y.size - 2)
    return float((x.mean() - y.mean()) / math.sqrt(pooled)) if pooled > 0 else math.nan


def cliffs_delta(a: Any, b: Any) -> float:
    """P(a > b) - P(a < b) over all pairs (Cliff 1993); equals 2U/(n_a n_b) - 1 of Mann-Whitney."""
    x, y = finite_values(a, "a"), finite_values(b, "b")
    if x.size == 0 or y.size == 0:
        return math.nan
    return float(np.mean(np.sign(x[:, None] - y[None, :])))


def unpaired_comparison(a: Any, b: Any, *, test: str) -> UnpairedResult:
    """Compare independent groups ``a`` and ``b`` (shapes ``(n_a,)``, ``(n_b,)``), two-sided, by the declared ``test``.

    ``"welch"``: Welch's t-test (scipy.stats.ttest_ind, equal_var=False) with Cohen's d;
    ``"mann_whitney"``: Mann-Whitney U (scipy.stats.mannwhitneyu) with Cliff's delta. The caller
    declares the test; nothing here looks at the data to choose one (a normality pre-test on a few
    values has almost no power and changes the error rate of the test finally used, see
    docs/statistics.md). Fewer than 2 values in a group: not testable (NaN p). Identical constant
    groups: p = 1.
    """
    check_choice("test", test, UNPAIRED_TESTS)
    x, y = finite_values(a, "a"), finite_values(b, "b")
    base = dict(
        mean_difference=float(x.mean() - y.mean()) if x.size and y.size else math.nan,
        median_difference=float(np.median(x) - np.median(y)) if x.size and y.size else math.nan,
        n_a=int(x.size), n_b=int(y.size),
    )
    if x.size < 2 or y.size < 2:
        return UnpairedResult("none", math.nan, math.nan, math.nan, "none",
                              reason=f"{x.size} and {y.size} values; each group needs at least 2", **base)
    if np.all(x == x[0]) and np.all(y == x[0]):
        return UnpairedResult("none", math.nan, 1.0, 0.0, "none", reason="all values are equal", **base)
    if test == "welch":
        if np.ptp(x) == 0 and np.ptp(y) == 0:
            return UnpairedResult("welch t-test", math.nan, math.nan, math.nan, "d",
                                  reason="both groups constant: t is undefined", **base)
        with warnings.catch_warnings():
            # scipy flags an exactly constant group as "nearly identical" data; its variance is then
            # exactly 0 and Welch's t (the other group's spread alone) exact, so the warning is noise.
            if np.ptp(x) == 0 or np.ptp(y) == 0:
                warnings.filterwarnings("ignore", "Precision loss occurred", RuntimeWarning)
            result = sps.ttest_ind(x, y, equal_var=False)
        return UnpairedResult("welch t-test", float(result.statistic), float(result.pvalue), cohens_d(x, y), "d",
                              reason="", **base)
    result = sps.mannwhitneyu(x, y, alternative="two-sided")
    return UnpairedResult("mann-whitney", float(result.statistic), float(result.pvalue), cliffs_delta(x, y),
                          "rank-biserial r", reason="", **base)


def median_ratio(new: Any, base: Any, rng: np.random.Generator, *, confidence: float = 0.95,
                 n_resamples: int = DEFAULT_RESAMPLES) -> tuple[float, float, float]:
    """``median(new) / median(base)`` (positive values) with a percentile bootstrap interval.

    Each group is resampled independently (scipy.stats.bootstrap with two samples), as runs of two
    result sets are independent measurements. Returns ``(ratio, low, high)``; the interval is NaN
    when a group has fewer than 2 values and collapses to the ratio when both groups are constant.
    """
    x, y = finite_values(new, "new"), finite_values(base, "base")
    if x.size == 0 or y.size == 0:
        return math.nan, math.nan, math.nan
    if np.any(x <= 0) or np.any(y <= 0):
        raise ValueError("throughputs and times must be positive")
    ratio = float(np.median(x) / np.median(y))
    if x.size < 2 or y.size < 2:
        return ratio, math.nan, math.nan
    if np.ptp(x) == 0 and np.ptp(y) == 0:
        return ratio, ratio, ratio

    def statistic(first: np.ndarray, second: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.median(first, axis=axis) / np.median(second, axis=axis)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sps.DegenerateDataWarning)
        result = sps.bootstrap((x, y), statistic, n_resamples=n_resamples, vectorized=True,
                               confidence_level=confidence, method="percentile", rng=rng)
    return ratio, float(result.confidence_interval.low), float(result.confidence_interval.high)
