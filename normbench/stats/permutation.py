"""Sign-flip permutation test of a mean paired difference: exact enumeration up to 16 pairs,
Monte Carlo beyond with its resolution stated, and the smallest p-value attainable at n pairs."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from normbench.stats.conventions import ALTERNATIVES, check_choice

EXACT_MAX_N = 16  # 2^16 = 65,536 sign vectors: still exact in milliseconds for one comparison
DEFAULT_PERMUTATIONS = 9999  # Monte Carlo resolution 1 / 10,000 beyond EXACT_MAX_N
_CHUNK_ELEMENTS = 4_000_000  # rows x sign vectors held at once: bounds memory for batches of rows
# Sums that are equal in exact arithmetic differ by rounding once signs are flipped; a null sum
# within this fraction of sum(|d|) of the observed one counts as "as extreme" (scipy does the same).
_RELATIVE_TOLERANCE = 1e-12


def all_sign_vectors(n: int) -> np.ndarray:
    """Every vector of n signs (+1/-1) as an array of shape ``(2**n, n)``; row 0 is all +1."""
    codes = np.arange(2**n, dtype=np.int64)[:, None] >> np.arange(n, dtype=np.int64)[None, :]
    return np.where(codes & 1, -1.0, 1.0)


def sign_flip_min_p(n: int, alternative: str = "two-sided") -> float:
    """Smallest p-value an exact sign-flip test on ``n`` pairs can return: 1/2^n one-sided, 2/2^n two-sided.

    Reached when every difference has the same sign (the observed sum is the most extreme of the
    2^n equally likely sign patterns). n = 3: 0.25 two-sided, 0.125 one-sided; n = 5: 0.0625
    two-sided - so no two-sided result at 5 or fewer seeds can be significant at 0.05.
    """
    check_choice("alternative", alternative, ALTERNATIVES)
    if n < 1:
        return 1.0
    return min(1.0, (2.0 if alternative == "two-sided" else 1.0) / 2.0**n)


def sign_flip_effective_alpha(n: int, alpha: float, alternative: str = "two-sided") -> float:
    """The largest p-value the exact test on ``n`` pairs can return that is still <= ``alpha``.

    With distinct |sums| (continuous data) the attainable p-values are j/2^n one-sided and
    2j/2^n two-sided, so the test's true size is this value, not alpha; 0 means the test can never
    reject at ``alpha``. Beyond :data:`EXACT_MAX_N` pairs the Monte Carlo test is treated as
    continuous and ``alpha`` is returned.
    """
    check_choice("alternative", alternative, ALTERNATIVES)
    if n < 1:
        return 0.0
    if n > EXACT_MAX_N:
        return float(alpha)
    step = sign_flip_min_p(n, alternative)
    return math.floor(alpha / step + 1e-9) * step


def sign_flip_p_rows(
    d: Any,
    alternative: str = "two-sided",
    *,
    rng: np.random.Generator | None = None,
    n_resamples: int = DEFAULT_PERMUTATIONS,
) -> np.ndarray:
    """Sign-flip permutation p-value of the mean of each row of differences ``d`` (shape ``(rows, n)``).

    Under H0 each pair's difference is symmetric about 0, so every sign pattern is equally likely;
    the p-value is the share of patterns whose mean is at least as extreme as the observed one
    (|mean| for two-sided; >= for "greater", <= for "less"). Exact (all 2^n patterns, the observed
    one included) for n <= :data:`EXACT_MAX_N`; otherwise ``n_resamples`` random patterns from
    ``rng`` with p = (1 + count) / (1 + n_resamples) (Phipson & Smyth 2010), resolution
    1 / (1 + n_resamples). Rows of zeros give p = 1; n = 0 gives NaN.
    """
    check_choice("alternative", alternative, ALTERNATIVES)
    diffs = np.atleast_2d(np.asarray(d, dtype=float))
    rows, n = diffs.shape
    if n == 0:
        return np.full(rows, np.nan)
    if n <= EXACT_MAX_N:
        signs, monte_carlo = all_sign_vectors(n), False
    else:
        if rng is None:
            raise ValueError(f"more than {EXACT_MAX_N} pairs: the Monte Carlo sign-flip test needs an rng")
        signs, monte_carlo = rng.choice(np.array([-1.0, 1.0]), size=(n_resamples, n)), True
    p = np.empty(rows)
    chunk = max(1, _CHUNK_ELEMENTS // signs.shape[0])
    for start in range(0, rows, chunk):
        block = diffs[start:start + chunk]
        p[start:start + chunk] = _extreme_counts(block, signs, alternative)
    if monte_carlo:
        return (1.0 + p) / (1.0 + n_resamples)
    return p / signs.shape[0]


def _extreme_counts(block: np.ndarray, signs: np.ndarray, alternative: str) -> np.ndarray:
    """How many sign patterns give a sum at least as extreme as each row's observed sum."""
    observed = block.sum(axis=1, keepdims=True)
    null = block @ signs.T
    tolerance = _RELATIVE_TOLERANCE * np.abs(block).sum(axis=1, keepdims=True)
    if alternative == "two-sided":
        extreme = np.abs(null) >= np.abs(observed) - tolerance
    elif alternative == "greater":
        extreme = null >= observed - tolerance
    else:
        extreme = null <= observed + tolerance
    return extreme.sum(axis=1).astype(float)
