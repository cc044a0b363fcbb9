"""Full Normalization (Lian & Liu, AISTATS 2019): BN's transform with estimates of the whole training
set's statistics, updated by stochastic compositional gradient descent instead of taken per batch.

Lian & Liu show that BN minimizes an objective that depends on how batches are built: each sample's
loss is taken at its *batch's* mean and variance. The objective FN targets takes it at the
statistics of the whole training set, ``min_w (1/n) sum_i f_i(w; E_j[g_j(w)])`` with ``g_j`` a
sample's first and second moments at each layer: a composition of two expectations, for which
stochastic compositional gradient descent (SCGD; Wang, Fang & Liu 2017) tracks the inner
expectation with a running estimate and differentiates through the sampled inner function.

Here, per channel over N and every (valid) position, with ``a`` the update rate::

    mu_B = mean(x),   s_B = mean(x^2)                         (this batch: the sampled inner function)
    mu  <- (1 - a) mu + a mu_B,   s <- (1 - a) s + a s_B      (a = 1 on the first batch)
    var = max(s - mu^2, 0)
    y = gamma (x - mu) / sqrt(var + eps) + beta               (value: the updated estimates)

and the backward (``gradient: compositional``, the default) is SCGD's: the outer function's gradient
at the estimates, chained through the Jacobian of the *batch* moments (coefficient 1, not ``a``):
``dy/dx = df/dx + df/dmu dmu_B/dx + df/ds ds_B/dx``. ``gradient: estimate`` instead differentiates
what the layer computes, the update included (coefficient ``a``): BN with moving-average statistics
in the forward pass, a variant we add for comparison, not SCGD. Eval uses the estimates.
``momentum = 1`` makes FN exactly BN in training (the batch's moments, BN's gradient) with either
gradient; ``momentum = None`` averages every batch seen (rate 1/k).

The second moment, not the variance, is estimated because it is an expectation over samples (the
variance is a function of two), which the compositional form requires; the variance is formed from
the two estimates. ``docs/norms.md`` lists every choice the paper leaves open.
"""

from __future__ import annotations

import torch

from normbench.norms.base import NormModule
from normbench.norms.layout import flatten, mask_weights
from normbench.options import check_choice, check_number, optional

GRADIENTS = ("compositional", "estimate")


def normalize_with_moments(
    x3: torch.Tensor,
    mean: torch.Tensor,
    second: torch.Tensor,
    eps: float,
    gamma: torch.Tensor | None = None,
    beta: torch.Tensor | None = None,
) -> torch.Tensor:
    """``gamma (x - mean) / sqrt(max(second - mean^2, 0) + eps) + beta`` on ``(N, C, P)`` with ``(C,)``
    moments: differentiable in every tensor argument (FN's outer function)."""
    c = x3.shape[1]
    var = (second - mean * mean).clamp_min(0.0)
    y = (x3 - mean.reshape(1, c, 1)) * torch.rsqrt(var + eps).reshape(1, c, 1)
    if gamma is not None:
        y = y * gamma.reshape(1, c, 1)
    if beta is not None:
        y = y + beta.reshape(1, c, 1)
    return y


class FullNorm(NormModule):
    """FN: normalization by running estimates of the training set's moments (see the module docstring)."""

    norm_name = "full"

    def __init__(
        self,
        num_features: int,
        *,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        gradient: str = "compositional",
    ) -> None:
        super().__init__(num_features, affine=affine)
        owner = self.owner
        self.eps = check_number(owner, "eps", eps, low=0.0, low_open=True)
        self.momentum = optional(check_number, owner, "momentum", momentum, low=0.0, high=1.0, low_open=True)
        self.gradient = check_choice(owner, "gradient", gradient, GRADIENTS)
        self.register_buffer("running_mean", torch.zeros(self.num_features))
        self.register_buffer("running_second_moment", torch.ones(self.num_features))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def extra_repr(self) -> str:
        """Options as constructed."""
        return (f"{self.num_features}, eps={self.eps:g}, momentum={self.momentum}, affine={self.affine}, "
                f"gradient={self.gradient!r}")

    def reset_running_stats(self) -> None:
        """Back to the initial estimates (mean 0, second moment 1, no batches)."""
        self.running_mean.zero_()
        self.running_second_moment.fill_(1.0)
        self.num_batches_tracked.zero_()

    def _normalize(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        gamma, beta = self._affine(x.dtype)
        x3 = flatten(x)
        w3 = None if mask is None else mask_weights(mask, x.dtype)
        if self.training:
            mean, second = self._compositional_moments(x3, w3)
        else:
            mean = self.running_mean.to(x.dtype)
            second = self.running_second_moment.to(x.dtype)
        y = normalize_with_moments(x3, mean, second, self.eps, gamma, beta)
        if w3 is not None:
            y = y * w3
        return y.reshape(x.shape)

    def _compositional_moments(self, x3: torch.Tensor, w3: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Update the estimates with this batch's moments; return them with the batch moments' gradient."""
        count = float(x3.shape[0] * x3.shape[2]) if w3 is None else float(w3.sum())
        if count == 0:  # nothing valid in the batch: no sample of the inner function
            return self.running_mean.to(x3.dtype), self.running_second_moment.to(x3.dtype)
        weighted = x3 if w3 is None else x3 * w3
        batch_mean = weighted.sum((0, 2)) / count
        batch_second = (weighted * x3).sum((0, 2)) / count
        with torch.no_grad():
            rate = self._next_rate()
            self.running_mean.lerp_(batch_mean.to(self.running_mean.dtype), rate)
            self.running_second_moment.lerp_(batch_second.to(self.running_second_moment.dtype), rate)
        # value of the estimate; gradient of the batch moments (SCGD's sampled inner Jacobian), or
        # of the update itself, where the batch weighs `rate`
        weight = 1.0 if self.gradient == "compositional" else rate
        mean = self.running_mean.to(x3.dtype) + weight * (batch_mean - batch_mean.detach())
        second = self.running_second_moment.to(x3.dtype) + weight * (batch_second - batch_second.detach())
        return mean, second

    def _next_rate(self) -> float:
        """Count one more batch and return its weight: 1 for the first, then momentum (or 1/k)."""
        self.num_batches_tracked.add_(1)
        k = int(self.num_batches_tracked)
        if k == 1 or self.momentum is None:
            return 1.0 / k
        return self.momentum
