"""Independent blocks for a Friedman ranking of norms from per-seed results.

A Friedman test treats its blocks as independent. Blocks of (batch size x seed) are not when the
same seeds recur at every batch size: a seed that happens to suit one norm (its initial weights,
its data order) does so at every batch size, so one lucky seed is counted once per batch size
(pseudo-replication; see docs/statistics.md for the false-positive rates this causes). Averaging
seeds within each batch size does not remove that shared component either. Two constructions
that are independent:

* :func:`seed_blocks` - one block per seed: the norm's rank within each condition (batch size,
  model, dataset) averaged over the conditions that seed ran. Seeds are independent draws, so
  these blocks are, whatever the correlation across conditions.
* :func:`condition_blocks` - one block per condition, the seed mean: independent only when the
  conditions do not share seeds (each batch size run with its own seeds) or a seed has no
  norm-specific effect.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as sps


@dataclass(frozen=True)
class Blocks:
    """Friedman input: ``values`` of shape ``(n_blocks, k)``, higher is better, one row per block.

    ``kind`` is "seed" or "condition"; ``dropped`` counts blocks left out for missing norms.
    For seed blocks ``values`` are negated mean ranks (so the best norm, with the smallest mean
    rank, has the highest value).
    """

    values: np.ndarray
    kind: str
    dropped: int

    @property
    def n_blocks(self) -> int:
        """Number of independent blocks (rows)."""
        return int(self.values.shape[0])


def _table(values: Any) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim != 3:
        raise ValueError(f"values must have shape (n_conditions, k, n_seeds), got {array.shape}")
    if np.any(array == np.inf):
        raise ValueError("values contain +inf; diverged runs are -inf (worst rank), 0 or NaN (excluded)")
    return array


def seed_blocks(values: Any) -> Blocks:
    """One block per seed from ``values`` of shape ``(n_conditions, k, n_seeds)``.

    Within each (condition, seed) the k norms are ranked (1 = highest, ties averaged, -inf last);
    a (condition, seed) missing a norm (NaN) is left out of that seed's average. A seed without
    any complete condition is dropped. Returns the negated mean ranks, shape ``(kept seeds, k)``.
    """
    array = _table(values)
    complete = ~np.isnan(array).any(axis=1)  # (n_conditions, n_seeds)
    ranks = sps.rankdata(-np.nan_to_num(array, nan=0.0), axis=1)  # NaN columns are masked out below
    counts = complete.sum(axis=0)
    totals = np.where(complete[:, None, :], ranks, 0.0).sum(axis=0)  # (k, n_seeds)
    keep = counts > 0
    mean_ranks = (totals[:, keep] / counts[keep]).T
    return Blocks(values=-mean_ranks, kind="seed", dropped=int((~keep).sum()))


def condition_blocks(values: Any) -> Blocks:
    """One block per condition from ``values`` of shape ``(n_conditions, k, n_seeds)``: the seed means.

    NaN runs are left out of a mean; -inf (a diverged run ranked worst) makes the mean -inf. A
    condition where some norm has no value at all is dropped. Valid for Friedman only when the
    conditions share no seeds (see the module docstring).
    """
    array = _table(values)
    present = ~np.isnan(array)
    counts = present.sum(axis=2)
    with np.errstate(invalid="ignore"):
        means = np.where(present, array, 0.0).sum(axis=2) / np.maximum(counts, 1)
    keep = (counts > 0).all(axis=1)
    return Blocks(values=means[keep], kind="condition", dropped=int((~keep).sum()))
