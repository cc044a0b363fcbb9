"""Models built as their authors wrote them, with normbench's norm swapped in (a suite's `swap_norms`).

A model entry with ``swap_norms: true`` names any callable returning an ``nn.Module`` (e.g.
``torchvision.models:resnet18``). It follows a different protocol from normbench's builders: it is
called with the entry's options only (``factory(**options)``: no ``norm``, ``input_shape`` or
``num_classes`` of normbench's; give the class count in its options), and its norm layers are then
replaced by :func:`normbench.swap.swap_norms`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from normbench.models.registry import MODELS
from normbench.options import Owner, check_known_options
from normbench.registry import signature_options
from normbench.swap import SwapReport, swap_norms


def build_swapped_model(name: str, options: Mapping[str, Any], *, norm: str, norm_options: Mapping[str, Any],
                        layer_norm: bool = False) -> tuple[nn.Module, SwapReport]:
    """Call the factory ``name`` with ``options``, then swap its norm layers for ``norm``.

    ValueError for a built-in model (those take normbench's norm directly) or an option the
    factory's signature does not take; whatever the factory raises propagates.
    """
    entry = MODELS.entry(name)
    if not entry.is_plugin:
        raise ValueError(
            f"model {name!r}: swap_norms is for a model that builds its own norm layers (an import path or an "
            f"installed plugin); the built-in {name!r} takes normbench's norm directly: remove swap_norms"
        )
    if "norm" in (signature_options(entry.obj) or {}):
        raise ValueError(f"model {name!r} takes normbench's `norm` factory (the builder protocol): remove swap_norms")
    allowed = signature_options(entry.obj)  # nothing is reserved: the factory gets the options alone
    if allowed is not None:
        check_known_options(Owner("model", name), options, allowed)
    model = entry.obj(**options)
    if not isinstance(model, nn.Module):
        raise TypeError(f"model {name!r} returned a {type(model).__name__}, not a torch.nn.Module")
    return model, swap_norms(model, norm, layer_norm=layer_norm, **norm_options)
