"""The ``none`` norm: the identity, except that masked positions are zeroed like every other norm."""

from __future__ import annotations

import torch

from normbench.norms.base import NormModule


class Identity(NormModule):
    """y = x (times the mask); no parameters, no statistics."""

    norm_name = "none"
    fast_path_any_dtype = True  # returning x is exact in every dtype: no round trip through float32

    def __init__(self, num_features: int) -> None:
        super().__init__(num_features, affine=False)

    def _fast_path(self, x: torch.Tensor):
        """Without a mask the identity is exactly ``x``: nothing to call."""
        return _same

    def _normalize(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        return x if mask is None else x * mask.unsqueeze(1).to(x.dtype)


def _same(x: torch.Tensor) -> torch.Tensor:
    return x
