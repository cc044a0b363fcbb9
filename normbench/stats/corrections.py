"""Multiple-comparison corrections for a family of p-values."""

from __future__ import annotations

from typing import Any

import numpy as np


def holm(p_values: Any) -> np.ndarray:
    """Holm-Bonferroni step-down adjusted p-values; one family per row.

    ``p_values`` has shape ``(m,)`` (one family) or ``(rows, m)`` (one family per row, as the
    bootstrap of the critical batch size needs); the result has the same shape. Sorted ascending,
    p_(i) is multiplied by (m - i + 1), made monotone by a running maximum and capped at 1 (Holm
    1979). NaN entries (untestable comparisons) pass through as NaN and do not count towards m: a
    comparison that was never tested cannot inflate the others' correction.
    """
    p = np.asarray(p_values, dtype=float)
    if p.ndim not in (1, 2):
        raise ValueError(f"p_values must have shape (m,) or (rows, m), got {p.shape}")
    valid = ~np.isnan(p)
    if np.any((p[valid] < 0) | (p[valid] > 1)):
        raise ValueError("p-values must lie in [0, 1]")
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
