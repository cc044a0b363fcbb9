"""BLN's training forward and backward through the fused CPU kernel (``bln_kernel.cpp``).

The same maths as the eager kernel in ``batch_layer_function.py`` (whose docstring derives it),
arranged for the kernel's passes: the output and the input gradient are both of the form
``u (A + G B) [- v (A2 + B2)] + D [+ G] E`` with ``A, A2, D`` per (channel, position), ``B, B2, E``
per (sample, position) and ``G`` per channel, so each is one pass once its reductions are known
(the input-gradient pass also takes the gamma gradient's feature part, a dot product per row);
the reductions are one pass each (forward: sums of x and x^2; backward: sums of g and g x, both
directions), and the small factors between them are one
kernel call each (``forward_factors``, ``backward_factors``): no per-factor torch ops, whose
parallel regions cost more than their arithmetic at these sizes. Where a group's statistics are
ill-conditioned for E[x^2] - E[x]^2 the forward's factors are recomputed here in torch with the
exact variance.
"""

from __future__ import annotations

import torch

from normbench.norms.batch_layer_moments import ILL_CONDITIONED, checked_moments, exact_batch_var, exact_feature_var


def usable(x: torch.Tensor, weights) -> bool:
    """The kernel covers unmasked, contiguous float32/float64 CPU input outside torch.compile."""
    return (weights is None and x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64)
            and x.is_contiguous() and not torch.compiler.is_compiling())


def _factor(t: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    """A (rows, cols) contiguous copy of a broadcastable factor (the pooled batch side is (1, C, 1))."""
    return t.reshape(rows, -1).expand(rows, cols).contiguous()


def _param_or_fill(t, c: int, like: torch.Tensor, fill: float) -> torch.Tensor:
    """A contiguous (C,) parameter, or ``fill`` for a layer without it."""
    return torch.full((c,), fill, dtype=like.dtype) if t is None else t.contiguous()


def _exact_factors(x, sums, gamma, beta, count_b: int, pooled: bool, wf: float, wb: float, eps: float):
    """The forward's statistics and factors in torch ops, with exact variances where needed."""
    n, c, p = x.shape
    sum_b, sq_b, sum_f, sq_f = sums
    inv_b = 1.0 / count_b
    mu_b, var_b, rb = checked_moments(sum_b.view(1, c, -1), sq_b.view(1, c, -1), inv_b, eps,
                                      lambda mean: exact_batch_var(x, None, mean, inv_b, pooled))
    rows = x.new_full((n, 1, c), 1.0 / c)
    mu_f, var_f, rf = checked_moments(sum_f.view(n, 1, p), sq_f.view(n, 1, p), 1.0 / c, eps,
                                      lambda mean: exact_feature_var(x, mean, rows))
    scale_b = rb * (gamma.view(1, c, 1) * wb)
    shift_b = torch.addcmul(beta.view(1, c, 1), scale_b, mu_b, value=-1.0)
    kf = rf * wf
    factors = (_factor(scale_b, c, p), _factor(kf, n, p), _factor(shift_b, c, p),
               _factor(torch.mul(kf, mu_f).neg_(), n, p))
    return (mu_b, var_b, rb), (mu_f, var_f, rf), factors


def forward(kernel, x, gamma, beta, pooled: bool, wf: float, wb: float, eps: float):
    """``(y, (mu_b, var_b, rb), count_b, (mu_f, var_f, rf))`` for ``(N, C, P)`` input; the batch
    statistics are (1, C, P) (or (1, C, 1) pooled), the feature statistics (N, 1, P)."""
    n, c, p = x.shape
    sum_b, sq_b, sum_f, sq_f = kernel.moment_sums(x)
    count_b = n * p if pooled else n
    if pooled:
        sum_b, sq_b = sum_b.sum(1, keepdim=True), sq_b.sum(1, keepdim=True)
    g, b = _param_or_fill(gamma, c, x, 1.0), _param_or_fill(beta, c, x, 0.0)
    mu_b, var_b, rb, mu_f, var_f, rf, *factors, ill = kernel.forward_factors(
        sum_b, sq_b, sum_f, sq_f, g, b, 1.0 / count_b, 1.0 / c, wf, wb, eps, ILL_CONDITIONED)
    batch = (mu_b.view(1, c, -1), var_b.view(1, c, -1), rb.view(1, c, -1))
    feature = (mu_f.view(n, 1, p), var_f.view(n, 1, p), rf.view(n, 1, p))
    if int(ill):
        batch, feature, factors = _exact_factors(x, (sum_b, sq_b, sum_f, sq_f), g, b, count_b, pooled, wf, wb, eps)
    y = kernel.apply_forward(x, *factors, g)
    return y, batch, count_b, feature


def backward(kernel, gy, x, gamma, mu_f, rf, mu_b, rb, count_b: int, pooled: bool, wf: float, wb: float,
             need_x: bool, need_gamma: bool, need_beta: bool):
    """``(dL/dx, dL/dgamma, dL/dbeta)`` (None where not needed)."""
    n, c, p = x.shape
    g = gy.contiguous()
    gm = _param_or_fill(gamma, c, x, 1.0)
    mu_f, rf = mu_f.reshape(n, p), rf.reshape(n, p)
    sum_b_g, sum_b_gx, sum_f_g, sum_f_gx = kernel.gradient_sums(g, x, gm)
    if pooled:
        sum_b_g, sum_b_gx = sum_b_g.sum(1, keepdim=True), sum_b_gx.sum(1, keepdim=True)
    a, b, a2, b2, d, e, g_gamma, g_beta = kernel.backward_factors(
        sum_b_g, sum_b_gx, sum_f_g, sum_f_gx, mu_b.reshape(c, -1), rb.reshape(c, -1), mu_f, rf, gm,
        1.0 / count_b, 1.0 / c, wf, wb)
    # the input-gradient pass also adds gamma's feature part (one read of g and x for both): run
    # it when either is asked for
    gx = kernel.apply_backward(g, x, a, b, a2, b2, d, e, gm, mu_f, rf, g_gamma, wf) if need_x or need_gamma else None
    return gx if need_x else None, g_gamma if need_gamma else None, g_beta if need_beta else None
