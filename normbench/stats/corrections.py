"""Multiple-comparison corrections for one declared family of p-values: Holm (family-wise error)
and Benjamini-Hochberg (false discovery rate), with untested comparisons (NaN) left out."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats as sps

from normbench.stats.conventions import check_choice

CORRECTIONS = ("holm", "bh", "none")


def _checked(p_values: Any) -> np.ndarray:
    """``p_values`` as a float array of shape (m,) or (rows, m) with every non-NaN entry in [0, 1]."""
    p = np.asarray(p_values, dtype=float)
    if p.ndim not in (1, 2):
        raise ValueError(f"p_values must have shape (m,) or (rows, m), got {p.shape}")
    valid = ~np.isnan(p)
    if np.any((p[valid] < 0) | (p[valid] > 1)):
        raise ValueError("p-values must lie in [0, 1]")
    return p


def holm(p_values: Any) -> np.ndarray:
    """Holm-Bonferroni step-down adjusted p-values; one family per row.

    ``p_values`` has shape ``(m,)`` (one family) or ``(rows, m)`` (one family per row, as the
    bootstrap of the critical batch size needs); the result has the same shape. Sorted ascending,
    p_(i) is multiplied by (m - i + 1), made monotone by a running maximum and capped at 1 (Holm
    1979). NaN entries (untestable comparisons) pass through as NaN and do not count towards m: a
    comparison that was never tested cannot inflate the others' correction.
    """
    p = _checked(p_values)
    rows = np.atleast_2d(p)
    if rows.shape[-1] == 0:
        return p.copy()
    # np.sort/argsort put NaN last, so the tested comparisons of a row come first in order.
    order = np.argsort(rows, axis=1, kind="stable")
    ordered = np.take_along_axis(rows, order, axis=1)
    m = np.sum(~np.isnan(rows), axis=1, keepdims=True)
    multiplier = m - np.arange(rows.shape[1])[None, :]
    stepped = np.fmin(np.maximum.accumulate(np.where(np.isnan(ordered), -np.inf, ordered * multiplier), axis=1), 1.0)
    stepped[np.isnan(ordered)] = np.nan
    adjusted = np.empty_like(rows)
    np.put_along_axis(adjusted, order, stepped, axis=1)
    return adjusted.reshape(p.shape)


def benjamini_hochberg(p_values: Any) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values); one family per row, NaN left out as in :func:`holm`.

    scipy.stats.false_discovery_control (method "bh") on the tested entries of each row: p_(i) m / i,
    made monotone from the largest down and capped at 1. Controls the expected share of false
    claims among the claims (FDR) under independence or positive dependence - weaker than Holm's
    family-wise guarantee, which bounds the chance of any false claim.
    """
    p = _checked(p_values)
    rows = np.atleast_2d(p)
    adjusted = np.full_like(rows, np.nan)
    for row, out in zip(rows, adjusted):
        tested = ~np.isnan(row)
        if tested.any():
            out[tested] = sps.false_discovery_control(row[tested], method="bh")
    return adjusted.reshape(p.shape)


def adjust(p_values: Any, method: str = "holm") -> np.ndarray:
    """Adjust one family of p-values (shape ``(m,)`` or ``(rows, m)``) by ``method`` in :data:`CORRECTIONS`.

    ``"none"`` returns the p-values unchanged (for a family of one, or when a caller adjusts later).
    """
    check_choice("correction", method, CORRECTIONS)
    if method == "holm":
        return holm(p_values)
    if method == "bh":
        return benjamini_hochberg(p_values)
    return _checked(p_values).copy()


def per_comparison_alpha(alpha: float, family_size: int, method: str = "holm") -> float:
    """The level the smallest p-value of a family must clear: alpha / m for Holm and BH, alpha for none.

    Both step procedures compare the smallest p with alpha / m first, so a comparison whose effect
    is detectable at alpha / m is detected whatever the rest of the family shows; this is the level
    a smallest-detectable-effect statement can promise (later steps are more lenient but depend on
    the other comparisons). A family of 0 or 1 uses alpha.
    """
    check_choice("correction", method, CORRECTIONS)
    if method == "none" or family_size <= 1:
        return float(alpha)
    return float(alpha) / int(family_size)
