"""The conventions every function in ``normbench.stats`` keeps: arguments checked with one error format
(finite values, a choice among declared options, the alternative hypothesis) and results as frozen
records that turn into plain data for report contexts and JSON."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import numpy as np

ALTERNATIVES = ("two-sided", "less", "greater")


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    """Raise ``ValueError`` naming ``name``, the ``choices`` and ``value`` unless ``value`` is one of them."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {value!r}")


def finite_values(values: Any, name: str) -> np.ndarray:
    """``values`` as a 1-D float array; raises on NaN/inf instead of dropping them silently."""
    array = np.asarray(values, dtype=float)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or inf; decide what a failed run counts as before summarizing")
    return array


def plain_dict(mapping: dict[str, Any]) -> dict[str, Any]:
    """Replace NumPy scalars by Python ones (tuples by lists) so a context stays plain data."""
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        if isinstance(value, (np.floating, float)):
            out[key] = float(value)
        elif isinstance(value, (np.integer, int)) and not isinstance(value, bool):
            out[key] = int(value)
        elif isinstance(value, np.bool_):
            out[key] = bool(value)
        elif isinstance(value, tuple):
            out[key] = [plain_dict({"v": v})["v"] for v in value]
        else:
            out[key] = value
    return out


class PlainRecord:
    """Base of the frozen result dataclasses of this package: one ``to_dict`` for all of them."""

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python dict (NumPy scalars as Python ones, tuples as lists) for report contexts and JSON."""
        return plain_dict(asdict(self))  # type: ignore[call-overload]  # subclasses are dataclasses
