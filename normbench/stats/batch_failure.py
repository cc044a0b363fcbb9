"""Small-batch failure: for one norm, each batch size against that norm's own largest batch size
(one-sided, paired by seed, Holm-corrected), the critical batch size, and its bootstrap interval."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from normbench.stats.corrections import holm
from normbench.stats.paired import PairedResult, paired_comparison, paired_test_rows, snapped_differences

# Enough for the 2.5 % / 97.5 % percentiles of a statistic that takes a handful of values (the
# batch sizes); each resample reruns every test of the norm, so this is the report's main cost.
DEFAULT_INTERVAL_RESAMPLES = 1000
# Below this many complete seeds most resamples hold two or three distinct seeds, on which no
# test can be significant, so the "interval" would describe the resampling, not the norm.
MIN_SEEDS_FOR_INTERVAL = 5
NO_FAILURE = 0  # encodes "no batch size is significantly worse" in intervals and distributions


@dataclass(frozen=True)
class BatchFailure:
    """Where one norm starts failing as the batch shrinks.

    ``comparisons[i]`` tests ``batch_sizes[i]`` against ``reference_batch_size`` (the largest
    batch size with results) with alternative "less" - worse at the smaller batch - paired by seed;
    ``p_holm``/``significant`` are Holm-corrected over this norm's comparisons.
    ``critical_batch_size`` is the largest batch size that is significantly worse (None: none is).
    ``interval`` is the (1 - alpha) percentile bootstrap interval of the critical batch size from
    resampling seeds, with 0 meaning "no batch size worse"; None with ``interval_note`` saying why
    when it is not estimable. ``distribution`` lists (value, fraction of resamples).
    """

    reference_batch_size: int
    batch_sizes: tuple[int, ...]
    comparisons: tuple[PairedResult, ...]
    p_holm: tuple[float, ...]
    significant: tuple[bool, ...]
    critical_batch_size: int | None
    interval: tuple[int, int] | None
    interval_note: str
    n_resamples: int
    alpha: float
    distribution: tuple[tuple[int, float], ...] = field(default=())


def critical_batch_size(
    batch_sizes: Any,
    values: Any,
    rng: np.random.Generator,
    *,
    alpha: float = 0.05,
    n_resamples: int = DEFAULT_INTERVAL_RESAMPLES,
    min_seeds_for_interval: int = MIN_SEEDS_FOR_INTERVAL,
) -> BatchFailure:
    """Critical batch size of one norm from ``values`` (shape ``(m, n_seeds)``) at ``batch_sizes`` (m,).

    Column j holds seed j at every batch size (pairing by seed: same initial weights); NaN marks a
    seed without a result there (callers count diverged runs as 0 accuracy first). Each comparison
    uses the seeds present at both batch sizes and the same rule as the report's other paired
    tests (:func:`normbench.stats.paired_comparison`, alternative "less").

    The interval resamples the seeds that are complete at every batch size (with replacement,
    ``n_resamples`` times; smoothed, see :func:`_bootstrap`), recomputes the whole procedure -
    tests, Holm, maximum - on each resample and takes percentiles of the result (0 = no batch size
    worse on that resample). Estimable only when some batch size is significantly worse and at
    least ``min_seeds_for_interval`` seeds are complete.
    """
    sizes = np.asarray(batch_sizes, dtype=int)
    table = np.asarray(values, dtype=float)
    if table.ndim != 2 or table.shape[0] != sizes.size:
        raise ValueError(f"values must have shape (len(batch_sizes), n_seeds), got {table.shape}")
    if sizes.size < 1 or len(set(sizes.tolist())) != sizes.size:
        raise ValueError("batch_sizes must be non-empty and distinct")
    order = np.argsort(sizes)
    sizes, table = sizes[order], table[order]
    has_data = np.isfinite(table).any(axis=1)
    if not has_data.any():
        raise ValueError("no batch size has any result")
    reference = int(np.flatnonzero(has_data)[-1])
    smaller = [i for i in range(reference) if has_data[i]]

    comparisons = []
    for i in smaller:
        both = np.isfinite(table[i]) & np.isfinite(table[reference])
        comparisons.append(paired_comparison(table[i, both], table[reference, both], alternative="less"))
    p_holm = holm([c.p_value for c in comparisons]) if comparisons else np.array([])
    significant = [bool(np.isfinite(p) and p < alpha) for p in p_holm]
    worse = [int(sizes[i]) for i, s in zip(smaller, significant) if s]
    critical = max(worse) if worse else None

    interval, note, distribution = None, "", ()
    complete = np.flatnonzero(np.all(np.isfinite(table[smaller + [reference]]), axis=0))
    if not smaller:
        note = "only one batch size"
    elif critical is None:
        # Nothing failed, so there is no critical batch size to put an interval around (and the
        # resampling, the report's most expensive step, is skipped).
        note = "no batch size is significantly worse"
    elif complete.size < min_seeds_for_interval:
        note = f"{complete.size} seeds complete at every batch size; an interval needs {min_seeds_for_interval}"
    else:
        draws = _bootstrap(sizes[smaller], table[smaller][:, complete], table[reference, complete], rng,
                           alpha=alpha, n_resamples=n_resamples)
        low, high = np.quantile(draws, [alpha / 2, 1 - alpha / 2], method="inverted_cdf")
        interval = (int(low), int(high))
        values_seen, counts = np.unique(draws, return_counts=True)
        distribution = tuple((int(v), float(c) / draws.size) for v, c in zip(values_seen, counts))
    return BatchFailure(
        reference_batch_size=int(sizes[reference]),
        batch_sizes=tuple(int(sizes[i]) for i in smaller),
        comparisons=tuple(comparisons),
        p_holm=tuple(float(p) for p in p_holm),
        significant=tuple(significant),
        critical_batch_size=critical,
        interval=interval,
        interval_note=note,
        n_resamples=int(n_resamples) if interval else 0,
        alpha=alpha,
        distribution=distribution,
    )


def _bootstrap(sizes: np.ndarray, smaller: np.ndarray, reference: np.ndarray, rng: np.random.Generator, *,
               alpha: float, n_resamples: int) -> np.ndarray:
    """Critical batch size on each of ``n_resamples`` smoothed seed resamples (0 = none).

    A plain bootstrap draws some seeds several times; a rank test then counts the copies as
    independent pairs of the same sign, and a one-sided Wilcoxon on six copies of two seeds gives
    p = 1/64 for a difference of a tenth of a point - resamples would "fail" at batch sizes where
    nothing happens. The shrunk smoothed bootstrap (Silverman 1986, sec. 6.4.1; Silverman & Young
    1987) adds kernel noise to each drawn difference, bandwidth by Silverman's rule and rescaled so
    the variance is that of the data, which treats the seeds as a sample from a continuous
    population rather than as six atoms. Seeds are drawn jointly for all batch sizes (pairing).
    """
    n = reference.size
    draws = rng.integers(0, n, size=(n_resamples, n))
    p = np.empty((n_resamples, sizes.size))
    for j in range(sizes.size):
        d = snapped_differences(smaller[j], reference)
        p[:, j] = paired_test_rows(_smoothed(d, draws, rng), alternative="less")["p_value"]
    significant = holm(p) < alpha
    return np.where(significant, sizes[None, :], NO_FAILURE).max(axis=1)


def _smoothed(d: np.ndarray, draws: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``d[draws]`` plus Gaussian kernel noise, shrunk so each resample keeps the data's variance."""
    resampled = d[draws]
    spread = float(np.std(d, ddof=1)) if d.size > 1 else 0.0
    if spread == 0:
        return resampled  # a constant difference: nothing to smooth, and nothing spurious to fear
    q75, q25 = np.percentile(d, [75, 25])
    scale = min(spread, (q75 - q25) / 1.34) or spread
    bandwidth = 0.9 * scale * d.size ** (-1 / 5)  # Silverman's rule of thumb
    centre = float(np.mean(d))
    noise = rng.standard_normal(resampled.shape) * bandwidth
    return centre + (resampled - centre + noise) / np.sqrt(1 + bandwidth**2 / spread**2)


def describe_interval(interval: tuple[int, int] | None) -> str:
    """Human text of an interval: ``[4, 16]``, ``[none, 8]``; ``n/a`` when not estimable."""
    if interval is None:
        return "n/a"
    return "[" + ", ".join("none" if v == NO_FAILURE else str(v) for v in interval) + "]"


def failure_summary(result: BatchFailure) -> dict[str, Any]:
    """Plain dict of a :class:`BatchFailure` for report contexts and JSON."""
    return {
        "reference_batch_size": result.reference_batch_size,
        "critical_batch_size": result.critical_batch_size,
        "interval": list(result.interval) if result.interval else None,
        "interval_text": describe_interval(result.interval),
        "interval_note": result.interval_note,
        "n_resamples": result.n_resamples,
        "alpha": result.alpha,
        "distribution": [[v, f] for v, f in result.distribution],
        "rows": [
            {"batch_size": b, **c.to_dict(), "p_holm": p, "significant": s}
            for b, c, p, s in zip(result.batch_sizes, result.comparisons, result.p_holm, result.significant)
        ],
    }

