"""The norm registry: names, aliases, option validation, and ``create_norm``.

Adding a norm = one module file with a ``NormModule`` subclass + one ``NORMS.register`` line below
(see docs/architecture.md, "Adding a norm, a model or a dataset").
"""

from __future__ import annotations

from typing import Any

from torch import nn

from normbench.norms.base import NormModule
from normbench.norms.batch import BatchNorm
from normbench.norms.batch_layer import BatchLayerNorm
from normbench.norms.full import FullNorm
from normbench.norms.group import GroupNorm
from normbench.norms.identity import Identity
from normbench.norms.instance import InstanceNorm
from normbench.norms.layer import LayerNorm
from normbench.norms.renorm import BatchRenorm
from normbench.norms.rms import RMSNorm
from normbench.norms.weight import WeightNorm
from normbench.registry import Registry

# Listed in registration order (the five studied norms after ``none``, then extras); names match in
# any case. Error messages have always introduced them as "available: ..." (suite errors quote it).
NORMS: Registry[type[NormModule]] = Registry(
    "norm", reserved=("num_features",), ignore_case=True, listing="registered", names_label="available",
    group="normbench.norms",  # installed plugins (docs/extending.md)
)
NORMS.register("none", Identity)
NORMS.register("batch", BatchNorm, aliases=("bn",))
NORMS.register("layer", LayerNorm, aliases=("ln",))
NORMS.register("instance", InstanceNorm, aliases=("in",))
NORMS.register("group", GroupNorm, aliases=("gn",))
NORMS.register("batch_layer", BatchLayerNorm, aliases=("bln",))
NORMS.register("batch_renorm", BatchRenorm)
NORMS.register("rms", RMSNorm)
NORMS.register("weight", WeightNorm, aliases=("wn",))
NORMS.register("full", FullNorm, aliases=("fn",))

ALIASES: dict[str, str] = NORMS.aliases()


def available() -> list[str]:
    """Canonical norm names, in a stable order (the five studied norms after ``none``, then extras)."""
    return NORMS.available()


def canonical_name(name: str) -> str:
    """Resolve an alias (``bn ln in gn bln``, any case) to its canonical name; unknown -> ValueError."""
    return NORMS.canonical(name)


def norm_options(name: str) -> dict[str, Any]:
    """The options a norm accepts, with their defaults (``None`` where the default depends on others)."""
    return NORMS.options(name) or {}


def create_norm(name: str, num_features: int, **options: Any) -> nn.Module:
    """Build a fresh norm module for ``num_features`` channels; validates every option now.

    Raises ``ValueError`` for an unknown name (listing names and aliases), an unknown option (listing
    the allowed ones) or an invalid value (naming the option and the allowed values). Draws no
    random numbers.
    """
    return NORMS.create(name, options, num_features)
