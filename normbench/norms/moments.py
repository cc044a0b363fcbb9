"""Mask-aware normalization by moments over chosen dims, with a hand-derived backward.

One ``torch.autograd.Function`` serves every family that normalizes each group of values by its own
mean and variance (BN, ghost BN, IN, LN, GN) or by its root mean square (RMSNorm): the caller views
its input so that the statistics are taken over ``dims``, passes the mask as 0/1 weights that
broadcast against that view, and gamma/beta shaped to broadcast as well.

Forward (per group, over valid entries only; n = number of valid entries)::

    mu = sum(m x) / n            var = sum(m (x - mu)^2) / n        (biased, as BN/LN/GN define it)
    xhat = m (x - mu) / sqrt(var + eps)          y = m (gamma xhat + beta)

For RMSNorm (``center=False``) mu is taken as 0, so var is the mean square.

Backward (standard BN algebra restricted to valid entries; g = m dL/dy, gw = gamma g)::

    dL/dx = m / sqrt(var + eps) * (gw - mean_n(gw) - xhat * mean_n(gw xhat))

(the ``mean_n(gw)`` term is absent without centering). Masked entries get zero gradient because
they influence neither the statistics nor any unmasked output.
"""

from __future__ import annotations

import math

import torch
from torch.autograd.function import once_differentiable


def valid_count(
    weights: torch.Tensor | None, shape: torch.Size, dims: tuple[int, ...]
) -> torch.Tensor | float:
    """Number of valid entries per statistics group: a float without mask, else a keepdim tensor."""
    if weights is None:
        return float(math.prod(shape[d] for d in dims))
    # dims along which the mask is broadcast (size 1) contribute their full length
    spread = math.prod(shape[d] for d in dims if weights.shape[d] == 1)
    summed = tuple(d for d in dims if weights.shape[d] != 1)
    count = weights.sum(summed, keepdim=True) if summed else weights
    return count * spread if spread != 1 else count


def sum_to(t: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Sum ``t`` over the dims where ``shape`` has size 1 (the reverse of broadcasting)."""
    dims = tuple(d for d, s in enumerate(shape) if s == 1 and t.shape[d] != 1)
    return t.sum(dims, keepdim=True) if dims else t


class MomentNorm(torch.autograd.Function):
    """y = m * (gamma * m (x - mu) / sqrt(var + eps) + beta), statistics over ``dims`` (see module doc).

    Returns ``(y, mean, var)``; ``mean`` and ``var`` (biased, keepdim) are not differentiable and
    exist so that callers can update running estimates without recomputing them.
    """

    @staticmethod
    def forward(ctx, x, weights, gamma, beta, dims, eps, center):  # noqa: D102 (see class doc)
        count = valid_count(weights, x.shape, dims)
        inv_count = 1.0 / count if weights is None else 1.0 / count.clamp(min=1)
        if center:
            if weights is None:
                mean = x.mean(dims, keepdim=True)
                xc = x - mean
            else:
                mean = (x * weights).sum(dims, keepdim=True) * inv_count
                xc = (x - mean).mul_(weights)
        else:
            mean = None
            xc = x if weights is None else x * weights
        var = (xc * xc).sum(dims, keepdim=True) * inv_count
        rstd = (var + eps).rsqrt()
        xhat = xc * rstd if xc is x else xc.mul_(rstd)
        if gamma is not None and beta is not None:
            y = torch.addcmul(beta, xhat, gamma)
        elif gamma is not None:
            y = xhat * gamma
        elif beta is not None:
            y = xhat + beta
        else:
            y = xhat.clone()
        if weights is not None and beta is not None:
            y.mul_(weights)  # beta is the only term that is not already zero at masked entries
        ctx.save_for_backward(xhat, rstd, gamma, weights)
        ctx.count = count if weights is None else None
        ctx.count_t = None if weights is None else count.clamp(min=1)
        ctx.dims, ctx.center = dims, center
        ctx.beta_shape = None if beta is None else beta.shape
        if mean is None:
            mean = torch.zeros_like(var)
        ctx.mark_non_differentiable(mean, var)
        return y, mean, var

    @staticmethod
    @once_differentiable
    def backward(ctx, gy, _gmean, _gvar):  # noqa: D102 (formula in module doc)
        xhat, rstd, gamma, weights = ctx.saved_tensors
        dims, center = ctx.dims, ctx.center
        count = ctx.count if ctx.count_t is None else ctx.count_t
        g = gy if weights is None else gy * weights
        need_x, _, need_gamma, need_beta = ctx.needs_input_grad[:4]
        g_gamma = g_beta = gx = None
        # BN-shaped case: gamma varies exactly over the non-reduced dims, so the reductions the
        # input gradient needs are gamma times the ones the parameter gradients need.
        bn_shaped = gamma is not None and all(
            (gamma.shape[d] == 1) == (d in dims) for d in range(g.dim())
        )
        if bn_shaped:
            sum_gx = (g * xhat).sum(dims, keepdim=True)
            sum_g = g.sum(dims, keepdim=True) if (center or need_beta) else None
            if need_gamma:
                g_gamma = sum_gx
            if need_beta:
                g_beta = sum_g
            if need_x:
                scale = gamma * rstd
                b = sum_gx * (gamma * rstd / count)
                if center:
                    gx = torch.addcmul(-(sum_g * scale / count), g, scale)
                else:
                    gx = g * scale
                gx.addcmul_(xhat, b, value=-1.0)
        else:
            if need_gamma:
                g_gamma = sum_to(g * xhat, gamma.shape)
            if need_beta:
                g_beta = sum_to(g, ctx.beta_shape)
            if need_x:
                gw = g if gamma is None else g * gamma
                b = (gw * xhat).sum(dims, keepdim=True) * (rstd / count)
                if center:
                    a = gw.sum(dims, keepdim=True) * (rstd / count)
                    gx = torch.addcmul(-a, gw, rstd)
                else:
                    gx = gw * rstd
                gx.addcmul_(xhat, b, value=-1.0)
        if gx is not None and weights is not None:
            gx.mul_(weights)
        if g_gamma is not None:
            g_gamma = g_gamma.reshape(gamma.shape)
        if g_beta is not None:
            g_beta = g_beta.reshape(ctx.beta_shape)
        return gx, None, g_gamma, g_beta, None, None, None


def moment_norm(
    x: torch.Tensor,
    dims: tuple[int, ...],
    *,
    weights: torch.Tensor | None = None,
    gamma: torch.Tensor | None = None,
    beta: torch.Tensor | None = None,
    eps: float,
    center: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Normalize ``x`` over ``dims`` (see ``MomentNorm``); returns ``(y, mean, biased var)``.

    ``weights`` (0/1 mask), ``gamma`` and ``beta`` must broadcast against ``x``; mean and var are
    keepdim tensors over ``dims`` (mean is 0 when ``center=False``).
    """
    return MomentNorm.apply(x.contiguous(), weights, gamma, beta, tuple(dims), float(eps), center)
