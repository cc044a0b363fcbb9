"""The paired test declared in advance (no normality pre-test): Student's paired t-test or the
sign-flip permutation test of the mean difference, with d_z and a direction from the mean."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats as sps

from normbench.stats.paired import ALTERNATIVES, cohens_dz, snapped_differences
from normbench.stats.permutation import (
    DEFAULT_PERMUTATIONS,
    EXACT_MAX_N,
    sign_flip_min_p,
    sign_flip_p_rows,
)
from normbench.stats.summary import plain_dict

PAIRED_TESTS = ("t", "permutation")
TEST_NAMES = {"t": "paired t-test", "permutation": "sign-flip permutation"}


@dataclass(frozen=True)
class PairedTest:
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

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python dict for report contexts and JSON."""
        return plain_dict(asdict(self))


def paired_t_rows(d: Any, alternative: str = "two-sided") -> tuple[np.ndarray, np.ndarray]:
    """Paired t-test (one-sample t on the differences) for each row of ``d`` (shape ``(rows, n)``).

    Returns (t, p) of shape ``(rows,)``, equal to scipy.stats.ttest_1samp for rows with spread.
    Rows without spread get the limit of the test rather than a warning: all zero -> t NaN, p 1;
    a constant non-zero difference -> t = +/-inf with p 0 (two-sided and in its direction) or 1 (the
    other direction), so a consistent shift on every seed is detected. n < 2: NaN.
    """
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative must be one of {', '.join(ALTERNATIVES)}, got {alternative!r}")
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
    :func:`normbench.stats.snapped_differences`). n < 2: not testable, p NaN.
    """
    if test not in PAIRED_TESTS:
        raise ValueError(f"test must be one of {', '.join(PAIRED_TESTS)}, got {test!r}")
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative must be one of {', '.join(ALTERNATIVES)}, got {alternative!r}")
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
