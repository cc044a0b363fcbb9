"""More than two norms at once: ranks within blocks, the Friedman test, Nemenyi and Conover post-hoc
p-values gated by the omnibus test, and the critical difference with its cliques (Demsar 2006,
sections 3.2.2 and 3.2.3; Conover 1999, section 5.8)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats as sps

from normbench.stats.conventions import PlainRecord, check_choice
from normbench.stats.corrections import holm

POST_HOC = ("nemenyi", "conover")


@dataclass(frozen=True)
class FriedmanResult(PlainRecord):
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


def block_ranks(values: Any) -> np.ndarray:
    """Ranks within each block (row) of ``values`` (shape ``(n_blocks, k)``): 1 = highest, ties averaged.

    -inf is allowed and ranks last (a diverged run under ``diverged_as="worst_rank"``); NaN and
    +inf are rejected - keep complete blocks only.
    """
    array = np.asarray(values, dtype=float)
    if array.ndim != 2:
        raise ValueError(f"values must have shape (n_blocks, k), got {array.shape}")
    if np.any(np.isnan(array)) or np.any(array == np.inf):
        raise ValueError("values contain NaN or +inf; keep complete blocks only (diverged runs as -inf or 0)")
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


def conover(values: Any) -> np.ndarray:
    """Conover's all-pairs p-values (shape ``(k, k)``) after a Friedman test on ``values`` (``(n_blocks, k)``).

    With rank sums R_j and A1 the sum of all squared ranks, pair (i, j) has
    t = |R_i - R_j| / sqrt(2 (b A1 - sum R_j^2) / ((b - 1)(k - 1))) on (b - 1)(k - 1) degrees of
    freedom (Conover 1999, sec. 5.8; scikit-posthocs' posthoc_conover_friedman without adjustment).
    Unadjusted: correct them over the k (k - 1) / 2 pairs (:func:`rank_norms` uses Holm). When every
    block ranks the norms identically the denominator is 0: differing pairs get p 0. Diagonal 1.
    """
    ranks = block_ranks(values)
    b, k = ranks.shape
    if k < 2 or b < 2:
        return np.full((k, k), np.nan)
    sums = ranks.sum(axis=0)
    spread = 2 * (b * np.sum(ranks**2) - np.sum(sums**2)) / ((b - 1) * (k - 1))
    gaps = np.abs(sums[:, None] - sums[None, :])
    if spread <= 1e-12 * b * b * k:
        p = np.where(gaps > 0, 0.0, 1.0)
    else:
        p = 2 * sps.t.sf(gaps / math.sqrt(spread), (b - 1) * (k - 1))
    np.fill_diagonal(p, 1.0)
    return p


@dataclass(frozen=True)
class RankPair:
    """One post-hoc pair: ``significant`` only when the omnibus Friedman test rejected and p < alpha."""

    a: str
    b: str
    p: float
    significant: bool


@dataclass(frozen=True)
class Ranking:
    """Friedman over independent blocks with gated post-hoc pairs and CD-diagram cliques.

    ``omnibus_rejects`` is Friedman p < alpha; without it no pair is significant and the cliques
    are one group of every norm, so the critical-difference diagram draws no difference either.
    ``pairs`` follow ``names`` order (i < j); ``cliques`` list names in rank order.
    """

    friedman: FriedmanResult
    names: tuple[str, ...]
    post_hoc: str
    alpha: float
    omnibus_rejects: bool
    pairs: tuple[RankPair, ...]
    critical_difference: float
    cliques: tuple[tuple[str, ...], ...]

    def to_dict(self) -> dict[str, Any]:
        """Plain dict: ``n_blocks``, ``p_value``, ``pairs: [{a, b, p, significant}]`` and the rest."""
        return {
            **self.friedman.to_dict(), "names": list(self.names), "post_hoc": self.post_hoc, "alpha": self.alpha,
            "omnibus_rejects": self.omnibus_rejects, "critical_difference": self.critical_difference,
            "pairs": [asdict(pair) for pair in self.pairs], "cliques": [list(c) for c in self.cliques],
        }


def rank_norms(values: Any, names: Any = None, *, alpha: float = 0.05, post_hoc: str = "nemenyi") -> Ranking:
    """Friedman test of ``values`` (``(n_blocks, k)``, independent blocks, higher is better) with gated pairs.

    ``post_hoc`` "nemenyi" (family-wise by the studentized range) or "conover" (Holm over the pairs).
    A pair is significant only if Friedman rejects at ``alpha`` and its p < alpha (Demsar 2006: the
    post-hoc test is run after the null hypothesis is rejected). Blocks must be independent: see
    :mod:`normbench.stats.blocks` for building them from per-seed results.
    """
    check_choice("post_hoc", post_hoc, POST_HOC)
    array = np.asarray(values, dtype=float)
    result = friedman(array)
    labels = tuple(str(n) for n in (names if names is not None else range(result.k)))
    if len(labels) != result.k:
        raise ValueError(f"{len(labels)} names for {result.k} norms")
    rejects = bool(math.isfinite(result.p_value) and result.p_value < alpha)
    if post_hoc == "nemenyi":
        p = nemenyi(result.average_ranks, result.n_blocks)
    else:
        p = conover(array) if result.n_blocks >= 2 else np.full((result.k, result.k), np.nan)
        upper = np.triu_indices(result.k, 1)
        p[upper] = holm(p[upper])
        p[(upper[1], upper[0])] = p[upper]
    significant = rejects & (p < alpha)
    pairs = tuple(RankPair(labels[i], labels[j], float(p[i, j]), bool(significant[i, j]))
                  for i in range(result.k) for j in range(i + 1, result.k))
    return Ranking(result, labels, post_hoc, alpha, rejects, pairs,
                   critical_difference(result.k, result.n_blocks, alpha=alpha) if post_hoc == "nemenyi" else math.nan,
                   _cliques(result.average_ranks, significant, labels))


def _cliques(average_ranks: Any, significant: np.ndarray, labels: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
    """Maximal runs (in rank order, at least two members) inside which no pair is significant."""
    ranks = np.asarray(average_ranks, dtype=float)
    if ranks.size < 2 or not np.all(np.isfinite(ranks)):
        return ()
    order = [int(i) for i in np.argsort(ranks, kind="stable")]
    cliques, last_end = [], -1
    for start in range(len(order)):
        end = start
        while end + 1 < len(order) and not significant[order[start:end + 2]][:, order[start:end + 2]].any():
            end += 1
        if end > start and end > last_end:
            cliques.append(tuple(labels[i] for i in order[start:end + 1]))
            last_end = end
    return tuple(cliques)
