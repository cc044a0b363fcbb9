"""Per-cell descriptive statistics: n, mean, std, median, IQM and an interval of the mean (Student-t,
or BCa bootstrap as an option); mean curves with t bands."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as sps

from normbench.stats.conventions import PlainRecord, check_choice, finite_values

# scipy's default; with n <= ~10 seeds the resampling itself costs ~2 ms per cell, and more
# resamples keep the Monte Carlo error of the interval ends well below the reported precision.
DEFAULT_RESAMPLES = 9999
CI_METHODS = ("t", "bca")


@dataclass(frozen=True)
class CellSummary(PlainRecord):
    """Descriptive statistics of one cell's per-seed values, with an interval of the mean.

    ``ci_method`` says how the interval was obtained: ``"t"`` (Student-t), ``"BCa"``,
    ``"percentile"`` (n = 2, or BCa degenerate), ``"degenerate"`` (all values equal: the interval
    is the single value) or ``"none"`` (n < 2: NaN interval).
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


def iqm(values: Any) -> float:
    """Interquartile mean of ``values`` (shape ``(n,)``): the mean of the middle 50 %.

    As rliable defines it: ``scipy.stats.trim_mean(values, 0.25)``. NaN for an empty array.
    """
    array = finite_values(values, "values")
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
    array = finite_values(values, "values")
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


@dataclass(frozen=True)
class MeanInterval(PlainRecord):
    """An interval of the mean of n values: ``ci_method`` "t", "BCa", "percentile" (BCa at n = 2),
    "degenerate" (all values equal: the interval is that value) or "none" (n < 2: NaN ends)."""

    mean: float
    ci_low: float
    ci_high: float
    n: int
    ci_method: str
    confidence: float


def t_interval_rows(values: Any, *, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Student-t interval of the mean of each row of ``values`` (shape ``(rows, n)``, n >= 2).

    mean -/+ t_{(1 + confidence)/2, n - 1} s / sqrt(n), as scipy.stats.t.interval with scale sem;
    returns (low, high) of shape ``(rows,)``. Exact coverage for normal data at every n.
    """
    array = np.atleast_2d(np.asarray(values, dtype=float))
    n = array.shape[1]
    if n < 2:
        raise ValueError(f"a t-interval needs at least 2 values per row, got {n}")
    mean = array.mean(axis=1)
    half = sps.t.ppf(0.5 + confidence / 2, n - 1) * array.std(axis=1, ddof=1) / math.sqrt(n)
    return mean - half, mean + half


def mean_interval(
    values: Any,
    *,
    confidence: float = 0.95,
    method: str = "t",
    rng: np.random.Generator | None = None,
    n_resamples: int = DEFAULT_RESAMPLES,
) -> MeanInterval:
    """Interval of the mean of ``values`` (shape ``(n,)``, finite) by ``method`` "t" (default) or "bca".

    "t": Student-t, which keeps its nominal coverage on normal data at 3-10 seeds; "bca": the
    BCa bootstrap of :func:`bootstrap_mean_ci` (needs ``rng``), which undercovers badly there
    (docs/statistics.md has the measured coverage) and is kept only as an option. One value: no
    interval ("none"); all values equal: the value itself ("degenerate").
    """
    check_choice("method", method, CI_METHODS)
    array = finite_values(values, "values")
    n = int(array.size)
    mean = float(np.mean(array)) if n else math.nan
    if n < 2:
        return MeanInterval(mean, math.nan, math.nan, n, "none", confidence)
    if np.all(array == array[0]):
        return MeanInterval(mean, float(array[0]), float(array[0]), n, "degenerate", confidence)
    if method == "bca":
        if rng is None:
            raise ValueError("the BCa interval resamples: pass rng=numpy.random.default_rng(seed)")
        low, high, name = bootstrap_mean_ci(array, rng, confidence=confidence, n_resamples=n_resamples)
        return MeanInterval(mean, low, high, n, name, confidence)
    low, high = t_interval_rows(array[None, :], confidence=confidence)
    return MeanInterval(mean, float(low[0]), float(high[0]), n, "t", confidence)


def summarize(
    values: Any,
    rng: np.random.Generator,
    *,
    confidence: float = 0.95,
    n_resamples: int = DEFAULT_RESAMPLES,
    interval: str = "bca",
) -> CellSummary:
    """Summarize one cell's per-seed values (shape ``(n,)``, finite) into a :class:`CellSummary`.

    n, mean, std (ddof=1; NaN for n < 2), median, IQM and an interval of the mean by ``interval``
    ("bca": :func:`bootstrap_mean_ci`; "t": Student-t, what issue 11 makes the report's default -
    see :func:`mean_interval`). An empty array gives n = 0 and NaN everywhere.
    """
    array = finite_values(values, "values")
    n = int(array.size)
    if n == 0:
        return CellSummary(0, math.nan, math.nan, math.nan, math.nan, math.nan, math.nan, "none", confidence)
    ci = mean_interval(array, confidence=confidence, method=interval, rng=rng, n_resamples=n_resamples)
    low, high, method = ci.ci_low, ci.ci_high, ci.ci_method
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
