"""Statistics for normbench reports: pure functions, arrays in, numbers out, no torch.

Every function takes plain NumPy arrays (shapes in the docstrings) and returns numbers or small
frozen dataclasses. Anything that resamples takes an explicit ``numpy.random.Generator``; the
global NumPy RNG is never used, so a report computed twice from the same store is identical.

Conventions shared by the report:

* Values are per-seed results of one cell (model x dataset x norm x batch size x ...), one value
  per seed. Callers decide what a failed run contributes (the report maps diverged runs to
  accuracy 0 and excludes undefined/failed/skipped runs) - these functions never drop values
  silently and reject NaN/inf.
* Paired comparisons pair by position: ``a[i]`` and ``b[i]`` come from the same seed.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats as sps

# scipy's default; with n <= ~10 seeds the resampling itself costs ~2 ms per cell, and more
# resamples keep the Monte Carlo error of the interval ends well below the reported precision.
DEFAULT_RESAMPLES = 9999
NORMALITY_ALPHA = 0.05

# Accuracies are multiples of 1/n_test, so differences that are equal in exact arithmetic come out
# a few ulps apart in floating point (0.9722 - 0.9444 != 0.9583 - 0.9305). Left alone, those ulps
# turn a constant difference into a "sample" with a tiny spread: an astronomically large t and d_z,
# and spurious rank orders in Wilcoxon. Differences closer than this (relative to the data's
# magnitude) are therefore merged, which removes rounding noise and nothing measurable.
_SNAP_RELATIVE = 1e-9


@dataclass(frozen=True)
class CellSummary:
    """Descriptive statistics of one cell's per-seed values, with a 95 % bootstrap CI of the mean.

    ``ci_method`` says how the interval was obtained: ``"BCa"``, ``"percentile"`` (n = 2, or BCa
    degenerate), ``"degenerate"`` (all values equal: the interval is the single value) or
    ``"none"`` (n < 2: NaN interval, nothing to resample).
    """

    n: int
    mean: float
    std: float
    median: float
    iqm: float
    ci_low: float
    ci_high: float
    ci_method: str
    confidence: float

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python dict (floats and ints only) for report contexts and JSON."""
        return _plain(asdict(self))


@dataclass(frozen=True)
class PairedResult:
    """Outcome of a paired comparison of ``a`` against ``b`` (d = a - b, paired by position).

    ``test`` is ``"paired t-test"``, ``"wilcoxon"`` or ``"none"`` (not testable, or no difference
    at all); ``reason`` explains a ``"none"`` or a non-default choice. ``effect_size`` is Cohen's
    d_z for the t-test and the matched-pairs rank-biserial correlation for Wilcoxon; both are
    positive when ``a`` tends to exceed ``b``. ``probability_of_improvement`` is the fraction of
    pairs with a > b, ties counted half. ``normality_p`` is the Shapiro-Wilk p-value on d (NaN
    when it was not computed).
    """

    test: str
    statistic: float
    p_value: float
    effect_size: float
    effect_name: str
    mean_difference: float
    median_difference: float
    n: int
    probability_of_improvement: float
    normality_p: float
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python dict (floats, ints and strings only) for report contexts and JSON."""
        return _plain(asdict(self))


def _plain(mapping: dict[str, Any]) -> dict[str, Any]:
    """Replace NumPy scalars by Python ones so a context stays a plain dict."""
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        if isinstance(value, (np.floating, float)):
            out[key] = float(value)
        elif isinstance(value, (np.integer, int)) and not isinstance(value, bool):
            out[key] = int(value)
        else:
            out[key] = value
    return out


def _as_finite_1d(values: Any, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or inf; decide what a failed run counts as before summarizing")
    return array


def iqm(values: Any) -> float:
    """Interquartile mean of ``values`` (shape ``(n,)``): the mean of the middle 50 %.

    As rliable defines it: ``scipy.stats.trim_mean(values, 0.25)``. NaN for an empty array.
    """
    array = _as_finite_1d(values, "values")
    if array.size == 0:
        return math.nan
    return float(sps.trim_mean(array, 0.25))


def bootstrap_mean_ci(
    values: Any,
    rng: np.random.Generator,
    *,
    confidence: float = 0.95,
    n_resamples: int = DEFAULT_RESAMPLES,
) -> tuple[float, float, str]:
    """Bootstrap confidence interval of the mean of ``values`` (shape ``(n,)``).

    Returns ``(low, high, method)``. BCa (scipy.stats.bootstrap) for n >= 3 with some spread;
    percentile for n = 2 (the jackknife behind BCa's acceleration needs at least 3 values to say
    anything) and as a fallback when scipy reports BCa degenerate; ``(v, v, "degenerate")`` when
    all values are equal (every resample has the same mean); ``(nan, nan, "none")`` for n < 2.
    """
    array = _as_finite_1d(values, "values")
    if array.size < 2:
        return math.nan, math.nan, "none"
    if np.all(array == array[0]):
        return float(array[0]), float(array[0]), "degenerate"
    method = "BCa" if array.size >= 3 else "percentile"
    low, high = _scipy_bootstrap(array, rng, method, confidence, n_resamples)
    if method == "BCa" and not (np.isfinite(low) and np.isfinite(high)):
        low, high = _scipy_bootstrap(array, rng, "percentile", confidence, n_resamples)
        method = "percentile"
    return low, high, method


def _scipy_bootstrap(
    array: np.ndarray, rng: np.random.Generator, method: str, confidence: float, n_resamples: int
) -> tuple[float, float]:
    # scipy warns (DegenerateDataWarning) and returns NaN when BCa cannot be computed; the caller
    # falls back to percentile on NaN, so the warning carries no information for the report.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sps.DegenerateDataWarning)
        result = sps.bootstrap(
            (array,), np.mean, n_resamples=n_resamples, vectorized=True, confidence_level=confidence,
            method=method, rng=rng,
        )
    interval = result.confidence_interval
    return float(interval.low), float(interval.high)


def summarize(
    values: Any,
    rng: np.random.Generator,
    *,
    confidence: float = 0.95,
    n_resamples: int = DEFAULT_RESAMPLES,
) -> CellSummary:
    """Summarize one cell's per-seed values (shape ``(n,)``, finite) into a :class:`CellSummary`.

    n, mean, std (ddof=1; NaN for n < 2), median, IQM and a bootstrap CI of the mean as described
    in :func:`bootstrap_mean_ci`. An empty array gives n = 0 and NaN everywhere.
    """
    array = _as_finite_1d(values, "values")
    n = int(array.size)
    if n == 0:
        return CellSummary(0, math.nan, math.nan, math.nan, math.nan, math.nan, math.nan, "none", confidence)
    low, high, method = bootstrap_mean_ci(array, rng, confidence=confidence, n_resamples=n_resamples)
    return CellSummary(
        n=n,
        mean=float(np.mean(array)),
        std=float(np.std(array, ddof=1)) if n >= 2 else math.nan,
        median=float(np.median(array)),
        iqm=iqm(array),
        ci_low=low,
        ci_high=high,
        ci_method=method,
        confidence=confidence,
    )


def snapped_differences(a: Any, b: Any) -> np.ndarray:
    """Paired differences ``a - b`` (shapes ``(n,)``) with floating-point noise merged away.

    Differences within ``1e-9 x max(1, max|a|, max|b|)`` of zero become exactly 0, and
    differences within that tolerance of each other (sorted neighbours) become exactly equal -
    the member nearest zero stands for the group - so ties and zeros are what they are in exact
    arithmetic. Everything else is returned unchanged.
    """
    a_arr = _as_finite_1d(a, "a")
    b_arr = _as_finite_1d(b, "b")
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


def probability_of_improvement(d: Any) -> float:
    """Fraction of paired differences ``d`` (shape ``(n,)``) above zero, zeros counted half."""
    diffs = _as_finite_1d(d, "d")
    if diffs.size == 0:
        return math.nan
    return float(np.mean((diffs > 0) + 0.5 * (diffs == 0)))


def cohens_dz(d: Any) -> float:
    """Cohen's d_z of paired differences ``d`` (shape ``(n,)``): mean(d) / std(d, ddof=1).

    NaN for n < 2 or zero spread (the standardized effect is then undefined, not infinite).
    """
    diffs = _as_finite_1d(d, "d")
    if diffs.size < 2:
        return math.nan
    spread = float(np.std(diffs, ddof=1))
    return float(np.mean(diffs)) / spread if spread > 0 else math.nan


def rank_biserial(d: Any) -> float:
    """Matched-pairs rank-biserial correlation of differences ``d`` (shape ``(n,)``).

    Kerby's (2014) simple difference formula: (R+ - R-) / (R+ + R-), with R+/R- the sums of
    the ranks of |d| (average ranks for ties) over positive/negative differences. Zero differences
    are discarded first, as in the Wilcoxon test's default ``zero_method="wilcox"``, so effect
    and test use the same pairs. In [-1, 1]; NaN when every difference is zero.
    """
    diffs = _as_finite_1d(d, "d")
    diffs = diffs[diffs != 0]
    if diffs.size == 0:
        return math.nan
    ranks = sps.rankdata(np.abs(diffs))
    r_plus = float(ranks[diffs > 0].sum())
    r_minus = float(ranks[diffs < 0].sum())
    return (r_plus - r_minus) / (r_plus + r_minus)


def paired_comparison(a: Any, b: Any, *, test: str = "auto", alpha_normality: float = NORMALITY_ALPHA) -> PairedResult:
    """Compare ``a`` with ``b`` (shapes ``(n,)``, paired by position = seed), two-sided.

    ``test="auto"`` chooses as autorank does, but on the differences (what the paired t-test
    assumes): Shapiro-Wilk on d = a - b; p >= ``alpha_normality`` -> paired t-test
    (scipy.stats.ttest_rel) with Cohen's d_z, otherwise Wilcoxon signed-rank
    (scipy.stats.wilcoxon, zero differences discarded) with the matched-pairs rank-biserial
    correlation. ``test="t"`` or ``"wilcoxon"`` forces one. Special cases, all without warnings:

    * n < 2: ``test="none"``, p NaN, reason says why.
    * all differences zero: ``test="none"``, p = 1, effect 0 - the two sides are identical.
    * n = 2, or a constant non-zero difference: normality cannot be checked (or d_z would be
      infinite), so auto uses Wilcoxon; the reason records this.
    """
    if test not in ("auto", "t", "wilcoxon"):
        raise ValueError(f"test must be 'auto', 't' or 'wilcoxon', got {test!r}")
    d = snapped_differences(a, b)
    n = int(d.size)
    base = dict(
        mean_difference=float(np.mean(d)) if n else math.nan,
        median_difference=float(np.median(d)) if n else math.nan,
        n=n,
        probability_of_improvement=probability_of_improvement(d),
    )
    if n < 2:
        return PairedResult("none", math.nan, math.nan, math.nan, "none", normality_p=math.nan,
                            reason=f"{n} paired seed(s); a paired test needs at least 2", **base)
    if np.all(d == 0):
        return PairedResult("none", math.nan, 1.0, 0.0, "none", normality_p=math.nan,
                            reason="all paired differences are zero", **base)

    constant = bool(np.all(d == d[0]))
    normality_p = math.nan
    reason = ""
    chosen = test
    if test == "auto":
        if n < 3:
            chosen, reason = "wilcoxon", "normality cannot be checked with fewer than 3 pairs"
        elif constant:
            chosen, reason = "wilcoxon", "constant non-zero difference (d_z undefined)"
        else:
            normality_p = float(sps.shapiro(d).pvalue)
            chosen = "t" if normality_p >= alpha_normality else "wilcoxon"
            if chosen == "wilcoxon":
                reason = f"differences not normal (Shapiro-Wilk p = {normality_p:.3g})"
    if chosen == "t":
        if constant:
            return PairedResult("paired t-test", math.nan, math.nan, math.nan, "d_z", normality_p=normality_p,
                                reason="constant non-zero difference: t is undefined", **base)
        # ttest_1samp on d is ttest_rel(a, b); d is used so the snapped differences are tested.
        result = sps.ttest_1samp(d, 0.0)
        return PairedResult("paired t-test", float(result.statistic), float(result.pvalue), cohens_dz(d), "d_z",
                            normality_p=normality_p, reason=reason, **base)
    result = sps.wilcoxon(d, zero_method="wilcox")
    return PairedResult("wilcoxon", float(result.statistic), float(result.pvalue), rank_biserial(d),
                        "rank-biserial r", normality_p=normality_p, reason=reason, **base)


def holm(p_values: Any) -> np.ndarray:
    """Holm-Bonferroni step-down adjusted p-values for one family (shape ``(m,)`` -> ``(m,)``).

    Sorted ascending, p_(i) is multiplied by (m - i + 1), made monotone by a running maximum and
    capped at 1. NaN entries (untestable comparisons) pass through as NaN and do not count
    towards m: a comparison that was never tested cannot inflate the others' correction.
    """
    p = np.asarray(p_values, dtype=float)
    if p.ndim != 1:
        raise ValueError(f"p_values must be one-dimensional, got shape {p.shape}")
    adjusted = np.full(p.shape, np.nan)
    valid = np.flatnonzero(~np.isnan(p))
    if valid.size == 0:
        return adjusted
    if np.any((p[valid] < 0) | (p[valid] > 1)):
        raise ValueError("p-values must lie in [0, 1]")
    order = valid[np.argsort(p[valid], kind="stable")]
    m = order.size
    stepped = np.maximum.accumulate(p[order] * (m - np.arange(m)))
    adjusted[order] = np.minimum(stepped, 1.0)
    return adjusted


def mean_confidence_band(values: Any, *, confidence: float = 0.95) -> dict[str, np.ndarray]:
    """Mean over runs with a t-interval at every point, for convergence curves.

    ``values`` has shape ``(n_runs, n_points)``; NaN marks a point a run did not record and is
    left out of that point only. Returns arrays of shape ``(n_points,)``: ``mean``, ``low``,
    ``high`` (mean -/+ t_{(1+confidence)/2, n-1} * s / sqrt(n); NaN where n < 2) and ``n``.
    A t-interval rather than a bootstrap: it is deterministic, costs nothing per point, and does
    not undercover at 3-5 seeds the way percentile bootstrap intervals do.
    """
    array = np.asarray(values, dtype=float)
    if array.ndim != 2:
        raise ValueError(f"values must have shape (n_runs, n_points), got {array.shape}")
    counts = np.sum(~np.isnan(array), axis=0)
    safe = np.where(np.isnan(array), 0.0, array)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = safe.sum(axis=0) / counts
        squares = np.where(np.isnan(array), 0.0, (array - mean) ** 2).sum(axis=0)
        std = np.sqrt(squares / (counts - 1))
        t_crit = sps.t.ppf(0.5 + confidence / 2, np.maximum(counts - 1, 1))
        half = np.where(counts >= 2, t_crit * std / np.sqrt(counts), np.nan)
    mean = np.where(counts > 0, mean, np.nan)
    return {"mean": mean, "low": mean - half, "high": mean + half, "n": counts}
