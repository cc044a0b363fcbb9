"""Equivalence of paired results within a practical margin: two one-sided tests (TOST, Schuirmann
1987) on the paired differences, by the t-test or the sign-flip permutation test."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as sps

from normbench.stats.conventions import PlainRecord, check_choice
from normbench.stats.paired import PAIRED_TESTS, TEST_NAMES, paired_t_rows, snapped_differences
from normbench.stats.permutation import DEFAULT_PERMUTATIONS, sign_flip_p_rows

DEFAULT_MARGIN = 1.0  # accuracy points: smaller differences are not worth choosing a norm for


@dataclass(frozen=True)
class Equivalence(PlainRecord):
    """TOST of |mean(a - b)| < ``margin``: ``p_value`` = max of the two one-sided p-values.

    ``p_value < alpha`` means the mean difference lies within (-margin, +margin) at level alpha.
    ``ci_low``/``ci_high`` is the (1 - 2 alpha) t-interval of the mean difference, the interval
    that TOST by the t-test checks against the margins (it lies inside them exactly when
    the t-TOST p < alpha).
    """

    test: str
    p_value: float
    p_lower: float
    p_upper: float
    margin: float
    mean_difference: float
    ci_low: float
    ci_high: float
    alpha: float
    n: int
    reason: str = ""


def tost_rows(d: Any, margin: float, *, test: str = "t", rng: np.random.Generator | None = None,
              n_resamples: int = DEFAULT_PERMUTATIONS) -> tuple[np.ndarray, np.ndarray]:
    """Both one-sided p-values of TOST for each row of differences ``d`` (shape ``(rows, n)``).

    ``p_lower`` tests H0: mean <= -margin against "greater"; ``p_upper`` tests H0: mean >= +margin
    against "less". The permutation version flips signs of d -/+ margin, which assumes the
    differences are symmetric about the boundary under H0 (as the sign-flip test always does).
    """
    check_choice("test", test, PAIRED_TESTS)
    if not margin > 0:
        raise ValueError(f"margin must be positive, got {margin}")
    diffs = np.atleast_2d(np.asarray(d, dtype=float))
    if test == "t":
        return paired_t_rows(diffs + margin, "greater")[1], paired_t_rows(diffs - margin, "less")[1]
    lower = sign_flip_p_rows(diffs + margin, "greater", rng=rng, n_resamples=n_resamples)
    upper = sign_flip_p_rows(diffs - margin, "less", rng=rng, n_resamples=n_resamples)
    return lower, upper


def equivalence_test(
    a: Any,
    b: Any,
    *,
    margin: float = DEFAULT_MARGIN,
    alpha: float = 0.05,
    test: str = "t",
    rng: np.random.Generator | None = None,
    n_resamples: int = DEFAULT_PERMUTATIONS,
) -> Equivalence:
    """TOST equivalence of ``a`` and ``b`` (shapes ``(n,)``, paired by seed) within +/- ``margin``.

    The t version equals statsmodels' ``ttost_paired(a, b, -margin, margin)``. Differences are
    snapped first, so an exactly constant difference inside the margin is equivalent with p = 0
    and one outside it gives p = 1. n < 2: NaN with a reason.
    """
    check_choice("test", test, PAIRED_TESTS)
    d = snapped_differences(a, b)
    n = int(d.size)
    mean = float(np.mean(d)) if n else math.nan
    if n < 2:
        return Equivalence(TEST_NAMES[test], math.nan, math.nan, math.nan, margin, mean, math.nan,
                           math.nan, alpha, n, f"{n} paired seed(s); equivalence needs at least 2")
    lower, upper = (float(v[0]) for v in tost_rows(d[None, :], margin, test=test, rng=rng, n_resamples=n_resamples))
    half = sps.t.ppf(1 - alpha, n - 1) * float(np.std(d, ddof=1)) / math.sqrt(n)
    return Equivalence(TEST_NAMES[test], max(lower, upper), lower, upper, margin, mean, mean - half, mean + half,
                       alpha, n)
