"""Batch renormalization (Ioffe 2017): BN whose training output is corrected toward the moving averages.

Training, per channel (Ioffe 2017, Algorithm 1), with batch statistics over N and positions::

    sigma_B = sqrt(var_B + eps)                    (biased var_B, valid entries only)
    r = stop_gradient(clip(sigma_B / sigma, 1/r_max, r_max))
    d = stop_gradient(clip((mu_B - mu) / sigma, -d_max, d_max))
    y = gamma * ((x - mu_B) / sigma_B * r + d) + beta
    mu += a (mu_B - mu);  sigma += a (sigma_B - sigma)          (after r, d are computed)

Eval: ``y = gamma (x - mu) / sigma + beta``. The moving *standard deviation* is kept, as in the paper
(initial mu = 0, sigma = 1). The paper's schedule: r_max = 1 and d_max = 0 (plain BN) for the first
5,000 steps, then relaxed to r_max = 3 by step 40,000 and d_max = 5 by step 25,000; it does not say
how, so the bounds grow linearly in between. Steps count the training forwards of this layer.
``a`` (``momentum``) defaults to 0.01, the update rate of Keras' ``renorm_momentum=0.99``; the paper
leaves it as a hyper-parameter and notes it must not be too small.
"""

from __future__ import annotations

import torch

from normbench.norms.base import NormModule
from normbench.norms.batch import require_two_values
from normbench.norms.layout import flatten, mask_weights
from normbench.norms.moments import moment_norm
from normbench.options import check_int, check_number, option_error


def relaxed_bound(start: float, end: float, step: int, warmup: int, reached: int) -> float:
    """The clipping bound at ``step``: ``start`` until ``warmup``, linear to ``end`` at ``reached``."""
    if step <= warmup:
        return start
    if step >= reached:
        return end
    return start + (end - start) * (step - warmup) / (reached - warmup)


class BatchRenorm(NormModule):
    """Batch renormalization with r_max / d_max bounds on the warm-up schedule of Ioffe (2017)."""

    norm_name = "batch_renorm"

    def __init__(
        self,
        num_features: int,
        *,
        eps: float = 1e-5,
        momentum: float = 0.01,
        affine: bool = True,
        r_max: float = 3.0,
        d_max: float = 5.0,
        warmup_steps: int = 5000,
        r_max_steps: int = 40000,
        d_max_steps: int = 25000,
    ) -> None:
        super().__init__(num_features, affine=affine)
        owner = self.owner
        self.eps = check_number(owner, "eps", eps, low=0.0, low_open=True)
        self.momentum = check_number(owner, "momentum", momentum, low=0.0, high=1.0, low_open=True)
        self.r_max = check_number(owner, "r_max", r_max, low=1.0)
        self.d_max = check_number(owner, "d_max", d_max, low=0.0)
        self.warmup_steps = check_int(owner, "warmup_steps", warmup_steps, 0)
        self.r_max_steps = check_int(owner, "r_max_steps", r_max_steps, 0)
        self.d_max_steps = check_int(owner, "d_max_steps", d_max_steps, 0)
        for option, value in (("r_max_steps", r_max_steps), ("d_max_steps", d_max_steps)):
            if value < self.warmup_steps:
                raise option_error(owner, option, value, f"an integer >= warmup_steps ({self.warmup_steps})")
        self.register_buffer("running_mean", torch.zeros(self.num_features))
        self.register_buffer("running_std", torch.ones(self.num_features))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def extra_repr(self) -> str:
        """Options as constructed."""
        return (
            f"{self.num_features}, eps={self.eps:g}, momentum={self.momentum:g}, r_max={self.r_max:g}, "
            f"d_max={self.d_max:g}, warmup_steps={self.warmup_steps}, r_max_steps={self.r_max_steps}, "
            f"d_max_steps={self.d_max_steps}"
        )

    def reset_running_stats(self) -> None:
        """Back to mu = 0, sigma = 1 and step 0 (which also restarts the r_max/d_max schedule)."""
        self.running_mean.zero_()
        self.running_std.fill_(1.0)
        self.num_batches_tracked.zero_()

    def current_bounds(self) -> tuple[float, float]:
        """(r_max, d_max) that the next training step will use."""
        step = int(self.num_batches_tracked)
        r = relaxed_bound(1.0, self.r_max, step, self.warmup_steps, self.r_max_steps)
        d = relaxed_bound(0.0, self.d_max, step, self.warmup_steps, self.d_max_steps)
        return r, d

    def _normalize(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        gamma, beta = self._affine(x.dtype)
        c = self.num_features
        pshape = (1, c, 1)
        x3 = flatten(x)
        w3 = None if mask is None else mask_weights(mask, x.dtype)
        mu = self.running_mean.to(x.dtype).reshape(pshape)
        sigma = self.running_std.to(x.dtype).reshape(pshape)
        if self.training:
            count = float(x3.shape[0] * x3.shape[2]) if w3 is None else w3.sum() * 1.0
            require_two_values("batch renorm", count, x, "the batch")
            if w3 is None:
                # torch's fused kernel returns xhat with its batch mean and 1/sigma_B
                xhat, mean, invstd = torch.native_batch_norm(x3, None, None, None, None, True, 0.0, self.eps)
                mu_b, sigma_b = mean.reshape(pshape), invstd.reshape(pshape).reciprocal()
            else:
                xhat, mu_b, var_b = moment_norm(x3, (0, 2), weights=w3, eps=self.eps)
                sigma_b = (var_b + self.eps).sqrt()
            with torch.no_grad():
                r_max, d_max = self.current_bounds()
                r = (sigma_b / sigma).clamp(1.0 / r_max, r_max)
                d = ((mu_b - mu) / sigma).clamp(-d_max, d_max)
                self.running_mean.lerp_(mu_b.reshape(c).to(self.running_mean.dtype), self.momentum)
                self.running_std.lerp_(sigma_b.reshape(c).to(self.running_std.dtype), self.momentum)
                self.num_batches_tracked.add_(1)
            # r and d are constants for the gradient (stop_gradient in the paper)
            scale = r if gamma is None else gamma.reshape(pshape) * r
            shift = d if gamma is None else gamma.reshape(pshape) * d
            if beta is not None:
                shift = shift + beta.reshape(pshape)
            y = torch.addcmul(shift, xhat, scale)
        else:
            scale = 1.0 / sigma if gamma is None else gamma.reshape(pshape) / sigma
            shift = -mu * scale
            if beta is not None:
                shift = shift + beta.reshape(pshape)
            y = torch.addcmul(shift, x3, scale)
        if w3 is not None:
            y = y * w3
        return y.reshape(x.shape)
