"""Validation of norm options at construction: every bad value names the option and what is allowed."""

from __future__ import annotations

import math
from typing import Any


def _fail(norm: str, option: str, value: Any, allowed: str) -> ValueError:
    return ValueError(f"norm {norm!r}: invalid {option}={value!r}; allowed: {allowed}")


def check_bool(norm: str, option: str, value: Any) -> bool:
    """Return ``value`` if it is a real bool (not 0/1, not "true"), else raise ``ValueError``."""
    if not isinstance(value, bool):
        raise _fail(norm, option, value, "true or false")
    return value


def check_positive_int(norm: str, option: str, value: Any) -> int:
    """Return ``value`` if it is an int >= 1 (bools rejected), else raise ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _fail(norm, option, value, "an integer >= 1")
    return value


def check_nonnegative_int(norm: str, option: str, value: Any) -> int:
    """Return ``value`` if it is an int >= 0 (bools rejected), else raise ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _fail(norm, option, value, "an integer >= 0")
    return value


def check_float(
    norm: str,
    option: str,
    value: Any,
    *,
    low: float,
    high: float = math.inf,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """Return ``float(value)`` if it is a finite real number in the interval, else raise.

    The interval is ``[low, high]``; ``low_open``/``high_open`` exclude an end point.
    """
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok:
        value = float(value)
        ok = math.isfinite(value)
        ok = ok and (value > low if low_open else value >= low)
        ok = ok and (value < high if high_open else value <= high)
    if not ok:
        left = "(" if low_open else "["
        right = ")" if high_open else "]"
        hi = "inf" if math.isinf(high) else f"{high:g}"
        raise _fail(norm, option, value, f"a number in {left}{low:g}, {hi}{right}")
    return value


def check_choice(norm: str, option: str, value: Any, choices: tuple[str, ...]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise ``ValueError`` listing them."""
    if value not in choices:
        raise _fail(norm, option, value, ", ".join(repr(c) for c in choices))
    return value


def check_num_features(norm: str, num_features: Any) -> int:
    """The channel count every norm is built for: an int >= 1."""
    return check_positive_int(norm, "num_features", num_features)


def divisors(n: int) -> list[int]:
    """All positive divisors of ``n`` in increasing order (the valid group counts for n channels)."""
    return [d for d in range(1, n + 1) if n % d == 0]
