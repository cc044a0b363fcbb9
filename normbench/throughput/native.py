"""torch's own module for a normbench layer: the "native" twin a layer measurement is held against.

For every layer whose definition a ``torch.nn`` module computes exactly (same statistics, same
running-estimate update, same eval behaviour), ``native_twin`` builds that module with the layer's
options; the throughput run times it on the same input, in the same mode and memory format, in
blocks interleaved with the layer's, and stores normbench / native (the wrapper tax). Where no
torch module is equivalent the twin is None and the reason is stored instead.

| normbench layer | torch module |
|---|---|
| ``none`` | ``nn.Identity`` |
| ``batch`` (torch convention, no ghost batches) | ``nn.BatchNorm1d/2d/3d`` |
| ``layer`` on ``(N, C)`` / over (C, *spatial) | ``nn.LayerNorm(C)`` / ``nn.GroupNorm(1, C)`` |
| ``group`` | ``nn.GroupNorm(G, C)`` |
| ``instance`` (spatial input) | ``nn.InstanceNorm1d/2d/3d`` (affine as configured) |
| ``rms`` on ``(N, C)`` without bias | ``nn.RMSNorm(C)`` |
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

_BATCH_NORMS = {2: nn.BatchNorm1d, 3: nn.BatchNorm1d, 4: nn.BatchNorm2d, 5: nn.BatchNorm3d}
_INSTANCE_NORMS = {3: nn.InstanceNorm1d, 4: nn.InstanceNorm2d, 5: nn.InstanceNorm3d}
NO_EQUIVALENT = "no torch module computes this layer"


def native_twin(layer: nn.Module, shape: tuple[int, ...]) -> tuple[nn.Module | None, str]:
    """(torch's module equal to ``layer`` on input of ``shape``, its description), or (None, why
    there is none). The module has the layer's parameter values, so both compute the same numbers."""
    builder = _BUILDERS.get(getattr(layer, "norm_name", ""))
    if builder is None:
        return None, NO_EQUIVALENT
    twin, why = builder(layer, shape)
    if twin is None:
        return None, why
    with torch.no_grad():
        for name in ("weight", "bias"):
            ours, theirs = getattr(layer, name, None), getattr(twin, name, None)
            if ours is not None and theirs is not None:
                theirs.copy_(ours.reshape(theirs.shape))
    return twin, _describe(twin)


def _describe(twin: nn.Module) -> str:
    return f"torch.nn.{type(twin).__name__}({twin.extra_repr()})"


def _identity(layer, shape):
    return nn.Identity(), ""


def _batch(layer, shape):
    if layer.convention != "torch":
        return None, "keras convention: torch's BatchNorm updates the moving variance with Bessel's correction"
    if layer.ghost_batch_size is not None:
        return None, "ghost batches: torch's BatchNorm normalizes the whole batch at once"
    return _BATCH_NORMS[len(shape)](
        shape[1], eps=layer.eps, momentum=layer.momentum, affine=layer.affine,
        track_running_stats=layer.track_running_stats,
    ), ""


def _layer(layer, shape):
    if layer.per_position:
        return None, "per-position LN on channel-first input: torch's LayerNorm normalizes the last axis"
    if len(shape) == 2:
        return nn.LayerNorm(shape[1], eps=layer.eps, elementwise_affine=layer.affine), ""
    return nn.GroupNorm(1, shape[1], eps=layer.eps, affine=layer.affine), ""


def _group(layer, shape):
    return nn.GroupNorm(layer.num_groups, shape[1], eps=layer.eps, affine=layer.affine), ""


def _instance(layer, shape):
    if len(shape) == 2:
        return None, "instance norm is undefined on (N, C) input"
    return _INSTANCE_NORMS[len(shape)](
        shape[1], eps=layer.eps, momentum=layer.momentum, affine=layer.affine,
        track_running_stats=layer.track_running_stats,
    ), ""


def _rms(layer, shape):
    if layer.bias is not None:
        return None, "torch's RMSNorm has no bias"
    if len(shape) != 2:
        return None, "RMSNorm over channel-first positions: torch's RMSNorm normalizes the last axis"
    return nn.RMSNorm(shape[1], eps=layer.eps, elementwise_affine=layer.affine), ""


_BUILDERS: dict[str, Callable] = {
    "none": _identity, "batch": _batch, "layer": _layer, "group": _group, "instance": _instance, "rms": _rms,
}
