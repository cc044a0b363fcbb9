"""Small-batch failure of one norm: the critical batch size.

Against a declared reference batch size, the largest smaller batch size whose drop exceeds a
practical margin with significance (one-sided test of drop > margin, corrected over the norm's
batch sizes), with per-batch drops, their t-intervals and a replication frequency over seed
resamples.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from normbench.stats.conventions import PlainRecord, check_choice, plain_dict
from normbench.stats.corrections import adjust
from normbench.stats.equivalence import DEFAULT_MARGIN
from normbench.stats.paired import PAIRED_TESTS, TEST_NAMES, paired_t_rows, snapped_differences
from normbench.stats.permutation import sign_flip_p_rows
from normbench.stats.summary import t_interval_rows

# Resamples of the seeds behind the replication frequency; each reruns every test of the norm, so
# this is the report's main cost. Enough to state a share to about +/- 3 points.
DEFAULT_REPLICATION_RESAMPLES = 1000
# Below this many complete seeds most resamples hold two or three distinct seeds, on which no
# test can be significant, so the frequency would describe the resampling, not the norm.
MIN_SEEDS_FOR_REPLICATION = 5
NO_FAILURE = 0  # encodes "no batch size is significantly worse" in replication distributions


@dataclass(frozen=True)
class BatchDrop(PlainRecord):
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
    """The critical batch size of one norm, with the drops behind it.

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
        out["drops"] = [d.to_dict() for d in self.drops]
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
    n_resamples: int = DEFAULT_REPLICATION_RESAMPLES, min_seeds_for_replication: int = MIN_SEEDS_FOR_REPLICATION,
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
    check_choice("test", test, PAIRED_TESTS)
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
