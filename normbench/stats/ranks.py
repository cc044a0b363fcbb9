"""More than two norms at once: ranks within blocks, the Friedman test, Nemenyi post-hoc p-values
and the critical difference with its cliques (Demsar 2006, sections 3.2.2 and 3.2.3)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats as sps

from normbench.stats.summary import plain_dict


@dataclass(frozen=True)
class FriedmanResult:
    """Friedman test over ``n_blocks`` complete blocks of ``k`` treatments (norms).

    ``average_ranks`` follow the input's column order, rank 1 = best (highest value), ties
    averaged. ``statistic`` is the tie-corrected chi-square of scipy.stats.friedmanchisquare (equal
    to Demsar's chi^2_F when no block has ties); ``p_value`` its chi-square p-value with k - 1
    degrees of freedom. ``reason`` explains NaN results.
    """

    statistic: float
    p_value: float
    average_ranks: tuple[float, ...]
    n_blocks: int
    k: int
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python dict for report contexts and JSON."""
        return plain_dict(asdict(self))


def block_ranks(values: Any) -> np.ndarray:
    """Ranks within each block (row) of ``values`` (shape ``(n_blocks, k)``): 1 = highest, ties averaged."""
    array = np.asarray(values, dtype=float)
    if array.ndim != 2:
        raise ValueError(f"values must have shape (n_blocks, k), got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError("values contain NaN or inf; keep complete blocks only (failures as 0 accuracy)")
    return sps.rankdata(-array, axis=1)


def friedman(values: Any) -> FriedmanResult:
    """Friedman test of ``values`` (shape ``(n_blocks, k)``, higher is better, complete blocks).

    Needs k >= 3 treatments and n >= 2 blocks (a single block has no replication); NaN with a
    reason otherwise. When every block ties completely the ranks carry no information: statistic 0,
    p 1.
    """
    array = np.asarray(values, dtype=float)
    ranks = block_ranks(array) if array.size else np.empty((0, array.shape[1] if array.ndim == 2 else 0))
    n_blocks, k = ranks.shape
    average = tuple(float(r) for r in ranks.mean(axis=0)) if n_blocks else tuple(math.nan for _ in range(k))
    if k < 3 or n_blocks < 2:
        why = f"needs at least 3 norms and 2 complete blocks, got {k} and {n_blocks}"
        return FriedmanResult(math.nan, math.nan, average, n_blocks, k, why)
    if np.all(ranks == ranks[:, :1]):
        return FriedmanResult(0.0, 1.0, average, n_blocks, k, "every block ties completely")
    result = sps.friedmanchisquare(*array.T)
    return FriedmanResult(float(result.statistic), float(result.pvalue), average, n_blocks, k)


def nemenyi(average_ranks: Any, n_blocks: int) -> np.ndarray:
    """Nemenyi all-pairs p-values (shape ``(k, k)``) from average ranks over ``n_blocks`` blocks.

    z_ij = |R_i - R_j| / sqrt(k (k + 1) / (6 N)); p_ij = P(Q_{k, inf} > z_ij sqrt 2) with Q the
    studentized range (Demsar 2006, eq. for the critical difference; the same test as
    scikit-posthocs' posthoc_nemenyi_friedman). Diagonal 1.
    """
    ranks = np.asarray(average_ranks, dtype=float)
    k = ranks.size
    if k < 2 or n_blocks < 1:
        return np.full((k, k), np.nan)
    standard_error = math.sqrt(k * (k + 1) / (6.0 * n_blocks))
    z = np.abs(ranks[:, None] - ranks[None, :]) / standard_error
    p = sps.studentized_range.sf(z * math.sqrt(2), k, np.inf)
    p = np.clip(p, 0.0, 1.0)
    np.fill_diagonal(p, 1.0)
    return p


def critical_difference(k: int, n_blocks: int, *, alpha: float = 0.05) -> float:
    """Nemenyi critical difference of average ranks: q_alpha sqrt(k (k + 1) / (6 N)).

    q_alpha is the studentized range quantile for k groups and infinite df divided by sqrt 2
    (Demsar 2006, table 5a: 2.569 for k = 4 at alpha 0.05). Two norms whose average ranks differ by
    more than this differ at level ``alpha``. NaN for k < 2 or no blocks.
    """
    if k < 2 or n_blocks < 1:
        return math.nan
    q_alpha = sps.studentized_range.ppf(1 - alpha, k, np.inf) / math.sqrt(2)
    return float(q_alpha * math.sqrt(k * (k + 1) / (6.0 * n_blocks)))


def cd_cliques(average_ranks: Any, cd: float) -> list[list[int]]:
    """Groups of treatments not significantly different, as a CD diagram draws them (bars).

    Treatments are sorted by average rank; each maximal run whose ranks span less than ``cd``
    (not contained in a longer run) with at least two members is one clique. Returns lists of
    column indices in rank order.
    """
    ranks = np.asarray(average_ranks, dtype=float)
    if not math.isfinite(cd) or ranks.size < 2:
        return []
    order = [int(i) for i in np.argsort(ranks, kind="stable")]
    cliques: list[list[int]] = []
    last_end = -1
    for start in range(len(order)):
        end = start
        while end + 1 < len(order) and ranks[order[end + 1]] - ranks[order[start]] < cd:
            end += 1
        if end > start and end > last_end:
            cliques.append(order[start:end + 1])
            last_end = end
    return cliques
