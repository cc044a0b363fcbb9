"""One comparison's verdict - better, worse, equivalent or inconclusive - from its family-adjusted
p-value, its TOST p-value and the sign of its mean difference."""

from __future__ import annotations

import math
from dataclasses import dataclass

from normbench.stats.conventions import PlainRecord

VERDICTS = ("better", "worse", "equivalent", "inconclusive")


@dataclass(frozen=True)
class Verdict(PlainRecord):
    """What a comparison of a against b allows one to say.

    ``direction`` is one of :data:`VERDICTS`, always from the sign of the mean difference (never
    from an effect size). ``sign_conflict`` is True when the effect size and the mean difference
    have opposite signs (e.g. a rank effect pulled one way by most seeds, the mean the other way
    by one outlier); such a comparison is reported as inconclusive, never better or worse.
    ``within_margin`` marks a difference that is significant but also shown to be smaller than the
    margin: real, yet too small to matter, and reported as equivalent. ``reason`` says why in words.
    """

    direction: str
    significant: bool
    equivalent: bool
    sign_conflict: bool
    within_margin: bool
    reason: str


def signs_disagree(mean_difference: float, effect_size: float) -> bool:
    """True when both numbers are finite, non-zero and of opposite sign."""
    if not (math.isfinite(mean_difference) and math.isfinite(effect_size)):
        return False
    return mean_difference * effect_size < 0


def classify_comparison(
    p_adjusted: float,
    equivalence_p: float,
    mean_difference: float,
    *,
    alpha: float = 0.05,
    effect_size: float = math.nan,
    higher_is_better: bool = True,
) -> Verdict:
    """Classify a against b from the family-adjusted ``p_adjusted`` and the TOST ``equivalence_p``.

    * significant (p_adjusted < alpha), signs agree, mean != 0: "better" when the mean difference
      points the good way (up when ``higher_is_better``), else "worse" - unless TOST also shows the
      difference is inside the margin, which makes it "equivalent" (``within_margin``);
    * not significant but equivalence_p < alpha: "equivalent";
    * otherwise, including a sign conflict or NaN p-values: "inconclusive".

    ``equivalence_p`` should be adjusted over the same family when equivalence claims are headlines.
    """
    significant = math.isfinite(p_adjusted) and p_adjusted < alpha
    equivalent = math.isfinite(equivalence_p) and equivalence_p < alpha
    conflict = signs_disagree(mean_difference, effect_size)
    flags = dict(significant=significant, equivalent=equivalent, sign_conflict=conflict)
    if conflict:
        return Verdict("inconclusive", within_margin=False, reason=(
            f"mean difference {mean_difference:+.3g} and effect size {effect_size:+.3g} disagree in sign"), **flags)
    if significant and equivalent:
        return Verdict("equivalent", within_margin=True,
                       reason="significant difference, but inside the equivalence margin", **flags)
    if significant and math.isfinite(mean_difference) and mean_difference != 0:
        good = (mean_difference > 0) == higher_is_better
        return Verdict("better" if good else "worse", within_margin=False,
                       reason=f"p_adjusted {p_adjusted:.3g} < {alpha:g}", **flags)
    if equivalent:
        return Verdict("equivalent", within_margin=False,
                       reason=f"TOST p {equivalence_p:.3g} < {alpha:g}", **flags)
    return Verdict("inconclusive", within_margin=False,
                   reason="neither a significant difference nor equivalence within the margin", **flags)
