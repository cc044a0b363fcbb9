"""Power of paired comparisons: the smallest effect the seeds used could detect, and the seeds a
given effect would need (paired t-test via the noncentral t distribution; the sign-flip test via
the same at its attainable level; scipy only)."""

from __future__ import annotations

import functools
import math

from scipy import optimize
from scipy import stats as sps

from normbench.stats.conventions import ALTERNATIVES, check_choice
from normbench.stats.paired import PAIRED_TESTS
from normbench.stats.permutation import sign_flip_effective_alpha

DEFAULT_POWER = 0.8
DEFAULT_ALPHA = 0.05
_MAX_SEEDS = 100_000
_MAX_EFFECT = 1e6


def paired_t_power(effect_dz: float, n: int, *, alpha: float = DEFAULT_ALPHA, alternative: str = "two-sided") -> float:
    """Power of a paired t-test with ``n`` pairs against a true standardized effect ``effect_dz``.

    The statistic is noncentral t with df = n - 1 and noncentrality d_z * sqrt(n) (Cohen 1988,
    ch. 2); two-sided power counts both rejection regions. ``alternative="greater"`` is the
    one-sided test in the direction of a positive effect. NaN for n < 2.
    """
    if n < 2:
        return math.nan
    df = n - 1
    noncentrality = effect_dz * math.sqrt(n)
    if alternative == "two-sided":
        critical = sps.t.ppf(1 - alpha / 2, df)
        return float(_upper_tail(critical, df, noncentrality) + _lower_tail(-critical, df, noncentrality))
    if alternative == "greater":
        return float(_upper_tail(sps.t.ppf(1 - alpha, df), df, noncentrality))
    raise ValueError(f"alternative must be 'two-sided' or 'greater', got {alternative!r}")


def _upper_tail(x: float, df: int, noncentrality: float) -> float:
    # scipy's noncentral t returns NaN for some far-tail probabilities; the complement is then fine.
    value = sps.nct.sf(x, df, noncentrality)
    return value if math.isfinite(value) else max(0.0, 1.0 - sps.nct.cdf(x, df, noncentrality))


def _lower_tail(x: float, df: int, noncentrality: float) -> float:
    value = sps.nct.cdf(x, df, noncentrality)
    return value if math.isfinite(value) else max(0.0, 1.0 - sps.nct.sf(x, df, noncentrality))


@functools.lru_cache(maxsize=1024)
def minimum_detectable_dz(n: int, *, alpha: float = DEFAULT_ALPHA, power: float = DEFAULT_POWER,
                          alternative: str = "two-sided") -> float:
    """Smallest standardized effect d_z that a paired t-test with ``n`` pairs detects with ``power``.

    Solves paired_t_power(d_z, n) = power for d_z > 0 (power grows with d_z). NaN for n < 2.
    """
    if n < 2:
        return math.nan
    def gap(dz: float) -> float:
        return paired_t_power(dz, n, alpha=alpha, alternative=alternative) - power

    high = 1.0
    while gap(high) < 0:  # power rises with d_z; double until the target lies inside the bracket
        high *= 2
        if high > _MAX_EFFECT:
            return math.inf
    return float(optimize.brentq(gap, 1e-9, high, xtol=1e-10, rtol=1e-12))


def seeds_needed(effect_dz: float, *, alpha: float = DEFAULT_ALPHA, power: float = DEFAULT_POWER,
                 alternative: str = "two-sided") -> int | None:
    """Smallest number of paired seeds (>= 2) at which a paired t-test detects ``effect_dz`` with
    ``power``; None when the effect is zero, undefined, or needs more than 100,000 seeds."""
    if not math.isfinite(effect_dz) or effect_dz <= 0:
        return None
    def enough(n: int) -> bool:
        return paired_t_power(effect_dz, n, alpha=alpha, alternative=alternative) >= power

    if not enough(_MAX_SEEDS):
        return None
    # Start from the normal approximation n ~ ((z_{1-a/2} + z_power) / d)^2 (Cohen 1988), which the
    # t-test needs slightly more than; then walk to the exact smallest n (power increases with n).
    z_alpha = sps.norm.ppf(1 - alpha / 2) if alternative == "two-sided" else sps.norm.ppf(1 - alpha)
    n = max(2, min(_MAX_SEEDS, int(math.ceil(((z_alpha + sps.norm.ppf(power)) / effect_dz) ** 2))))
    while n > 2 and enough(n - 1):
        n -= 1
    while not enough(n):
        n += 1
    return n


def _one_sided_as_greater(alternative: str) -> str:
    # Power is symmetric in the sign of the effect: "less" against a negative effect is "greater"
    # against its mirror image.
    check_choice("alternative", alternative, ALTERNATIVES)
    return "two-sided" if alternative == "two-sided" else "greater"


def smallest_detectable_effect(
    n: int, sd_difference: float, *, alpha: float = DEFAULT_ALPHA, power: float = DEFAULT_POWER,
    test: str = "t", alternative: str = "two-sided",
) -> float:
    """Smallest true mean difference (in the data's unit) the declared paired test finds with ``power``.

    ``alpha`` is the level actually used - for a corrected family the per-comparison level, e.g.
    :func:`normbench.stats.corrections.per_comparison_alpha`. t-test: minimum detectable d_z
    times ``sd_difference``. Sign-flip test: the same at the test's attainable level
    (:func:`normbench.stats.permutation.sign_flip_effective_alpha`; its power on normal data is
    close to the t-test's at equal size, checked by simulation in tests/stats/test_simulations.py),
    and infinite when no p-value at n reaches ``alpha`` (n = 5 two-sided at 0.05). NaN for n < 2
    or an unknown SD; 0 for SD 0 (a constant difference is detected whatever its size).
    """
    check_choice("test", test, PAIRED_TESTS)
    side = _one_sided_as_greater(alternative)
    level = alpha if test == "t" else sign_flip_effective_alpha(n, alpha, alternative)
    if n < 2 or not math.isfinite(sd_difference):
        return math.nan
    if level <= 0:
        return math.inf
    if sd_difference == 0:
        return 0.0
    return minimum_detectable_dz(n, alpha=level, power=power, alternative=side) * sd_difference


def seeds_for_margin(
    margin: float, sd_difference: float, *, alpha: float = DEFAULT_ALPHA, power: float = DEFAULT_POWER,
    test: str = "t", alternative: str = "two-sided", max_seeds: int = 1000,
) -> int | None:
    """Smallest number of paired seeds at which a true difference of ``margin`` is detected with ``power``.

    ``sd_difference`` is the SD of the paired differences (from the data, or a planning value).
    The smallest n >= 2 with :func:`smallest_detectable_effect` <= ``margin``; None when the SD
    is unknown or more than ``max_seeds`` would be needed.
    """
    if not (math.isfinite(sd_difference) and margin > 0):
        return None
    n = 2
    if sd_difference > 0:  # the t-test's n is a lower bound for the sign-flip test (its level is <= alpha)
        estimate = seeds_needed(margin / sd_difference, alpha=alpha, power=power,
                                alternative=_one_sided_as_greater(alternative))
        n = estimate if estimate is not None else max_seeds + 1
    while n <= max_seeds:
        effect = smallest_detectable_effect(n, sd_difference, alpha=alpha, power=power, test=test,
                                            alternative=alternative)
        if effect <= margin:
            return n
        n += 1
    return None
