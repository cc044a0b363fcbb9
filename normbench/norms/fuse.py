"""Fold an inference-mode batch norm into the preceding convolution (or linear layer).

In eval, BN is the per-channel affine map ``y = s (z - mean) + beta`` with ``s = gamma / sqrt(var +
eps)`` (batch renorm: ``s = gamma / sigma``), so ``BN(conv(x)) = conv'(x)`` with weights ``s W`` and
bias ``s (b - mean) + beta``. The folded layer does the work of the convolution alone, which is
what the throughput comparison measures against the unfolded pair.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from normbench.norms.batch import BatchNorm
from normbench.norms.renorm import BatchRenorm

_FOLDABLE = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def bn_scale_shift(bn: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel (scale, shift) of an eval-mode batch norm, in float64."""
    if isinstance(bn, BatchRenorm):
        mean, scale = bn.running_mean.double(), 1.0 / bn.running_std.double()
    elif isinstance(bn, (BatchNorm, nn.modules.batchnorm._BatchNorm)):
        if bn.running_mean is None:
            raise ValueError(
                "fuse_conv_bn: the batch norm has no running statistics "
                "(track_running_stats=False), so its eval output depends on the batch; cannot fold"
            )
        mean = bn.running_mean.double()
        scale = (bn.running_var.double() + bn.eps).rsqrt()
    else:
        raise ValueError(
            f"fuse_conv_bn: cannot fold {type(bn).__name__}; allowed: normbench 'batch' or "
            "'batch_renorm' modules, or torch.nn.BatchNorm1d/2d/3d"
        )
    if bn.weight is not None:
        scale = scale * bn.weight.detach().double()
    shift = -mean * scale
    if bn.bias is not None:
        shift = shift + bn.bias.detach().double()
    return scale, shift


def fuse_conv_bn(conv: nn.Module, bn: nn.Module) -> nn.Module:
    """Return a copy of ``conv`` whose output equals ``bn(conv(x))`` with ``bn`` in eval mode.

    ``conv``: ``nn.Conv1d/2d/3d`` (any groups, padding, stride) or ``nn.Linear``; ``bn``: a normbench
    ``batch`` (with running statistics) or ``batch_renorm`` module, or a torch BatchNorm. Neither
    argument is modified. Masks are not part of the folded layer: fold only unmasked pipelines.
    """
    if not isinstance(conv, _FOLDABLE):
        raise ValueError(
            f"fuse_conv_bn: cannot fold into {type(conv).__name__}; allowed: Conv1d, Conv2d, "
            "Conv3d, Linear"
        )
    out_channels = conv.out_features if isinstance(conv, nn.Linear) else conv.out_channels
    if bn.num_features != out_channels:
        raise ValueError(
            f"fuse_conv_bn: the batch norm has {bn.num_features} channels but the layer outputs "
            f"{out_channels}"
        )
    scale, shift = bn_scale_shift(bn)
    fused = copy.deepcopy(conv)
    weight = conv.weight.detach().double()
    bias = (
        torch.zeros(out_channels, dtype=torch.float64, device=weight.device)
        if conv.bias is None else conv.bias.detach().double()
    )
    new_weight = weight * scale.reshape(-1, *([1] * (weight.dim() - 1)))
    new_bias = bias * scale + shift
    fused.weight = nn.Parameter(new_weight.to(conv.weight.dtype), requires_grad=conv.weight.requires_grad)
    fused.bias = nn.Parameter(new_bias.to(conv.weight.dtype), requires_grad=conv.weight.requires_grad)
    return fused.eval()
