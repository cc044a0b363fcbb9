"""One vocabulary of option checks for norms, models and datasets, with one error format.

Options arrive from YAML suites and ``--set`` overrides, so a value may be a string, a bool or a
float where an integer is meant. Every check returns the accepted value (converted where the type
is part of the contract: ``int``, ``float``, ``tuple``) or raises ``ValueError`` built by
:func:`option_error`, which names the kind, the object, the option, the value and what is allowed::

    model 'mlp': option 'dropout' must be a number in [0, 1); got 1.5

Bools are refused where a
number is meant (``True`` is an ``int`` to Python) and 0/1 where a bool is meant, so a YAML typo is
never read as a flag.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any, TypeVar

T = TypeVar("T")

# numpy's legacy seeding (used inside the mnist1d package) accepts seeds in [0, 2**32).
SEED_LIMIT = 2**32


@dataclass(frozen=True)
class Owner:
    """The object an option belongs to, as error messages name it: ``norm 'batch'``."""

    kind: str  # "norm", "model" or "dataset"
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.name!r}"


def option_error(owner: Owner, option: str, value: Any, requirement: str) -> ValueError:
    """The error for a refused option value: the owner, the option, what is allowed, what was given."""
    return ValueError(f"{owner}: option {option!r} must be {requirement}; got {value!r}")


def unknown_options_error(owner: Owner, unknown: Iterable[str], allowed: Iterable[str]) -> ValueError:
    """The error for option names the owner does not take, listing the ones it does (sorted)."""
    unknown, allowed = sorted(unknown), sorted(allowed)
    listed = ", ".join(allowed) if allowed else f"none (this {owner.kind} takes no options)"
    plural = "s" if len(unknown) > 1 else ""
    return ValueError(
        f"{owner}: unknown option{plural} {', '.join(repr(u) for u in unknown)}; allowed options: {listed}"
    )


def check_known_options(owner: Owner, given: Iterable[str], allowed: Iterable[str]) -> None:
    """Raise :func:`unknown_options_error` if any name in ``given`` is not in ``allowed``."""
    allowed = list(allowed)
    unknown = [name for name in given if name not in allowed]
    if unknown:
        raise unknown_options_error(owner, unknown, allowed)


def resolve_options(owner: Owner, given: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """``defaults`` updated with ``given``; an option not in ``defaults`` is an error."""
    check_known_options(owner, given, defaults)
    return {**defaults, **given}


def _is_integer(value: Any) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def check_bool(owner: Owner, option: str, value: Any) -> bool:
    """``value`` if it is a real bool (not 0/1, not "true")."""
    if not isinstance(value, bool):
        raise option_error(owner, option, value, "true or false")
    return value


def check_choice(owner: Owner, option: str, value: Any, choices: Iterable[str]) -> str:
    """``value`` if it is one of ``choices`` (listed in the order given)."""
    choices = tuple(choices)
    if not isinstance(value, str) or value not in choices:
        raise option_error(owner, option, value, f"one of {', '.join(choices)}")
    return value


def check_int(owner: Owner, option: str, value: Any, minimum: int, maximum: int | None = None) -> int:
    """``value`` as an ``int`` if it is an integer in ``[minimum, maximum]`` (no upper bound when None)."""
    if not _is_integer(value) or value < minimum or (maximum is not None and value > maximum):
        requirement = f"an integer [{minimum}, {maximum}]" if maximum is not None else f"an integer >= {minimum}"
        raise option_error(owner, option, value, requirement)
    return int(value)


def check_positive_int(owner: Owner, option: str, value: Any) -> int:
    """``value`` as an ``int`` if it is an integer >= 1 (worded "a positive integer")."""
    if not _is_integer(value) or value < 1:
        raise option_error(owner, option, value, "a positive integer")
    return int(value)


def check_positive_ints(owner: Owner, option: str, value: Any) -> tuple[int, ...]:
    """A non-empty list (or tuple) of positive integers, as a tuple."""
    items = None if isinstance(value, (str, bytes)) or not isinstance(value, Iterable) else list(value)
    if not items or any(not _is_integer(v) or v < 1 for v in items):
        raise option_error(owner, option, value, "a non-empty list of positive integers")
    return tuple(int(v) for v in items)


def check_int_per_layer(owner: Owner, option: str, value: Any, layers: int, *, minimum: int = 1) -> tuple[int, ...]:
    """One integer >= ``minimum`` per layer: a single int is repeated, a list needs ``layers`` items."""
    if _is_integer(value):
        items = [value] * layers
    elif isinstance(value, Iterable) and not isinstance(value, (str, bytes)):
        items = list(value)
    else:
        items = None
    if items is None or len(items) != layers or any(not _is_integer(v) or v < minimum for v in items):
        what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise option_error(owner, option, value, f"{what} or a list of {layers} such integers (one per layer)")
    return tuple(int(v) for v in items)


def check_seed(owner: Owner, option: str, value: Any) -> int:
    """A seed as an ``int`` in ``[0, 2**32)``, the range every seeded generator here accepts."""
    if not _is_integer(value) or not 0 <= value < SEED_LIMIT:
        raise option_error(owner, option, value, "an integer in [0, 2**32)")
    return int(value)


def check_number(
    owner: Owner,
    option: str,
    value: Any,
    *,
    low: float,
    high: float = math.inf,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """``float(value)`` if it is a finite number in ``[low, high]``; ``*_open`` excludes an end point."""
    ok = _is_number(value) and math.isfinite(value)
    ok = ok and (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
    if not ok:
        left, right = "(" if low_open else "[", ")" if high_open else "]"
        upper = "inf" if math.isinf(high) else f"{high:g}"
        raise option_error(owner, option, value, f"a number in {left}{low:g}, {upper}{right}")
    return float(value)


def check_positive_number(owner: Owner, option: str, value: Any) -> float:
    """``float(value)`` if it is a finite number > 0."""
    if not _is_number(value) or not 0 < value < math.inf:
        raise option_error(owner, option, value, "a positive number")
    return float(value)


def check_auto_or_bool(owner: Owner, option: str, value: Any) -> str | bool:
    """``"auto"``, True or False (0/1 refused, as in :func:`check_bool`)."""
    if value == "auto" or isinstance(value, bool):
        return value
    raise option_error(owner, option, value, "auto, true or false")


def check_auto_or_positive_number(owner: Owner, option: str, value: Any) -> str | float:
    """``"auto"`` or ``float(value)`` if it is a finite number > 0."""
    if value == "auto":
        return value
    if not _is_number(value) or not 0 < value < math.inf:
        raise option_error(owner, option, value, "auto or a positive number")
    return float(value)


def optional(check: Callable[..., T], owner: Owner, option: str, value: Any, *args: Any, **kwargs: Any) -> T | None:
    """None (the owner's default applies) or ``value`` passed through ``check``."""
    return None if value is None else check(owner, option, value, *args, **kwargs)


def divisors(n: int) -> list[int]:
    """All positive divisors of ``n`` in increasing order (e.g. the valid group counts for n channels)."""
    return [d for d in range(1, n + 1) if n % d == 0]
