"""Layer normalization (Ba, Kiros & Hinton 2016), as Wu & He (2018) define it for conv nets.

Default: per sample, mean and biased variance over C and every spatial position (valid positions
only when masked), with a per-channel affine ``gamma_c``, ``beta_c`` -- GroupNorm with one group.
``per_position=True`` normalizes over C alone at each position, the form sequence models and
Transformers use (``torch.nn.LayerNorm(C)`` applied to channel-last tokens). Train and eval behave
identically: no statistics are kept.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from normbench.norms.base import NormModule
from normbench.norms.layout import flatten, mask_weights
from normbench.norms.moments import moment_norm
from normbench.options import check_bool, check_number


class LayerNorm(NormModule):
    """LN over (C, *spatial) per sample, or over C per position with ``per_position=True``."""

    norm_name = "layer"

    def __init__(
        self, num_features: int, *, eps: float = 1e-5, affine: bool = True, per_position: bool = False
    ) -> None:
        super().__init__(num_features, affine=affine)
        self.eps = check_number(self.owner, "eps", eps, low=0.0, low_open=True)
        self.per_position = check_bool(self.owner, "per_position", per_position)

    def extra_repr(self) -> str:
        """Options as constructed."""
        return f"{self.num_features}, eps={self.eps:g}, affine={self.affine}, per_position={self.per_position}"

    def _fast_path(self, x: torch.Tensor):
        """``torch.layer_norm`` over C for ``(N, C)`` input and per position; ``torch.group_norm``
        with one group (per-channel affine) over (C, *spatial) otherwise."""
        if self.per_position:
            return self._native_per_position
        if x[0].numel() <= 1:  # torch's group_norm rejects one-value groups
            return None
        return self._native_rows if x.dim() == 2 else self._native_one_group

    def _native_rows(self, x: torch.Tensor) -> torch.Tensor:
        return torch.layer_norm(x, (self.num_features,), self.weight, self.bias, self.eps,
                                torch.backends.cudnn.enabled)

    def _native_one_group(self, x: torch.Tensor) -> torch.Tensor:
        return torch.group_norm(x, 1, self.weight, self.bias, self.eps, torch.backends.cudnn.enabled)

    def _native_per_position(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.layer_norm(x.movedim(1, -1), (self.num_features,), self.weight, self.bias, self.eps,
                             torch.backends.cudnn.enabled)
        return y.movedim(-1, 1)

    def _normalize(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        gamma, beta = self._affine(x.dtype)
        if self.per_position:
            # statistics over C only: a position's output never depends on another position, so
            # the mask only has to zero the padded positions afterwards
            y = F.layer_norm(x.movedim(1, -1), (self.num_features,), gamma, beta, self.eps).movedim(-1, 1)
            return y if mask is None else y * mask.unsqueeze(1).to(y.dtype)
        if mask is None and x[0].numel() > 1:  # torch's group_norm rejects one-value groups
            return F.group_norm(x, 1, gamma, beta, self.eps)
        c = self.num_features
        y, _, _ = moment_norm(
            flatten(x), (1, 2), weights=None if mask is None else mask_weights(mask, x.dtype),
            gamma=None if gamma is None else gamma.reshape(1, c, 1),
            beta=None if beta is None else beta.reshape(1, c, 1),
            eps=self.eps,
        )
        return y.reshape(x.shape)
