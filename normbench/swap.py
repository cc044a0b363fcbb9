"""``swap_norms``: put normbench's norm of the same width in place of every norm layer of any ``nn.Module``.

This is how an existing network (a torchvision ResNet, a model from a paper's repository) is
benchmarked with each norm: build it as its authors wrote it, then swap. Replaced, by width:

* ``BatchNorm1d/2d/3d``, ``SyncBatchNorm``, ``InstanceNorm1d/2d/3d`` (``num_features``) and
  ``GroupNorm`` (``num_channels``): channel-first ``(N, C, *spatial)`` like normbench's norms, so
  the new module goes in as it is;
* with ``layer_norm=True`` also ``LayerNorm`` and ``RMSNorm`` over one trailing axis (the
  Transformer case): channel-last ``(N, *, C)``, so the new module is wrapped in
  :class:`ChannelLast`, which moves the channel axis to position 1 and back.

The original layers' parameters and running statistics are dropped: the new norm starts as
normbench builds it (gamma 1, beta 0), drawing no random numbers, so models built from one seed keep
identical weights in every other layer whatever the norm. Norm-like layers it cannot replace (a
``LayerNorm`` over several axes, a lazy module not yet initialised, ``LocalResponseNorm``, a
custom ``*Norm*`` class) are listed in the report with the reason, never silently kept.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.instancenorm import _InstanceNorm

from normbench.models.blocks import build_norm
from normbench.norms import NormModule, create_norm

CHANNEL_FIRST = (_BatchNorm, _InstanceNorm, nn.GroupNorm)  # SyncBatchNorm is a _BatchNorm
CHANNEL_LAST = (nn.LayerNorm, nn.RMSNorm)


@dataclass(frozen=True)
class Swapped:
    """One replaced layer: where it sat, what it was, its width, and whether it was wrapped channel-last."""

    name: str
    original: str
    width: int
    channel_last: bool = False


@dataclass(frozen=True)
class NotSwapped:
    """A norm-like layer left in place, and why."""

    name: str
    original: str
    reason: str


@dataclass
class SwapReport:
    """What :func:`swap_norms` replaced, and what it could not."""

    norm: str
    replaced: list[Swapped] = field(default_factory=list)
    not_replaced: list[NotSwapped] = field(default_factory=list)

    def summary(self) -> str:
        """One line: how many layers of which kinds became ``norm``, and what was left."""
        kinds: dict[str, int] = {}
        for item in self.replaced:
            kinds[item.original] = kinds.get(item.original, 0) + 1
        done = ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items())) or "nothing"
        text = f"replaced {done} by {self.norm}"
        if self.not_replaced:
            text += "; not replaced: " + "; ".join(f"{n.name} ({n.original}: {n.reason})" for n in self.not_replaced)
        return text

    def __str__(self) -> str:
        lines = [f"swap_norms → {self.norm}: {len(self.replaced)} replaced, {len(self.not_replaced)} not replaced"]
        lines += [f"  {s.name}: {s.original}({s.width}){' channel-last' if s.channel_last else ''}"
                  for s in self.replaced]
        lines += [f"  {n.name}: {n.original} left in place: {n.reason}" for n in self.not_replaced]
        return "\n".join(lines)


class ChannelLast(nn.Module):
    """Apply a channel-first norm to channel-last input ``(N, *, C)``: move C to axis 1 and back."""

    def __init__(self, norm: nn.Module) -> None:
        super().__init__()
        self.norm = norm

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``x`` ``(N, *, C)``; ``mask`` ``(N, *)`` marks valid positions, as for the inner norm."""
        y = self.norm(x.movedim(-1, 1)) if mask is None else self.norm(x.movedim(-1, 1), mask=mask)
        return y.movedim(1, -1)


def swap_norms(model: nn.Module, norm: str | Callable[[int], nn.Module], *, layer_norm: bool = False,
               **options: Any) -> SwapReport:
    """Replace every BN/SyncBN/GN/IN layer of ``model`` in place by ``norm`` of the same width.

    ``norm`` is a normbench norm name (alias, entry point or import path) built with ``options``,
    or a factory ``Callable[[int], nn.Module]``. ``layer_norm=True`` also replaces ``LayerNorm`` and
    ``RMSNorm`` over one trailing axis, wrapped in :class:`ChannelLast`. A layer used at several
    places stays shared. Raises ValueError for an unknown norm or a bad option (from the first
    replacement); returns the report of what was and was not replaced.
    """
    factory, label = _factory(norm, options)
    report = SwapReport(norm=label)
    replacements: dict[int, nn.Module] = {}
    # Listed first: replacing while named_modules walks would descend into the layers being removed.
    for name, module in list(model.named_modules(remove_duplicate=False)):
        if not name:
            continue
        if id(module) in replacements:
            _set_submodule(model, name, replacements[id(module)])
            continue
        width, channel_last, reason = _swap_plan(module, layer_norm)
        if reason:
            report.not_replaced.append(NotSwapped(name, type(module).__name__, reason))
            continue
        if width is None:
            continue
        new = _like(module, build_norm(factory, width))
        replacements[id(module)] = ChannelLast(new) if channel_last else new
        _set_submodule(model, name, replacements[id(module)])
        report.replaced.append(Swapped(name, type(module).__name__, width, channel_last))
    return report


def _factory(norm: str | Callable[[int], nn.Module], options: dict[str, Any]) -> tuple[Callable[[int], nn.Module], str]:
    """The norm factory and the label reports use (`group(num_groups=8)`)."""
    if isinstance(norm, str):
        label = norm if not options else f"{norm}({', '.join(f'{k}={v}' for k, v in sorted(options.items()))})"
        return (lambda width: create_norm(norm, width, **options)), label
    if not callable(norm):
        raise TypeError(f"norm must be a normbench norm name or a factory Callable[[int], nn.Module]; got {norm!r}")
    if options:
        raise TypeError("options apply to a norm given by name; bind them into the factory instead")
    return norm, getattr(norm, "__name__", type(norm).__name__)


def _swap_plan(module: nn.Module, layer_norm: bool) -> tuple[int | None, bool, str]:
    """(width, channel-last?, '') for a layer to replace; (None, False, reason) for one to leave with a
    reason; (None, False, '') for anything that is not a norm layer."""
    if isinstance(module, (NormModule, ChannelLast)):
        return None, False, ""
    if isinstance(module, CHANNEL_FIRST):
        width = module.num_channels if isinstance(module, nn.GroupNorm) else module.num_features
        if not width:
            return None, False, "a lazy layer with no width yet: run one forward pass before swapping"
        return int(width), False, ""
    if isinstance(module, CHANNEL_LAST):
        if not layer_norm:
            return None, False, "channel-last; pass layer_norm=True (swap_norms: {layer_norm: true}) to replace it"
        shape = tuple(module.normalized_shape)
        if len(shape) != 1:
            return None, False, f"normalizes over {len(shape)} trailing axes {shape}; only one (the channels) can be swapped"
        return int(shape[0]), True, ""
    if "norm" in type(module).__name__.lower():
        return None, False, ("not a layer swap_norms replaces (BatchNorm*, SyncBatchNorm, GroupNorm, InstanceNorm*; "
                             "LayerNorm/RMSNorm with layer_norm=True)")
    return None, False, ""


def _like(original: nn.Module, new: nn.Module) -> nn.Module:
    """``new`` on the device (and floating dtype) of the original layer's tensors, and in its mode."""
    tensors = list(original.parameters(recurse=False)) + list(original.buffers(recurse=False))
    floating = [t for t in tensors if t.is_floating_point()]
    if floating:
        new = new.to(device=floating[0].device, dtype=floating[0].dtype)
    elif tensors:
        new = new.to(device=tensors[0].device)
    return new.train(original.training)


def _set_submodule(model: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, module)
