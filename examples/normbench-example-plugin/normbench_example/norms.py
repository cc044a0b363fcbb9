"""ScaleNorm (Nguyen & Salazar 2019) following normbench's norm protocol: ``ScaleNorm(num_features, **options)``.

``y = g · x / max(‖x‖₂, eps)``, the L2 norm taken over the channels at each position, with one
learnable scalar ``g`` initialised to sqrt(C). Input is channel-first ``(N, C, *spatial)``;
``forward(x, mask=None)`` sets padded positions (mask False) to zero. The statistics are per
position, so padding never enters the valid positions' values. Construction draws no random numbers.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class ScaleNorm(nn.Module):
    """Per-position L2 normalization over channels with one learnable scale."""

    def __init__(self, num_features: int, *, eps: float = 1e-5) -> None:
        super().__init__()
        if eps <= 0:
            raise ValueError(f"norm 'example_scale': option 'eps' must be a positive number; got {eps!r}")
        self.num_features = num_features
        self.eps = eps
        self.scale = nn.Parameter(torch.tensor(math.sqrt(num_features)))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Normalize ``x`` ``(N, C, *spatial)``; ``mask`` ``(N, *spatial)`` marks valid positions."""
        y = self.scale * x / x.norm(dim=1, keepdim=True).clamp_min(self.eps)
        return y if mask is None else y * mask.unsqueeze(1).to(y.dtype)
