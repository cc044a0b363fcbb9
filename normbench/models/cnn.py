"""``cnn2d``: a small conv net for 8×8 to 32×32 images with a norm slot after every convolution.

Each block is Conv(k×k, "same" padding) → norm and activation in the configured order, followed by
a 2×2 max-pool while the feature map is at least 4×4 (so 8×8 digits get two pools and never shrink
below 2×2); then global average pooling and a linear head.

Options (defaults): ``channels`` (32, 64), ``kernel_size`` 3 (odd, padding ``k // 2``),
``activation`` relu (relu | sigmoid | tanh | gelu), ``placement`` before (before | after),
``bias`` true (kept even before a norm so that the convolutions are identical across norms).

Masks: ``forward(x, mask)`` takes a boolean ``(N, H, W)`` mask of valid pixels. Padded pixels are
zeroed at the input and after every block (so convolutions see zeros there), the norms get the mask,
pooling takes the maximum over valid pixels only and keeps a pooled pixel valid when any of its
inputs was, and the global average is over valid pixels only. Values at padded pixels therefore
never change the logits.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from normbench.models.blocks import ACTIVATIONS, PLACEMENTS, Feeding, NormActivation, NormFactory, build_norm
from normbench.options import Owner, check_bool, check_choice, check_positive_int, check_positive_ints, resolve_options

NAME = "cnn2d"
OWNER = Owner("model", NAME)
MIN_POOL_SIZE = 4  # pool only maps at least this large, so the last map keeps ≥ 2×2 positions

DEFAULTS: dict[str, Any] = {
    "channels": (32, 64),
    "kernel_size": 3,
    "activation": "relu",
    "placement": "before",
    "bias": True,
}


class ConvBlock(nn.Module):
    """Conv → norm/activation → optional 2×2 max-pool, mask-aware."""

    def __init__(self, conv: nn.Conv2d, norm_act: NormActivation, pool: bool) -> None:
        super().__init__()
        self.conv = conv
        self.norm_act = norm_act
        self.pool = pool

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(N, C_in, H, W)`` → ``(N, C_out, H', W')`` and the mask at the output resolution."""
        x = self.norm_act.apply_in_order(self.conv(x), mask)
        if mask is None:
            return (F.max_pool2d(x, 2) if self.pool else x), None
        valid = mask.unsqueeze(1)
        if not self.pool:
            return x.masked_fill(~valid, 0.0), mask
        # -inf at padded pixels so the max is over valid pixels only (activations can be negative).
        pooled = F.max_pool2d(x.masked_fill(~valid, float("-inf")), 2)
        pooled_mask = F.max_pool2d(valid.to(x.dtype), 2).squeeze(1) > 0
        return torch.where(pooled_mask.unsqueeze(1), pooled, torch.zeros_like(pooled)), pooled_mask

    def extra_repr(self) -> str:
        return f"pool={self.pool}"


class CNN2d(nn.Module):
    """Conv blocks → global average pool → linear head; ``config`` holds the resolved options."""

    def __init__(self, blocks: list[ConvBlock], head: nn.Linear, config: dict[str, Any]) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.head = head
        self.config = config

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``x`` of shape ``(N, C, H, W)`` (optional bool ``mask`` ``(N, H, W)``) → logits ``(N, K)``."""
        if mask is not None:
            if x.dim() != 4 or tuple(mask.shape) != (x.shape[0], *x.shape[2:]):
                raise ValueError(
                    f"mask shape {tuple(mask.shape)} does not match input {tuple(x.shape)}: "
                    "expected (N, H, W)"
                )
            mask = mask.to(torch.bool)
            x = x.masked_fill(~mask.unsqueeze(1), 0.0)
        for block in self.blocks:
            x, mask = block(x, mask)
        if mask is None:
            features = x.mean(dim=(2, 3))
        else:
            valid = mask.unsqueeze(1).to(x.dtype)
            # clamp: a sample with no valid pixel gets zero features rather than NaN
            features = (x * valid).sum(dim=(2, 3)) / valid.sum(dim=(2, 3)).clamp_min(1.0)
        return self.head(features)


def build_cnn2d(
    *, norm: NormFactory, input_shape: tuple[int, ...], num_classes: int, **options: Any
) -> CNN2d:
    """Build a ``cnn2d`` from validated options (see the module docstring for names and defaults)."""
    if len(input_shape) != 3:
        raise ValueError(
            f"model {NAME!r} needs an image input_shape (C, H, W); got {tuple(input_shape)!r}"
        )
    config = resolve_options(OWNER, options, DEFAULTS)
    channels = check_positive_ints(OWNER, "channels", config["channels"])
    kernel_size = check_positive_int(OWNER, "kernel_size", config["kernel_size"])
    if kernel_size % 2 == 0:
        raise ValueError(
            f"model {NAME!r}: option 'kernel_size' must be odd (for same-size padding); got {kernel_size}"
        )
    activation = check_choice(OWNER, "activation", config["activation"], ACTIVATIONS)
    placement = check_choice(OWNER, "placement", config["placement"], PLACEMENTS)
    bias = check_bool(OWNER, "bias", config["bias"])
    config.update(channels=channels, kernel_size=kernel_size, activation=activation,
                  placement=placement, bias=bias)

    # Fixed construction order (block by block, then the head) and RNG-free norms (build_norm):
    # one seed gives the same convolution weights whatever the norm.
    in_channels, height, width = input_shape
    blocks = []
    for out_channels in channels:
        conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=bias)
        pool = min(height, width) >= MIN_POOL_SIZE
        norm_act = NormActivation(build_norm(norm, out_channels, Feeding.layer(conv)), activation, placement)
        blocks.append(ConvBlock(conv, norm_act, pool))
        if pool:
            height, width = height // 2, width // 2
        in_channels = out_channels
    head = nn.Linear(in_channels, num_classes)
    return CNN2d(blocks, head, config)
