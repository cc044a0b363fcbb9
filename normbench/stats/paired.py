"""Paired comparisons (a[i] and b[i] from the same seed): test choice, p-values, effect sizes.

The decision rule (Shapiro-Wilk on the differences chooses a paired t-test or a Wilcoxon
signed-rank test, as autorank does) is written once, vectorized over rows of differences, so the
point estimate of a comparison and every bootstrap resample of it (critical batch size) apply
exactly the same rule.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats as sps

from normbench.stats.summary import finite_values, plain_dict

NORMALITY_ALPHA = 0.05
ALTERNATIVES = ("two-sided", "less", "greater")

# Accuracies are multiples of 1/n_test, so differences that are equal in exact arithmetic come out
# a few ulps apart in floating point (0.9722 - 0.9444 != 0.9583 - 0.9305). Left alone, those ulps
# turn a constant difference into a "sample" with a tiny spread: an astronomically large t and d_z,
# and spurious rank orders in Wilcoxon. Differences closer than this (relative to the data's
# magnitude) are therefore merged, which removes rounding noise and nothing measurable.
_SNAP_RELATIVE = 1e-9

# Row decisions of the rule (see paired_test_rows).
_TOO_FEW, _ALL_ZERO, _T, _WILCOXON_FORCED, _WILCOXON_SMALL, _WILCOXON_CONSTANT, _WILCOXON_NOT_NORMAL, _T_CONSTANT = range(8)
_TEST_NAMES = {_TOO_FEW: "none", _ALL_ZERO: "none", _T: "paired t-test", _T_CONSTANT: "paired t-test",
               _WILCOXON_FORCED: "wilcoxon", _WILCOXON_SMALL: "wilcoxon", _WILCOXON_CONSTANT: "wilcoxon",
               _WILCOXON_NOT_NORMAL: "wilcoxon"}


@dataclass(frozen=True)
class PairedResult:
    """Outcome of a paired comparison of ``a`` against ``b`` (d = a - b, paired by position).

    ``test`` is ``"paired t-test"``, ``"wilcoxon"`` or ``"none"`` (not testable, or no difference
    at all); ``reason`` explains a ``"none"`` or a non-default choice. ``effect_size`` is Cohen's
    d_z for the t-test and the matched-pairs rank-biserial correlation for Wilcoxon; both are
    positive when ``a`` tends to exceed ``b``. ``probability_of_improvement`` (new name:
    ``share_of_seeds_better``) is the fraction of pairs with a > b, ties counted half.
    ``normality_p`` is the Shapiro-Wilk p-value on d (NaN when it was not computed).
    ``sd_difference`` is the standard deviation of d (ddof = 1), the input of a power analysis;
    ``alternative`` is the alternative hypothesis tested.
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
    sd_difference: float = math.nan
    alternative: str = "two-sided"

    @property
    def share_of_seeds_better(self) -> float:
        """New name of ``probability_of_improvement`` (the share of seeds with a > b, ties half)."""
        return self.probability_of_improvement

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python dict (floats, ints and strings only) for report contexts and JSON.

        Carries the share of seeds better under both its new key ``share_of_seeds_better`` and the
        old ``probability_of_improvement`` until every caller has switched.
        """
        return {**plain_dict(asdict(self)), "share_of_seeds_better": float(self.probability_of_improvement)}


def snapped_differences(a: Any, b: Any) -> np.ndarray:
    """Paired differences ``a - b`` (shapes ``(n,)``) with floating-point noise merged away.

    Differences within ``1e-9 x max(1, max|a|, max|b|)`` of zero become exactly 0, and
    differences within that tolerance of each other (sorted neighbours) become exactly equal -
    the member nearest zero stands for the group - so ties and zeros are what they are in exact
    arithmetic. Everything else is returned unchanged.
    """
    a_arr = finite_values(a, "a")
    b_arr = finite_values(b, "b")
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


def share_of_seeds_better(d: Any) -> float:
    """Share of seeds on which a beats b: paired differences ``d`` (shape ``(n,)``) above 0, zeros half.

    A description of these seeds, not rliable's probability of improvement (which estimates
    P(X > Y) for independent runs, with an interval); hence the plain name.
    """
    diffs = finite_values(d, "d")
    if diffs.size == 0:
        return math.nan
    return float(np.mean((diffs > 0) + 0.5 * (diffs == 0)))


def probability_of_improvement(d: Any) -> float:
    """Old name of :func:`share_of_seeds_better`, kept until the report and compare callers switch."""
    return share_of_seeds_better(d)


def cohens_dz(d: Any) -> float:
    """Cohen's d_z of paired differences ``d`` (shape ``(n,)``): mean(d) / std(d, ddof=1).

    NaN for n < 2 or zero spread (the standardized effect is then undefined, not infinite).
    """
    diffs = finite_values(d, "d")
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
    diffs = finite_values(d, "d")
    diffs = diffs[diffs != 0]
    if diffs.size == 0:
        return math.nan
    ranks = sps.rankdata(np.abs(diffs))
    r_plus = float(ranks[diffs > 0].sum())
    r_minus = float(ranks[diffs < 0].sum())
    return (r_plus - r_minus) / (r_plus + r_minus)


def signed_rank_rows(d: Any, alternative: str = "two-sided") -> tuple[np.ndarray, np.ndarray]:
    """Wilcoxon signed-rank test on each row of ``d`` (shape ``(rows, n)``); returns (statistic, p).

    Zero differences are discarded (``zero_method="wilcox"``), ties get average ranks. The p-value
    is exact for every n, ties included: under H0 each non-zero difference is positive or negative
    with probability 1/2 independently, so the null distribution of R+ (sum of the ranks of the
    positive differences) is that of a sum of independent {0, rank} terms - a convolution computed
    on doubled ranks, which are integers. This equals scipy's exact distribution without ties and
    its exhaustive sign-flip permutation test with ties (what scipy uses for n <= 13), at a cost of
    microseconds per row instead of 2^n evaluations. Statistic as in scipy: min(R+, R-) for the
    two-sided test, R+ otherwise. Rows without a non-zero difference give NaN.
    """
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative must be one of {', '.join(ALTERNATIVES)}, got {alternative!r}")
    diffs = np.atleast_2d(np.asarray(d, dtype=float))
    rows, n = diffs.shape
    statistic = np.full(rows, np.nan)
    p_value = np.full(rows, np.nan)
    if rows == 0 or n == 0:
        return statistic, p_value
    nonzero = diffs != 0
    zeros = n - nonzero.sum(axis=1)
    # Zeros have the smallest |d|, so they take ranks 1..z; subtracting z re-ranks the rest among
    # themselves without disturbing their ties.
    ranks = np.where(nonzero, sps.rankdata(np.abs(diffs), axis=1) - zeros[:, None], 0.0)
    doubled = np.rint(2 * ranks).astype(np.int64)
    total = doubled.sum(axis=1)
    plus = np.where(diffs > 0, doubled, 0).sum(axis=1)
    width = int(total.max()) + 1
    positions = np.arange(width)
    distribution = np.zeros((rows, width))
    distribution[:, 0] = 1.0
    for column in range(n):
        source = positions[None, :] - doubled[:, column][:, None]
        shifted = np.where(source >= 0, np.take_along_axis(distribution, np.maximum(source, 0), axis=1), 0.0)
        distribution = 0.5 * (distribution + shifted)
    at_most = np.cumsum(distribution, axis=1)
    at_least = np.cumsum(distribution[:, ::-1], axis=1)[:, ::-1]
    index = np.arange(rows)
    p_less = np.minimum(at_most[index, plus], 1.0)
    p_greater = np.minimum(at_least[index, plus], 1.0)
    r_plus, r_minus = plus / 2.0, (total - plus) / 2.0
    if alternative == "two-sided":
        p, stat = np.minimum(1.0, 2 * np.minimum(p_less, p_greater)), np.minimum(r_plus, r_minus)
    elif alternative == "less":
        p, stat = p_less, r_plus
    else:
        p, stat = p_greater, r_plus
    valid = total > 0
    statistic[valid], p_value[valid] = stat[valid], p[valid]
    return statistic, p_value


def paired_test_rows(
    d: Any, *, test: str = "auto", alternative: str = "two-sided", alpha_normality: float = NORMALITY_ALPHA
) -> dict[str, np.ndarray]:
    """Apply the paired decision rule to every row of snapped differences ``d`` (shape ``(rows, n)``).

    Returns arrays of shape ``(rows,)``: ``decision`` (internal codes, see :func:`paired_comparison`
    for their meaning), ``statistic``, ``p_value`` and ``normality_p``. Rows are assumed snapped
    (:func:`snapped_differences`) - resamples of snapped differences are.
    """
    if test not in ("auto", "t", "wilcoxon"):
        raise ValueError(f"test must be 'auto', 't' or 'wilcoxon', got {test!r}")
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative must be one of {', '.join(ALTERNATIVES)}, got {alternative!r}")
    diffs = np.atleast_2d(np.asarray(d, dtype=float))
    rows, n = diffs.shape
    decision = np.full(rows, _TOO_FEW)
    statistic = np.full(rows, np.nan)
    p_value = np.full(rows, np.nan)
    normality_p = np.full(rows, np.nan)
    if n < 2:
        return {"decision": decision, "statistic": statistic, "p_value": p_value, "normality_p": normality_p}
    all_zero = np.all(diffs == 0, axis=1)
    constant = np.all(diffs == diffs[:, :1], axis=1) & ~all_zero
    open_rows = ~all_zero
    if test == "t":
        decision[open_rows] = np.where(constant[open_rows], _T_CONSTANT, _T)
    elif test == "wilcoxon":
        decision[open_rows] = _WILCOXON_FORCED
    elif n < 3:
        decision[open_rows] = _WILCOXON_SMALL
    else:
        decision[constant] = _WILCOXON_CONSTANT
        check = open_rows & ~constant
        if check.any():
            normality_p[check] = sps.shapiro(diffs[check], axis=1).pvalue
            decision[check] = np.where(normality_p[check] >= alpha_normality, _T, _WILCOXON_NOT_NORMAL)
    decision[all_zero] = _ALL_ZERO
    p_value[all_zero] = 1.0

    t_rows = decision == _T
    if t_rows.any():
        result = sps.ttest_1samp(diffs[t_rows], 0.0, axis=1, alternative=alternative)
        statistic[t_rows], p_value[t_rows] = result.statistic, result.pvalue
    w_rows = np.isin(decision, (_WILCOXON_FORCED, _WILCOXON_SMALL, _WILCOXON_CONSTANT, _WILCOXON_NOT_NORMAL))
    if w_rows.any():
        statistic[w_rows], p_value[w_rows] = signed_rank_rows(diffs[w_rows], alternative)
    return {"decision": decision, "statistic": statistic, "p_value": p_value, "normality_p": normality_p}


def paired_comparison(
    a: Any,
    b: Any,
    *,
    test: str = "auto",
    alternative: str = "two-sided",
    alpha_normality: float = NORMALITY_ALPHA,
) -> PairedResult:
    """Compare ``a`` with ``b`` (shapes ``(n,)``, paired by position = seed).

    ``test="auto"`` chooses as autorank does, but on the differences (what the paired t-test
    assumes): Shapiro-Wilk on d = a - b; p >= ``alpha_normality`` -> paired t-test (equal to
    scipy.stats.ttest_rel) with Cohen's d_z, otherwise Wilcoxon signed-rank (zero differences
    discarded, exact null distribution, see :func:`signed_rank_rows`) with the matched-pairs
    rank-biserial correlation. ``test="t"`` or ``"wilcoxon"`` forces one. ``alternative`` is
    ``"two-sided"``, ``"less"`` (a tends to be below b) or ``"greater"``. Special cases, all
    without warnings:

    * n < 2: ``test="none"``, p NaN, reason says why.
    * all differences zero: ``test="none"``, p = 1, effect 0 - the two sides are identical.
    * n = 2, or a constant non-zero difference: normality cannot be checked (or d_z would be
      infinite), so auto uses Wilcoxon; the reason records this.
    """
    d = snapped_differences(a, b)
    n = int(d.size)
    rows = paired_test_rows(d[None, :], test=test, alternative=alternative, alpha_normality=alpha_normality)
    decision = int(rows["decision"][0])
    statistic, p_value, normality_p = (float(rows[key][0]) for key in ("statistic", "p_value", "normality_p"))
    base = dict(
        mean_difference=float(np.mean(d)) if n else math.nan,
        median_difference=float(np.median(d)) if n else math.nan,
        n=n,
        probability_of_improvement=share_of_seeds_better(d),
        sd_difference=float(np.std(d, ddof=1)) if n >= 2 else math.nan,
        alternative=alternative,
    )
    name = _TEST_NAMES[decision]
    if decision == _TOO_FEW:
        return PairedResult(name, math.nan, math.nan, math.nan, "none", normality_p=math.nan,
                            reason=f"{n} paired seed(s); a paired test needs at least 2", **base)
    if decision == _ALL_ZERO:
        return PairedResult(name, math.nan, 1.0, 0.0, "none", normality_p=math.nan,
                            reason="all paired differences are zero", **base)
    if decision == _T_CONSTANT:
        return PairedResult(name, math.nan, math.nan, math.nan, "d_z", normality_p=normality_p,
                            reason="constant non-zero difference: t is undefined", **base)
    if decision == _T:
        return PairedResult(name, statistic, p_value, cohens_dz(d), "d_z", normality_p=normality_p, reason="", **base)
    reason = {
        _WILCOXON_FORCED: "",
        _WILCOXON_SMALL: "normality cannot be checked with fewer than 3 pairs",
        _WILCOXON_CONSTANT: "constant non-zero difference (d_z undefined)",
        _WILCOXON_NOT_NORMAL: f"differences not normal (Shapiro-Wilk p = {normality_p:.3g})",
    }[decision]
    return PairedResult(name, statistic, p_value, rank_biserial(d), "rank-biserial r", normality_p=normality_p,
                        reason=reason, **base)

