"""RMSNorm (Zhang & Sennrich 2019): rescale by the root mean square, without re-centering.

``y = gamma * x / sqrt(mean(x^2) + eps)`` (plus ``beta`` with ``bias=True``; the paper has none). The
mean is over C and every spatial position per sample (like ``layer``), or over C alone at each
position with ``per_position=True`` (the usual Transformer form). The paper's equation has no eps;
the authors' code adds 1e-8 to the RMS itself, while ``torch.nn.RMSNorm``, T5 and LLaMA add eps
inside the square root, which keeps the gradient finite at x = 0; we follow the latter.
"""

from __future__ import annotations

import torch

from normbench.norms.base import NormModule
from normbench.norms.layout import flatten, mask_weights
from normbench.norms.moments import moment_norm
from normbench.options import check_bool, check_number, option_error


class RMSNorm(NormModule):
    """RMSNorm over (C, *spatial) per sample, or over C per position with ``per_position=True``."""

    norm_name = "rms"

    def __init__(
        self,
        num_features: int,
        *,
        eps: float = 1e-6,
        affine: bool = True,
        bias: bool = False,
        per_position: bool = False,
    ) -> None:
        bias = check_bool(self.owner, "bias", bias)
        if bias and not affine:
            raise option_error(self.owner, "bias", bias, "false when affine is false (beta is part of the affine map)")
        super().__init__(num_features, affine=affine, bias=bias)
        self.eps = check_number(self.owner, "eps", eps, low=0.0, low_open=True)
        self.per_position = check_bool(self.owner, "per_position", per_position)

    def extra_repr(self) -> str:
        """Options as constructed."""
        return (
            f"{self.num_features}, eps={self.eps:g}, affine={self.affine}, "
            f"bias={self.bias is not None}, per_position={self.per_position}"
        )

    def _fast_path(self, x: torch.Tensor):
        """``torch.rms_norm`` over C (``(N, C)`` input, or per position) when there is no beta."""
        if self.bias is not None or not (x.dim() == 2 or self.per_position):
            return None
        return self._native_rows if x.dim() == 2 else self._native_per_position

    def _native_rows(self, x: torch.Tensor) -> torch.Tensor:
        return torch.rms_norm(x, (self.num_features,), self.weight, self.eps)

    def _native_per_position(self, x: torch.Tensor) -> torch.Tensor:
        return torch.rms_norm(x.movedim(1, -1), (self.num_features,), self.weight, self.eps).movedim(-1, 1)

    def _normalize(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        gamma, beta = self._affine(x.dtype)
        c = self.num_features
        y, _, _ = moment_norm(
            flatten(x), (1,) if self.per_position else (1, 2),
            weights=None if mask is None else mask_weights(mask, x.dtype),
            gamma=None if gamma is None else gamma.reshape(1, c, 1),
            beta=None if beta is None else beta.reshape(1, c, 1),
            eps=self.eps, center=False,
        )
        return y.reshape(x.shape)
