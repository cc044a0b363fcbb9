"""Checks for dataset option values, raising ``ValueError`` that names the dataset and the option.

Options arrive from YAML suites and ``--set`` overrides, so a value may be a string, a bool or a
float where an integer is meant; each check rejects those with the allowed range in the message
(bool is rejected explicitly because ``True`` is an ``int`` to Python).
"""

from __future__ import annotations

from numbers import Integral, Real

# numpy's legacy seeding (used inside the mnist1d package) accepts seeds in [0, 2**32).
SEED_LIMIT = 2**32


def check_int(dataset: str, option: str, value: object, minimum: int, maximum: int | None = None) -> int:
    """``value`` as an ``int`` if it is an integer in ``[minimum, maximum]`` (no upper bound when None)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, Integral)
        or value < minimum
        or (maximum is not None and value > maximum)
    ):
        allowed = f"[{minimum}, {maximum}]" if maximum is not None else f">= {minimum}"
        raise ValueError(f"dataset {dataset!r}: option {option!r} must be an integer {allowed}; got {value!r}")
    return int(value)


def check_optional_int(dataset: str, option: str, value: object, minimum: int) -> int | None:
    """``None`` or ``value`` checked by :func:`check_int` (for options such as "first n samples")."""
    return None if value is None else check_int(dataset, option, value, minimum)


def check_seed(dataset: str, value: object) -> int:
    """``split_seed`` as an ``int`` in ``[0, 2**32)``, the range every seeded generator here accepts."""
    if isinstance(value, bool) or not isinstance(value, Integral) or not 0 <= value < SEED_LIMIT:
        raise ValueError(
            f"dataset {dataset!r}: option 'split_seed' must be an integer in [0, 2**32); got {value!r}"
        )
    return int(value)


def check_positive_real(dataset: str, option: str, value: object) -> float:
    """``value`` as a ``float`` if it is a finite number > 0."""
    if isinstance(value, bool) or not isinstance(value, Real) or not 0 < value < float("inf"):
        raise ValueError(f"dataset {dataset!r}: option {option!r} must be a positive number; got {value!r}")
    return float(value)


def check_fraction(dataset: str, option: str, value: object) -> float:
    """``value`` as a ``float`` if it is a number in the open interval (0, 1)."""
    if isinstance(value, bool) or not isinstance(value, Real) or not 0 < value < 1:
        raise ValueError(f"dataset {dataset!r}: option {option!r} must be a number in (0, 1); got {value!r}")
    return float(value)
