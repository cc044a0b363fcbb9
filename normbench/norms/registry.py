"""The norm registry: names, aliases, option validation, and ``create_norm``.

Adding a norm = one module file with a ``NormModule`` subclass + one line in ``_FAMILIES``.
"""

from __future__ import annotations

import inspect
from typing import Any

from torch import nn

from normbench.norms.base import NormModule
from normbench.norms.batch import BatchNorm
from normbench.norms.batch_layer import BatchLayerNorm
from normbench.norms.group import GroupNorm
from normbench.norms.identity import Identity
from normbench.norms.instance import InstanceNorm
from normbench.norms.layer import LayerNorm
from normbench.norms.renorm import BatchRenorm
from normbench.norms.rms import RMSNorm

_FAMILIES: dict[str, type[NormModule]] = {
    "none": Identity,
    "batch": BatchNorm,
    "layer": LayerNorm,
    "instance": InstanceNorm,
    "group": GroupNorm,
    "batch_layer": BatchLayerNorm,
    "batch_renorm": BatchRenorm,
    "rms": RMSNorm,
}
ALIASES: dict[str, str] = {"bn": "batch", "ln": "layer", "in": "instance", "gn": "group", "bln": "batch_layer"}


def available() -> list[str]:
    """Canonical norm names, in a stable order (the five studied norms after ``none``, then extras)."""
    return list(_FAMILIES)


def _names_help() -> str:
    aliases = ", ".join(f"{a} -> {c}" for a, c in ALIASES.items())
    return f"available: {', '.join(available())}; aliases: {aliases}"


def canonical_name(name: str) -> str:
    """Resolve an alias (``bn ln in gn bln``, any case) to its canonical name; unknown -> ValueError."""
    if not isinstance(name, str):
        raise ValueError(f"norm name must be a string, got {name!r}; {_names_help()}")
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    if key not in _FAMILIES:
        raise ValueError(f"unknown norm {name!r}; {_names_help()}")
    return key


def norm_options(name: str) -> dict[str, Any]:
    """The options a norm accepts, with their defaults (``None`` where the default depends on others)."""
    cls = _FAMILIES[canonical_name(name)]
    params = list(inspect.signature(cls.__init__).parameters.values())[2:]  # skip self, num_features
    return {p.name: (None if not _plain(p.default) else p.default) for p in params}


def _plain(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


def create_norm(name: str, num_features: int, **options: Any) -> nn.Module:
    """Build a fresh norm module for ``num_features`` channels; validates every option now.

    Raises ``ValueError`` for an unknown name (listing names and aliases), an unknown option (listing
    the allowed ones) or an invalid value (naming the option and the allowed values). Draws no
    random numbers.
    """
    canonical = canonical_name(name)
    allowed = norm_options(canonical)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        listed = ", ".join(allowed) if allowed else "none (this norm takes no options)"
        raise ValueError(
            f"norm {canonical!r}: unknown option{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(repr(u) for u in unknown)}; allowed options: {listed}"
        )
    return _FAMILIES[canonical](num_features, **options)
