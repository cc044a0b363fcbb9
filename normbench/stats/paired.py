"""Paired comparisons by seed (a[i] and b[i] from the same seed): the differences with floating-point
noise merged away, their effect size and share of seeds better, and the paired test declared in
advance (no normality pre-test) - Student's paired t-test or the sign-flip permutation test of the
mean difference, with a direction from the mean."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as sps

from normbench.stats.conventions import ALTERNATIVES, PlainRecord, check_choice, finite_values
from normbench.stats.permutation import DEFAULT_PERMUTATIONS, EXACT_MAX_N, sign_flip_min_p, sign_flip_p_rows

# Accuracies are multiples of 1/n_test, so differences that are equal in exact arithmetic come out
# a few ulps apart in floating point (0.9722 - 0.9444 != 0.9583 - 0.9305). Left alone, those ulps
# turn a constant difference into a "sample" with a tiny spread: an astronomically large t and d_z
# instead of the constant shift it is. Differences closer than this (relative to the data's
# magnitude) are therefore merged, which removes rounding noise and nothing measurable.
_SNAP_RELATIVE = 1e-9


def snapped_differences(a: Any, b: Any) -> np.ndarray:
    """Paired differences ``a - b`` (shapes ``(n,)``) with floating-point noise merged away.

    Differences within ``1e-9 x max(1, max|a|, max|b|)`` of zero become exactly 0, and
    differences within that tolerance of each other (sorted neighbours) become exactly equal -
    the member nearest zero stands for the group - so ties and zeros are what they are in exact
    arithmetic. Everything else is returned unchanged.
    """
    a_arr = finite_values(a, "a")
    b_arr = finite_values(b, "b")
    if a_arr.shape != b_arr.shape:
        raise ValueError(f"a and b must have the same length (paired by seed), got {a_arr.size} and {b_arr.size}")
    d = a_arr - b_arr
    if d.size == 0:
        return d
    tolerance = _SNAP_RELATIVE * max(1.0, float(np.max(np.abs(a_arr))), float(np.max(np.abs(b_arr))))
    d[np.abs(d) <= tolerance] = 0.0
    order = np.argsort(d, kind="stable")
    ordered = d[order]
    group = np.concatenate([[0], np.cumsum(np.diff(ordered) > tolerance)])
    snapped = ordered.copy()
    for g in np.unique(group[np.r_[False, group[1:] == group[:-1]]]):
        members = ordered[group == g]
        snapped[group == g] = members[np.argmin(np.abs(members))]
    d[order] = snapped
    return d


def share_of_seeds_better(d: Any) -> float:
    """Share of seeds on which a beats b: paired differences ``d`` (shape ``(n,)``) above 0, zeros half.

    A description of these seeds, not rliable's probability of improvement (which estimates
    P(X > Y) for independent runs, with an interval); hence the plain name.
    """
    diffs = finite_values(d, "d")
    if diffs.size == 0:
        return math.nan
    return float(np.mean((diffs > 0) + 0.5 * (diffs == 0)))


def cohens_dz(d: Any) -> float:
    """Cohen's d_z of paired differences ``d`` (shape ``(n,)``): mean(d) / std(d, ddof=1).

    NaN for n < 2 or zero spread (the standardized effect is then undefined, not infinite).
    """
    diffs = finite_values(d, "d")
    if diffs.size < 2:
        return math.nan
    spread = float(np.std(diffs, ddof=1))
    return float(np.mean(diffs)) / spread if spread > 0 else math.nan


PAIRED_TESTS = ("t", "permutation")
TEST_NAMES = {"t": "paired t-test", "permutation": "sign-flip permutation"}


@dataclass(frozen=True)
class PairedTest(PlainRecord):
    """One declared paired test of ``a`` against ``b`` (d = a - b, paired by seed).

    ``statistic`` is t for the t-test and the mean difference for the permutation test.
    ``direction`` is the sign of ``mean_difference`` (+1: a above b, -1: below, 0: equal) and is
    what a verdict must follow. ``effect_size`` is Cohen's d_z = mean / sd of d (NaN when sd = 0).
    ``min_p`` is the smallest p-value this test can return at this n (a permutation test on 3
    pairs cannot go below 0.25 two-sided); ``p_resolution`` the spacing of attainable p-values
    (1/2^n exact, 1/(1 + resamples) Monte Carlo; 0 for the t-test). ``reason`` explains NaN or
    limiting cases.
    """

    test: str
    alternative: str
    statistic: float
    p_value: float
    mean_difference: float
    sd_difference: float
    effect_size: float
    n: int
    direction: int
    min_p: float
    p_resolution: float
    exact: bool
    reason: str = ""


def paired_t_rows(d: Any, alternative: str = "two-sided") -> tuple[np.ndarray, np.ndarray]:
    """Paired t-test (one-sample t on the differences) for each row of ``d`` (shape ``(rows, n)``).

    Returns (t, p) of shape ``(rows,)``, equal to scipy.stats.ttest_1samp for rows with spread.
    Rows without spread get the limit of the test rather than a warning: all zero -> t NaN, p 1;
    a constant non-zero difference -> t = +/-inf with p 0 (two-sided and in its direction) or 1 (the
    other direction), so a consistent shift on every seed is detected. n < 2: NaN.
    """
    check_choice("alternative", alternative, ALTERNATIVES)
    diffs = np.atleast_2d(np.asarray(d, dtype=float))
    rows, n = diffs.shape
    statistic, p_value = np.full(rows, np.nan), np.full(rows, np.nan)
    if n < 2:
        return statistic, p_value
    spread = np.ptp(diffs, axis=1) > 0
    if spread.any():
        result = sps.ttest_1samp(diffs[spread], 0.0, axis=1, alternative=alternative)
        statistic[spread], p_value[spread] = result.statistic, result.pvalue
    sign = np.sign(diffs[~spread, 0])
    statistic[~spread] = np.select([sign > 0, sign < 0], [np.inf, -np.inf], np.nan)
    if alternative == "two-sided":
        p_value[~spread] = np.where(sign == 0, 1.0, 0.0)
    else:
        wanted = 1.0 if alternative == "greater" else -1.0
        p_value[~spread] = np.where(sign == wanted, 0.0, 1.0)
    return statistic, p_value


def paired_test(
    a: Any,
    b: Any,
    *,
    test: str = "t",
    alternative: str = "two-sided",
    rng: np.random.Generator | None = None,
    n_resamples: int = DEFAULT_PERMUTATIONS,
) -> PairedTest:
    """Test ``a`` against ``b`` (shapes ``(n,)``, paired by position = seed) with the declared ``test``.

    ``test="t"``: paired t-test (scipy.stats.ttest_rel). ``test="permutation"``: sign-flip test
    of the mean difference (:func:`normbench.stats.permutation.sign_flip_p_rows`), exact for
    n <= 16, Monte Carlo with ``rng`` beyond. ``alternative``: "two-sided", "greater" (a above b)
    or "less". Differences are snapped first (floating-point noise merged, see
    :func:`snapped_differences`). n < 2: not testable, p NaN.
    """
    check_choice("test", test, PAIRED_TESTS)
    check_choice("alternative", alternative, ALTERNATIVES)
    d = snapped_differences(a, b)
    n = int(d.size)
    mean = float(np.mean(d)) if n else math.nan
    exact = test == "t" or n <= EXACT_MAX_N
    base = dict(test=TEST_NAMES[test], alternative=alternative, mean_difference=mean,
                sd_difference=float(np.std(d, ddof=1)) if n >= 2 else math.nan,
                effect_size=cohens_dz(d) if n >= 2 else math.nan, n=n,
                direction=int(np.sign(mean)) if n else 0, exact=exact)
    if n < 2:
        return PairedTest(statistic=math.nan, p_value=math.nan, min_p=math.nan, p_resolution=math.nan,
                          reason=f"{n} paired seed(s); a paired test needs at least 2", **base)
    if test == "t":
        statistic, p = (float(v[0]) for v in paired_t_rows(d[None, :], alternative))
        reason = "constant non-zero difference: no seed-to-seed spread, t is infinite" if math.isinf(statistic) else ""
        return PairedTest(statistic=statistic, p_value=p, min_p=0.0, p_resolution=0.0,
                          reason=reason if np.any(d) else "all paired differences are zero", **base)
    p = float(sign_flip_p_rows(d[None, :], alternative, rng=rng, n_resamples=n_resamples)[0])
    min_p = sign_flip_min_p(n, alternative) if exact else 1.0 / (1 + n_resamples)
    resolution = 2.0**-n * (2 if alternative == "two-sided" else 1) if exact else 1.0 / (1 + n_resamples)
    return PairedTest(statistic=mean, p_value=p, min_p=min_p, p_resolution=resolution,
                      reason="" if np.any(d) else "all paired differences are zero", **base)
