"""BLN's training forward and backward through the fused CPU kernel (``bln_kernel.cpp``).

The same maths as the eager kernel in ``batch_layer_function.py`` (whose docstring derives it),
arranged for three kernel passes: the output and the input gradient are both of the form
``u (A + G B) [- v (A2 + B2)] + D [+ G] E`` with ``A, A2, D`` per (channel, position), ``B, B2, E``
per (sample, position) and ``G`` per channel, so each is one pass once its reductions are known;
the reductions are one pass each (forward: sums of x and x^2; backward: sums of g and g x, both
directions, plus the gamma gradient's feature part). Small (C, P) and (N, P) factors are computed
here with torch ops.
"""

from __future__ import annotations

import torch

from normbench.norms.batch_layer_moments import exact_batch_var, exact_feature_var, moments_from_squares


def usable(x: torch.Tensor, weights) -> bool:
    """The kernel covers unmasked, contiguous float32/float64 CPU input outside torch.compile."""
    return (weights is None and x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64)
            and x.is_contiguous() and not torch.compiler.is_compiling())


def _factor(t: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    """A (rows, cols) contiguous copy of a broadcastable factor (the pooled batch side is (1, C, 1))."""
    return t.reshape(rows, -1).expand(rows, cols).contiguous()


def _channel_factor(gamma, c: int, like: torch.Tensor) -> torch.Tensor:
    return torch.ones(c, dtype=like.dtype, device=like.device) if gamma is None else gamma.contiguous()


def forward(kernel, x, gamma, beta, pooled: bool, wf: float, wb: float, eps: float):
    """``(y, (mu_b, var_b, rb), count_b, (mu_f, var_f, rf))`` for ``(N, C, P)`` input."""
    n, c, p = x.shape
    sum_b, sq_b, sum_f, sq_f = kernel.moment_sums(x)
    count_b = n * p if pooled else n
    if pooled:
        sum_b, sq_b = sum_b.sum(1, keepdim=True), sq_b.sum(1, keepdim=True)
    inv_b = 1.0 / count_b
    mu_b, var_b, rb, bad_b = moments_from_squares(sum_b.view(1, c, -1), sq_b.view(1, c, -1), inv_b, eps)
    mu_f, var_f, rf, bad_f = moments_from_squares(sum_f.view(n, 1, p), sq_f.view(n, 1, p), 1.0 / c, eps)
    if bool(bad_b.any()):
        var_b = exact_batch_var(x, None, mu_b, inv_b, pooled)
        rb = (var_b + eps).rsqrt_()
    if bool(bad_f.any()):
        var_f = exact_feature_var(x, mu_f, x.new_full((n, 1, c), 1.0 / c))
        rf = (var_f + eps).rsqrt_()
    g = _channel_factor(gamma, c, x)
    scale_b = rb * (g.view(1, c, 1) * wb)
    shift_b = torch.mul(scale_b, mu_b).neg_() if beta is None else torch.addcmul(beta.view(1, c, 1), scale_b, mu_b, value=-1.0)
    kf = rf * wf
    y = kernel.apply_forward(x, _factor(scale_b, c, p), _factor(kf, n, p), _factor(shift_b, c, p),
                             _factor(torch.mul(kf, mu_f).neg_(), n, p), g)
    return y, (mu_b, var_b, rb), count_b, (mu_f, var_f, rf)


def backward(kernel, gy, x, gamma, mu_f, rf, mu_b, rb, count_b: int, pooled: bool, wf: float, wb: float,
             need_x: bool, need_gamma: bool, need_beta: bool):
    """``(dL/dx, dL/dgamma, dL/dbeta)`` (None where not needed)."""
    n, c, p = x.shape
    g = gy.contiguous()
    gm = _channel_factor(gamma, c, x)
    sum_b_g, sum_b_gx, sum_f_g, sum_f_gx, gamma_f = kernel.gradient_sums(
        g, x, gm, mu_f.reshape(n, p).contiguous(), rf.reshape(n, p).contiguous())
    if pooled:
        sum_b_g, sum_b_gx = sum_b_g.sum(1, keepdim=True), sum_b_gx.sum(1, keepdim=True)
    sum_b_g, sum_b_gx = sum_b_g.view(1, c, -1), sum_b_gx.view(1, c, -1)
    mean_b_gxb = (sum_b_gx - mu_b * sum_b_g).mul_(rb / count_b)
    g_gamma = g_beta = gx = None
    if need_gamma:
        g_xb = (mean_b_gxb * count_b).sum(2).reshape(c)
        g_gamma = g_xb.mul_(wb).add_(gamma_f.sum(1), alpha=wf)
    if need_beta:
        g_beta = sum_b_g.sum((0, 2)).reshape(c)
    if need_x:
        # dL/dx = g (scale_b + gamma kf) - x (coef_b + kf rf_b) + shift_b + kf (rf_b mu_f - a_f)
        scale_b = rb * (gm.view(1, c, 1) * wb)
        rb_m = rb * mean_b_gxb
        coef_b = scale_b * rb_m
        shift_b = torch.addcmul(sum_b_g / count_b, mu_b, rb_m, value=-1.0).mul_(scale_b).neg_()
        kf = rf * wf
        sum_f_g, sum_f_gx = sum_f_g.view(n, 1, p), sum_f_gx.view(n, 1, p)
        rf_b = (sum_f_gx - mu_f * sum_f_g).mul_(rf * rf * (1.0 / c))
        shift_f = torch.mul(rf_b, mu_f).sub_(sum_f_g * (1.0 / c)).mul_(kf)
        gx = kernel.apply_backward(g, x, _factor(scale_b, c, p), _factor(kf, n, p), _factor(coef_b, c, p),
                                   _factor(kf * rf_b, n, p), _factor(shift_b, c, p), _factor(shift_f, n, p), gm)
    return gx, g_gamma, g_beta
