"""Validation of model options: every model rejects unknown names and bad values the same way.

Models are built while a suite is validated, so these errors are what a user sees for a typo in a
suite file; each message names the model, the option and what is allowed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from numbers import Integral, Real
from typing import Any


def resolve_options(model: str, given: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``defaults`` updated with ``given``; raise ``ValueError`` on an option not in ``defaults``."""
    allowed = sorted(defaults)
    for option in given:
        if option not in defaults:
            raise ValueError(
                f"model {model!r}: unknown option {option!r}; allowed options: {', '.join(allowed)}"
            )
    return {**defaults, **given}


def check_choice(model: str, option: str, value: Any, allowed: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``allowed``, else raise ``ValueError`` listing them."""
    allowed = sorted(allowed)
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(
            f"model {model!r}: option {option!r} must be one of {', '.join(allowed)}; got {value!r}"
        )
    return value


def check_positive_int(model: str, option: str, value: Any) -> int:
    """Return ``value`` as an int if it is a positive integer (bools are not integers here)."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise ValueError(f"model {model!r}: option {option!r} must be a positive integer; got {value!r}")
    return int(value)


def check_positive_ints(model: str, option: str, value: Any) -> tuple[int, ...]:
    """Return a non-empty list of positive integers as a tuple (suite specs may give lists or tuples)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise ValueError(
            f"model {model!r}: option {option!r} must be a non-empty list of positive integers; "
            f"got {value!r}"
        )
    items = list(value)
    if not items or any(isinstance(v, bool) or not isinstance(v, Integral) or v < 1 for v in items):
        raise ValueError(
            f"model {model!r}: option {option!r} must be a non-empty list of positive integers; "
            f"got {value!r}"
        )
    return tuple(int(v) for v in items)


def check_bool(model: str, option: str, value: Any) -> bool:
    """Return ``value`` if it is a bool; 0/1 are refused so a YAML typo is not read as a flag."""
    if not isinstance(value, bool):
        raise ValueError(f"model {model!r}: option {option!r} must be true or false; got {value!r}")
    return value


def check_probability(model: str, option: str, value: Any) -> float:
    """Return ``value`` as a float in [0, 1) (a dropout rate of 1 would zero every activation)."""
    if isinstance(value, bool) or not isinstance(value, Real) or not 0.0 <= value < 1.0:
        raise ValueError(f"model {model!r}: option {option!r} must be a number in [0, 1); got {value!r}")
    return float(value)


def check_positive_float(model: str, option: str, value: Any) -> float:
    """Return ``value`` as a float if it is a finite number > 0."""
    if (
        isinstance(value, bool)
        or not isinstance(value, Real)
        or not 0.0 < float(value) < float("inf")
    ):
        raise ValueError(f"model {model!r}: option {option!r} must be a positive number; got {value!r}")
    return float(value)


def check_nonnegative_int(model: str, option: str, value: Any) -> int:
    """Return ``value`` as an int if it is an integer >= 0 (bools are not integers here)."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 0:
        raise ValueError(f"model {model!r}: option {option!r} must be an integer >= 0; got {value!r}")
    return int(value)


def check_int_per_layer(
    model: str, option: str, value: Any, layers: int, *, minimum: int = 1
) -> tuple[int, ...]:
    """One integer >= ``minimum`` per layer: a single int is repeated, a list needs ``layers`` items."""
    what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
    message = (
        f"model {model!r}: option {option!r} must be {what} or a list of {layers} such integers "
        f"(one per layer); got {value!r}"
    )
    if isinstance(value, Integral) and not isinstance(value, bool):
        items = [value] * layers
    elif isinstance(value, Iterable) and not isinstance(value, (str, bytes)):
        items = list(value)
    else:
        raise ValueError(message)
    if len(items) != layers or any(
        isinstance(v, bool) or not isinstance(v, Integral) or v < minimum for v in items
    ):
        raise ValueError(message)
    return tuple(int(v) for v in items)


def check_auto_or_bool(model: str, option: str, value: Any) -> str | bool:
    """Return ``"auto"``, True or False; anything else is refused (0/1 included, as in ``check_bool``)."""
    if value == "auto" or isinstance(value, bool):
        return value
    raise ValueError(f"model {model!r}: option {option!r} must be auto, true or false; got {value!r}")


def check_auto_or_positive_float(model: str, option: str, value: Any) -> str | float:
    """Return ``"auto"`` or ``value`` as a float if it is a finite number > 0."""
    if value == "auto":
        return value
    if isinstance(value, bool) or not isinstance(value, Real) or not 0.0 < float(value) < float("inf"):
        raise ValueError(
            f"model {model!r}: option {option!r} must be auto or a positive number; got {value!r}"
        )
    return float(value)


def check_optional_positive_int(model: str, option: str, value: Any) -> int | None:
    """Return None (use the model's default) or ``value`` as a positive int."""
    return None if value is None else check_positive_int(model, option, value)
