"""Training-mode Batch Layer Normalization as autograd Functions with hand-derived backwards.

BLN (Ziaee & Cano 2022) mixes a batch-normalized and a feature-normalized copy of its input::

    xb = (x - mu_b) / sqrt(var_b + eps)     statistics over the batch axis N (per channel, position)
    xf = (x - mu_f) / sqrt(var_f + eps)     statistics over the channel axis C (per sample, position)
    y  = gamma * (wf * xf + wb * xb) + beta

with wf = (1/m - 1e-4) / sqrt(C) and wb = (1 - 1/m - 1e-4) / sqrt(C) in the reference form (the
caller computes them, so the ``offset`` and ``divide_by_sqrt_channels`` variants of the layer reach
forward and backward alike through these two scalars). With g = m dL/dy, gz = gamma g and
``mean_b``/``mean_f`` the means over the batch / channel reduction (valid entries only)::

    dL/dx = wf/sf * (gz - mean_f(gz) - xf mean_f(gz xf)) + wb/sb * (gz - mean_b(gz) - xb mean_b(gz xb))

where sf, sb are the two standard deviations; masked entries get zero. The ``pooled`` variant takes
the batch statistics over N and all positions (per channel), like BN.

Two kernels, both made of whole-tensor torch ops, each of which runs in parallel across the
intra-op threads (no Python loop over pieces of the tensor):

* ``batch_layer_norm_rows`` for one position per sample (``(N, C)`` features) where the fused
  whole-step call (``bln_rows_kernel.cpp``, driven by ``BatchLayerNorm._train_rows_fused``) does
  not apply: the batch term is
  torch's own BN kernel over N and the feature term torch's own LN kernel over C, forward and
  backward, with BN's kernel updating the batch population estimates in the same pass.
* ``BatchLayerNormTrain`` for ``(N, C, P)``: on unmasked contiguous float CPU input, BLN's fused
  kernel (``batch_layer_fused.py``, ``bln_kernel.cpp``: 3 passes forward, 5 backward) when it could
  be built; otherwise every reduction is a matrix product against a row of weights (sums over C) or
  a plain sum over N, the elementwise work is three fused multiply-adds forward and five backward,
  and the statistics come from one squared copy of the input (see ``moments_from_squares``).
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from normbench.norms import batch_layer_fused as fused
from normbench.norms import bln_kernel
from normbench.norms.batch_layer_moments import (
    checked_moments,
    exact_batch_var,
    exact_feature_var,
    sum_over_batch,
    sum_over_channels,
    sum_over_positions,
)
from normbench.norms.moments import valid_count


def _statistics(x, weights, pooled, eps, sq):
    """Batch and feature moments of ``x`` as (mean, biased var, 1/sqrt(var + eps)) each, plus the
    valid count of each batch group; ``sq`` holds x^2 (times the mask)."""
    n, c, _ = x.shape
    count_b = valid_count(weights, x.shape, (0, 2) if pooled else (0,))
    inv_b = 1.0 / count_b if weights is None else 1.0 / count_b.clamp(min=1)
    xw = x if weights is None else x * weights
    batch = checked_moments(
        sum_over_batch(xw, pooled), sum_over_batch(sq, pooled), inv_b, eps,
        lambda mean: exact_batch_var(x, weights, mean, inv_b, pooled),
        None if weights is None else count_b > 1)
    rows = x.new_full((n, 1, c), 1.0 / c)
    # feature statistics ignore the mask (a sample's channels are all valid or all padding); padded
    # positions get a finite, unused variance, and are left out of the conditioning check
    ex2_f = sum_over_channels(rows, sq if weights is None else x * x)
    feature = checked_moments(
        sum_over_channels(rows, x), ex2_f, 1.0, eps, lambda mean: exact_feature_var(x, mean, rows),
        None if weights is None else weights.bool())
    return batch, count_b, feature


def _eager_forward(x, weights, gamma, beta, pooled, wf, wb, eps):
    """``(y, (mu_b, var_b, rb), count_b, (mu_f, var_f, rf))`` in whole-tensor torch ops (any device,
    masks); ``count_b`` is clamped at 1 for masked groups."""
    c = x.shape[1]
    scratch = torch.mul(x, x) if weights is None else torch.mul(x, weights).mul_(x)
    (mu_b, var_b, rb), count_b, (mu_f, var_f, rf) = _statistics(x, weights, pooled, eps, scratch)
    # y = x (gamma wb rb + gamma wf rf) + (beta - gamma wb rb mu_b) - gamma wf rf mu_f: the scale
    # is an outer sum over (c, p) and (n, p), written once into the scratch (one pass) and
    # applied in one fused multiply-add; the last shift is an outer product of two small factors
    g3 = torch.ones((1, c, 1), dtype=x.dtype, device=x.device) if gamma is None else gamma.reshape(1, c, 1)
    scale_b = rb * (g3 * wb)
    shift_b = torch.mul(scale_b, mu_b).neg_() if beta is None else torch.addcmul(beta.reshape(1, c, 1), scale_b, mu_b, value=-1.0)
    if wf != 0.0:
        kf = rf * wf
        scale = torch.addcmul(scale_b, g3, kf, out=scratch)
        y = torch.addcmul(shift_b, x, scale)
        y.addcmul_(g3, kf.mul_(mu_f), value=-1.0)
    else:
        y = torch.addcmul(shift_b, x, scale_b)
    if weights is not None:
        y.mul_(weights)
        count_b = count_b.clamp(min=1)
    return y, (mu_b, var_b, rb), count_b, (mu_f, var_f, rf)


def _eager_backward(gy, x, weights, gamma, mu_f, rf, mu_b, rb, count_b, pooled, wf, wb, need_x, need_gamma, need_beta):
    """``(dL/dx, dL/dgamma, dL/dbeta)`` in whole-tensor torch ops (None where not needed)."""
    c = x.shape[1]
    g = gy.contiguous() if weights is None else gy * weights
    g_times_x = g * x
    sum_b_g, sum_b_gx = sum_over_batch(g, pooled), sum_over_batch(g_times_x, pooled)
    # mean over the batch group of g xb (per c, p; or per c when pooled)
    mean_b_gxb = (sum_b_gx - mu_b * sum_b_g).mul_(rb / count_b)
    g_gamma = g_beta = gx = None
    if need_gamma:
        # sum_{n,p} g xf = sum_{n,p} rf (g x) - rf mu_f g, per channel
        g_xf = sum_over_positions(rf, g_times_x).sub_(sum_over_positions(rf * mu_f, g))
        g_xb = mean_b_gxb * count_b
        g_gamma = (g_xb if pooled else g_xb.sum(2, keepdim=True)).reshape(c).mul_(wb).add_(g_xf, alpha=wf)
    if need_beta:
        g_beta = sum_b_g.sum((0, 2)).reshape(c)
    if need_x:
        g3 = torch.ones((1, c, 1), dtype=x.dtype, device=x.device) if gamma is None else gamma.reshape(1, c, 1)
        gx = _input_grad(x, g, g_times_x, g3, mu_f, rf, mu_b, rb, sum_b_g, mean_b_gxb, count_b, wf, wb)
        if weights is not None:
            gx.mul_(weights)
    return gx, g_gamma, g_beta


class BatchLayerNormTrain(torch.autograd.Function):
    """BLN forward/backward on ``(N, C, P)`` input; see the module docstring for the maths.

    ``forward(x, weights, gamma, beta, pooled, wf, wb, eps)`` returns ``(y, mu_b, var_b, mu_f,
    var_f)``: the output plus the (non-differentiable, biased) statistics used for the population
    estimates. ``weights`` is a 0/1 mask ``(N, 1, P)`` or None; ``gamma``/``beta`` are ``(C,)`` or
    None. Full-size memory: the output, one scratch tensor (x^2, then the feature term) forward;
    the input gradient and one scratch (g x, then the feature part) backward; only the input is
    saved.
    """

    @staticmethod
    def forward(ctx, x, weights, gamma, beta, pooled, wf, wb, eps):  # noqa: D102
        kernel = bln_kernel.kernel() if fused.usable(x, weights) else None
        if kernel is not None:
            y, (mu_b, var_b, rb), count_b, (mu_f, var_f, rf) = fused.forward(kernel, x, gamma, beta, pooled, wf, wb, eps)
        else:
            y, (mu_b, var_b, rb), count_b, (mu_f, var_f, rf) = _eager_forward(x, weights, gamma, beta, pooled, wf, wb, eps)
        ctx.save_for_backward(x, weights, gamma, mu_f, rf, mu_b, rb)
        ctx.kernel, ctx.count_b, ctx.pooled, ctx.wf, ctx.wb = kernel, count_b, pooled, wf, wb
        ctx.mark_non_differentiable(mu_b, var_b, mu_f, var_f)
        return y, mu_b, var_b, mu_f, var_f

    @staticmethod
    @once_differentiable
    def backward(ctx, gy, *_):  # noqa: D102 (formula in the module docstring)
        x, weights, gamma, mu_f, rf, mu_b, rb = ctx.saved_tensors
        need_x, _, need_gamma, need_beta = ctx.needs_input_grad[:4]
        args = (gamma, mu_f, rf, mu_b, rb, ctx.count_b, ctx.pooled, ctx.wf, ctx.wb, need_x, need_gamma, need_beta)
        if ctx.kernel is not None:
            gx, g_gamma, g_beta = fused.backward(ctx.kernel, gy, x, *args)
        else:
            gx, g_gamma, g_beta = _eager_backward(gy, x, weights, *args)
        return gx, None, g_gamma, g_beta, None, None, None, None


def _input_grad(x, g, scratch, g3, mu_f, rf, mu_b, rb, sum_b_g, mean_b_gxb, count_b, wf, wb):
    """dL/dx from the reductions; ``scratch`` (g x) is reduced here, then overwritten.

    dL/dx = g (gamma wb rb + gamma wf rf) - x (coef_b + coef_f) + (shift_b + shift_f), coefficients
    per (c, p) (batch side) and per (n, p) (feature side): the two outer sums are written into the
    scratch one at a time (one pass each) and applied in one fused multiply-add each.
    """
    n, c, _ = x.shape
    rows = g3.reshape(1, 1, c).expand(n, 1, c)
    sum_f_g, sum_f_gx = sum_over_channels(rows, g), sum_over_channels(rows, scratch)
    # batch side: wb rb gamma (g - mean_b(g) - xb mean_b(g xb)) with xb = rb (x - mu_b)
    scale_b = rb * (g3 * wb)
    rb_m = rb * mean_b_gxb
    coef_b = scale_b * rb_m
    shift_b = torch.addcmul(sum_b_g / count_b, mu_b, rb_m, value=-1.0).mul_(scale_b).neg_()
    if wf == 0.0:
        return torch.addcmul(shift_b, g, scale_b).addcmul_(x, coef_b, value=-1.0)
    # feature side, per (n, p): wf rf (gamma g - a_f - xf b_f) with xf = rf (x - mu_f),
    # a_f = mean_c(gamma g), b_f = mean_c(gamma g xf)
    kf = rf * wf
    a_f = sum_f_g * (1.0 / c)
    rf_b = (sum_f_gx - mu_f * sum_f_g).mul_(rf * rf * (1.0 / c))  # rf b_f
    gx = torch.addcmul(shift_b, g, torch.addcmul(scale_b, g3, kf, out=scratch))
    gx.addcmul_(x, torch.add(coef_b, kf * rf_b, out=scratch), value=-1.0)
    return gx.add_(torch.mul(rf_b, mu_f).sub_(a_f).mul_(kf))


def batch_layer_norm_rows(
    x: torch.Tensor, gamma: torch.Tensor | None, beta: torch.Tensor | None,
    running_mean: torch.Tensor | None, running_var: torch.Tensor | None, rate: float, wf: float, wb: float,
    eps: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """BLN on ``(N, C)`` through torch's BN (over N) and LN (over C) kernels; returns ``(y, mean_b,
    invstd_b, mean_f, rstd_f)`` (the statistics are not differentiable).

    Autograd differentiates the composition with both kernels' own backward (no Python backward:
    at these sizes the per-call overhead is the cost). Given ``running_mean``/``running_var``, BN's
    kernel moves them toward this batch's mean and unbiased variance by ``rate``, as BLN's
    population update does.
    """
    c = x.shape[1]
    weight_b = torch.full((c,), wb, dtype=x.dtype, device=x.device) if gamma is None else gamma * wb
    weight_f = None if gamma is None else gamma * wf
    y, mean_b, invstd_b = torch.native_batch_norm(x, weight_b, beta, running_mean, running_var, True, rate, eps)
    term_f, mean_f, rstd_f = torch.native_layer_norm(x, (c,), weight_f, None, eps)
    y = y + term_f if weight_f is not None else torch.add(y, term_f, alpha=wf)
    return y, mean_b, invstd_b, mean_f, rstd_f
