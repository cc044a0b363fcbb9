"""A small residual CNN following normbench's model-builder protocol.

normbench calls ``build_small_resnet(norm=..., input_shape=..., num_classes=..., **options)``:
``norm`` is a factory ``norm(num_features) -> nn.Module`` that gives the suite's norm, so the same
builder runs with every norm. Layers are created in a fixed order and norms draw no random
numbers, so one seed gives the same convolution weights whatever the norm (runs pair by seed).
"""

from __future__ import annotations

import torch
from torch import nn


class ResidualBlock(nn.Module):
    """conv → norm → ReLU → conv → norm, plus the input, then ReLU."""

    def __init__(self, norm, width: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.norm1 = norm(width)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.norm2 = norm(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Same shape in and out."""
        y = torch.relu(self.norm1(self.conv1(x)))
        return torch.relu(x + self.norm2(self.conv2(y)))


class SmallResNet(nn.Module):
    """Stem convolution, ``blocks`` residual blocks, global average pooling, a linear classifier."""

    def __init__(self, norm, in_channels: int, num_classes: int, width: int, blocks: int) -> None:
        super().__init__()
        self.stem = nn.Conv2d(in_channels, width, 3, padding=1, bias=False)
        self.stem_norm = norm(width)
        self.blocks = nn.Sequential(*(ResidualBlock(norm, width) for _ in range(blocks)))
        self.head = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``(N, num_classes)`` for images ``(N, C, H, W)``; images have no padding mask."""
        x = torch.relu(self.stem_norm(self.stem(x)))
        return self.head(self.blocks(x).mean(dim=(2, 3)))


def build_small_resnet(*, norm, input_shape, num_classes, width: int = 16, blocks: int = 2) -> nn.Module:
    """The builder normbench calls; ``width`` and ``blocks`` are its options (read from this signature)."""
    if len(input_shape) != 3:
        raise ValueError(f"model 'example_resnet' needs images (C, H, W); got input_shape {tuple(input_shape)}")
    if width < 1 or blocks < 0:
        raise ValueError(f"model 'example_resnet': width must be >= 1 and blocks >= 0; got {width}, {blocks}")
    return SmallResNet(norm, input_shape[0], num_classes, width, blocks)
