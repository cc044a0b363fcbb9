"""Small-batch failure of one norm: the critical batch size.

Two definitions live here. :func:`critical_batch_size_beyond_margin` is issue 11's: against a
declared reference batch size, the largest smaller batch size whose drop exceeds a practical
margin with significance, with per-batch drops, their t-intervals and a replication frequency.
:func:`critical_batch_size` is the earlier one (any significant drop against the largest batch
size, with a smoothed-bootstrap percentile "interval"), kept until the report switches.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from normbench.stats.corrections import adjust, holm
from normbench.stats.equivalence import DEFAULT_MARGIN
from normbench.stats.paired import (
    PairedResult,
    paired_comparison,
    paired_test_rows,
    snapped_differences,
)
from normbench.stats.paired_tests import PAIRED_TESTS, TEST_NAMES, paired_t_rows
from normbench.stats.permutation import sign_flip_p_rows
from normbench.stats.summary import plain_dict, t_interval_rows

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



@dataclass(frozen=True)
class BatchDrop:
    """One batch size against the reference: ``drop`` = mean over paired seeds of reference - this.

    ``ci_low``/``ci_high``: two-sided (1 - alpha) t-interval of the drop (NaN below 2 seeds).
    ``p_value``: one-sided test of drop > margin (NaN for batch sizes above the reference, which
    are shown but not part of the family); ``p_adjusted`` corrected over the family.
    """

    batch_size: int
    n: int
    drop: float
    ci_low: float
    ci_high: float
    p_value: float
    p_adjusted: float
    significant: bool


@dataclass(frozen=True)
class MarginCriticalBatchSize:
    """Issue 11's critical batch size of one norm, with the drops behind it.

    ``critical_batch_size``: the largest batch size below ``reference_batch_size`` whose drop
    exceeds ``margin`` significantly (None: none does). ``replication_frequency``: the share of
    bootstrap resamples of the seeds that give the same answer (None counted as an answer) - how
    stable the answer is to the seeds drawn, not a confidence interval; NaN when not computed
    (``note`` says why). ``replication_distribution`` lists (value, share), 0 = none.
    """

    reference_batch_size: int
    margin: float
    alpha: float
    test: str
    correction: str
    drops: tuple[BatchDrop, ...]
    critical_batch_size: int | None
    replication_frequency: float
    replication_distribution: tuple[tuple[int, float], ...]
    n_resamples: int
    note: str

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for report contexts and JSON (drops as a list of row dicts)."""
        out = plain_dict({k: v for k, v in asdict(self).items() if k not in ("drops", "replication_distribution")})
        out["drops"] = [plain_dict(asdict(d)) for d in self.drops]
        out["replication_distribution"] = [[v, f] for v, f in self.replication_distribution]
        return out


def _drop_p_rows(drops: np.ndarray, margin: float, test: str, rng: np.random.Generator | None) -> np.ndarray:
    """One-sided p of H0: drop <= margin for each row of per-seed drops (shape ``(rows, n)``)."""
    if test == "t":
        return paired_t_rows(drops - margin, "greater")[1]
    return sign_flip_p_rows(drops - margin, "greater", rng=rng)


def critical_batch_size_beyond_margin(
    batch_sizes: Any, values: Any, *, reference_batch_size: int | None = None, margin: float = DEFAULT_MARGIN,
    alpha: float = 0.05, test: str = "t", correction: str = "holm", rng: np.random.Generator | None = None,
    n_resamples: int = DEFAULT_INTERVAL_RESAMPLES, min_seeds_for_replication: int = MIN_SEEDS_FOR_INTERVAL,
) -> MarginCriticalBatchSize:
    """Largest batch size whose drop from the declared reference exceeds ``margin`` with significance.

    ``values`` has shape ``(len(batch_sizes), n_seeds)``, column j = seed j at every batch size
    (pairing), NaN = no usable result (map diverged runs first, see
    :func:`normbench.stats.accuracy_values`). ``reference_batch_size`` must be declared in advance
    (default: the largest batch size) - never the best-looking one, which selection biases upward.
    Each smaller batch size is tested one-sided (drop > margin, declared ``test`` "t" or
    "permutation") on the seeds present at both; the family (the smaller batch sizes) is
    corrected by ``correction``. With ``rng``, the replication frequency resamples the seeds
    complete everywhere (at least ``min_seeds_for_replication``) ``n_resamples`` times; the
    permutation test beyond 16 seeds also draws its sign patterns from ``rng`` (required then).
    """
    sizes, table = _sorted_table(batch_sizes, values)
    if test not in PAIRED_TESTS:
        raise ValueError(f"test must be one of {', '.join(PAIRED_TESTS)}, got {test!r}")
    reference = int(sizes[-1]) if reference_batch_size is None else int(reference_batch_size)
    if reference not in sizes.tolist():
        raise ValueError(f"reference_batch_size {reference} is not one of the batch sizes {sizes.tolist()}")
    ref_row = table[sizes.tolist().index(reference)]
    if not np.isfinite(ref_row).any():
        raise ValueError(f"the reference batch size {reference} has no result")
    others = [i for i in range(sizes.size) if sizes[i] != reference]
    family = [i for i in others if sizes[i] < reference]
    raw = {}
    for i in family:
        both = np.isfinite(table[i]) & np.isfinite(ref_row)
        d = snapped_differences(ref_row[both], table[i, both])
        raw[i] = float(_drop_p_rows(d[None, :], margin, test, rng)[0]) if d.size >= 2 else np.nan
    adjusted = dict(zip(family, adjust([raw[i] for i in family], correction))) if family else {}
    drops = tuple(_batch_drop(int(sizes[i]), ref_row, table[i], raw.get(i, np.nan), adjusted.get(i, np.nan), alpha)
                  for i in others)
    significant = [d.batch_size for d in drops if d.significant]
    critical = max(significant) if significant else None
    frequency, distribution, used, note = _replication(
        sizes[family], table[family], ref_row, critical, margin=margin, alpha=alpha, test=test,
        correction=correction, rng=rng, n_resamples=n_resamples, min_seeds=min_seeds_for_replication)
    return MarginCriticalBatchSize(reference, margin, alpha, TEST_NAMES[test], correction, drops, critical,
                                   frequency, distribution, used, note)


def _sorted_table(batch_sizes: Any, values: Any) -> tuple[np.ndarray, np.ndarray]:
    sizes = np.asarray(batch_sizes, dtype=int)
    table = np.asarray(values, dtype=float)
    if table.ndim != 2 or table.shape[0] != sizes.size:
        raise ValueError(f"values must have shape (len(batch_sizes), n_seeds), got {table.shape}")
    if sizes.size < 1 or len(set(sizes.tolist())) != sizes.size:
        raise ValueError("batch_sizes must be non-empty and distinct")
    order = np.argsort(sizes)
    return sizes[order], table[order]


def _batch_drop(size: int, ref_row: np.ndarray, row: np.ndarray, p: float, p_adjusted: float,
                alpha: float) -> BatchDrop:
    both = np.isfinite(row) & np.isfinite(ref_row)
    d = snapped_differences(ref_row[both], row[both])
    low = high = np.nan
    if d.size >= 2:
        low, high = (float(v[0]) for v in t_interval_rows(d[None, :], confidence=1 - alpha))
    mean = float(np.mean(d)) if d.size else np.nan
    return BatchDrop(size, int(d.size), mean, low, high, p, p_adjusted, bool(np.isfinite(p_adjusted) and p_adjusted < alpha))


def _replication(sizes: np.ndarray, table: np.ndarray, ref_row: np.ndarray, critical: int | None, *, margin: float,
                 alpha: float, test: str, correction: str, rng: np.random.Generator | None, n_resamples: int,
                 min_seeds: int) -> tuple[float, tuple[tuple[int, float], ...], int, str]:
    """Share of seed resamples (drawn jointly for all batch sizes) that reproduce ``critical``."""
    if rng is None:
        return np.nan, (), 0, "replication frequency not computed (no rng)"
    if sizes.size == 0:
        return np.nan, (), 0, "no batch size below the reference"
    complete = np.flatnonzero(np.isfinite(table).all(axis=0) & np.isfinite(ref_row))
    if complete.size < min_seeds:
        return np.nan, (), 0, f"{complete.size} seeds complete at every batch size; replication needs {min_seeds}"
    draws = rng.integers(0, complete.size, size=(n_resamples, complete.size))
    p = np.column_stack([
        _drop_p_rows(snapped_differences(ref_row[complete], table[j, complete])[draws], margin, test, rng)
        for j in range(sizes.size)])
    significant = adjust(p, correction) < alpha
    answers = np.where(significant, sizes[None, :], NO_FAILURE).max(axis=1)
    seen, counts = np.unique(answers, return_counts=True)
    distribution = tuple((int(v), float(c) / n_resamples) for v, c in zip(seen, counts))
    frequency = float(np.mean(answers == (critical if critical is not None else NO_FAILURE)))
    return frequency, distribution, n_resamples, ""
