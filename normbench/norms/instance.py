"""Instance normalization (Ulyanov, Vedaldi & Lempitsky 2016): per sample and channel, over positions.

Each (sample, channel) is normalized by the mean and biased variance of its own spatial positions
(valid ones when masked). ``(N, C)`` input has no spatial axis, so the statistics are undefined and
``forward`` raises ``NormUndefinedError``. ``affine`` defaults to True, as in Wu & He's comparison
(``torch.nn.InstanceNorm`` defaults to False). With ``track_running_stats=True`` the layer keeps,
like ``torch.nn.InstanceNorm``, moving averages of the instance means and unbiased variances averaged
over the batch, and uses them in eval; by default eval uses the instance statistics, as in training.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from normbench.norms.base import NormModule
from normbench.norms.errors import NormUndefinedError
from normbench.norms.layout import flatten, mask_weights
from normbench.norms.moments import moment_norm
from normbench.options import check_bool, check_number


class InstanceNorm(NormModule):
    """IN over the spatial positions of each (sample, channel); undefined on ``(N, C)`` input."""

    norm_name = "instance"

    def __init__(
        self,
        num_features: int,
        *,
        eps: float = 1e-5,
        affine: bool = True,
        track_running_stats: bool = False,
        momentum: float = 0.1,
    ) -> None:
        super().__init__(num_features, affine=affine)
        owner = self.owner
        self.eps = check_number(owner, "eps", eps, low=0.0, low_open=True)
        self.momentum = check_number(owner, "momentum", momentum, low=0.0, high=1.0, low_open=True)
        self.track_running_stats = check_bool(owner, "track_running_stats", track_running_stats)
        if self.track_running_stats:
            self.register_buffer("running_mean", torch.zeros(self.num_features))
            self.register_buffer("running_var", torch.ones(self.num_features))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)

    def extra_repr(self) -> str:
        """Options as constructed."""
        return (
            f"{self.num_features}, eps={self.eps:g}, affine={self.affine}, "
            f"track_running_stats={self.track_running_stats}, momentum={self.momentum:g}"
        )

    def reset_running_stats(self) -> None:
        """Back to the initial estimates (mean 0, variance 1) when they are tracked."""
        if self.track_running_stats:
            self.running_mean.zero_()
            self.running_var.fill_(1.0)

    def _fast_path(self, x: torch.Tensor):
        """``torch.group_norm`` with one group per channel (IN without running estimates; GN's kernel
        is the fast one), ``torch.instance_norm`` with them (same update as ``torch.nn.InstanceNorm``);
        None on ``(N, C)`` (undefined: the general path raises) and with one position."""
        if x.dim() == 2 or x[0, 0].numel() <= 1:
            return None
        if not self.track_running_stats:
            return self._native_groups
        return self._native_tracked if self.training else self._native_running

    def _native_groups(self, x: torch.Tensor) -> torch.Tensor:
        return torch.group_norm(x, self.num_features, self.weight, self.bias, self.eps,
                                torch.backends.cudnn.enabled)

    def _native_tracked(self, x: torch.Tensor) -> torch.Tensor:
        return torch.instance_norm(x, self.weight, self.bias, self.running_mean, self.running_var, True,
                                   self.momentum, self.eps, torch.backends.cudnn.enabled)

    def _native_running(self, x: torch.Tensor) -> torch.Tensor:
        return torch.instance_norm(x, self.weight, self.bias, self.running_mean, self.running_var, False,
                                   self.momentum, self.eps, torch.backends.cudnn.enabled)

    def _normalize(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        if x.dim() == 2:
            raise NormUndefinedError(
                f"instance norm statistics are undefined for input of shape {tuple(x.shape)}: it "
                "normalizes each sample's channel over its spatial positions, and (N, C) input has "
                "no spatial axis; use 'layer', 'batch' or 'group' for feature vectors"
            )
        gamma, beta = self._affine(x.dtype)
        c = self.num_features
        pshape = (1, c, 1)
        g3 = None if gamma is None else gamma.reshape(pshape)
        b3 = None if beta is None else beta.reshape(pshape)
        x3 = flatten(x)
        w3 = None if mask is None else mask_weights(mask, x.dtype)
        if self.track_running_stats and not self.training:
            mean = self.running_mean.to(x.dtype).reshape(pshape)
            rstd = (self.running_var.to(x.dtype).reshape(pshape) + self.eps).rsqrt()
            y = (x3 - mean) * rstd
            if g3 is not None:
                y = y * g3
            if b3 is not None:
                y = y + b3
            return (y if w3 is None else y * w3).reshape(x.shape)
        if w3 is None and not self.track_running_stats and x3.shape[2] > 1:
            return F.group_norm(x, c, gamma, beta, self.eps)
        y, mean, var = moment_norm(x3, (2,), weights=w3, gamma=g3, beta=b3, eps=self.eps)
        if self.track_running_stats:
            self._update_running(mean, var, x3, w3)
        return y.reshape(x.shape)

    @torch.no_grad()
    def _update_running(self, mean, var, x3, w3) -> None:
        """Average the instance statistics over the batch, then one EMA step (torch's semantics)."""
        n = (
            torch.full((x3.shape[0], 1, 1), float(x3.shape[2]), dtype=x3.dtype, device=x3.device)
            if w3 is None else w3.sum(2, keepdim=True)
        )
        has_mean = (n >= 1).to(x3.dtype)  # instances with at least one valid position
        has_var = (n >= 2).to(x3.dtype)  # ... and with an unbiased variance
        if float(has_mean.sum()) > 0:
            batch_mean = (mean * has_mean).sum(0) / has_mean.sum(0)
            self.running_mean.lerp_(batch_mean.reshape(-1).to(self.running_mean.dtype), self.momentum)
        if float(has_var.sum()) > 0:
            unbiased = var * n / (n - 1).clamp(min=1)
            batch_var = (unbiased * has_var).sum(0) / has_var.sum(0)
            self.running_var.lerp_(batch_var.reshape(-1).to(self.running_var.dtype), self.momentum)
