"""Training-mode Batch Layer Normalization as one autograd Function with a hand-derived backward.

BLN (Ziaee & Cano 2022) mixes a batch-normalized and a feature-normalized copy of its input::

    xb = (x - mu_b) / sqrt(var_b + eps)     statistics over the batch axis N (per channel, position)
    xf = (x - mu_f) / sqrt(var_f + eps)     statistics over the channel axis C (per sample, position)
    y  = gamma * (wf * xf + wb * xb) + beta

with wf = (1/m - 1e-4) / sqrt(C) and wb = (1 - 1/m - 1e-4) / sqrt(C) in the reference form (the
caller computes them, so the ``offset`` and ``divide_by_sqrt_channels`` variants of the layer reach
forward and backward alike through these two scalars).
Written as a composition of torch ops this costs about eight passes over the tensor in the forward
alone and autograd keeps many intermediates; here the forward makes one pass per needed quantity
and the backward derives the input gradient in closed form. With g = m dL/dy, gz = gamma g and
``mean_b``/``mean_f`` the means over the batch / channel reduction (valid entries only)::

    dL/dx = wf/sf * (gz - mean_f(gz) - xf mean_f(gz xf)) + wb/sb * (gz - mean_b(gz) - xb mean_b(gz xb))

where sf, sb are the two standard deviations; masked entries get zero. The ``pooled`` variant takes
the batch statistics over N and all positions (per channel), like BN.
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from normbench.norms.moments import valid_count

# Samples per chunk: the elementwise chains run chunk by chunk so that each chunk stays in the
# per-core caches between consecutive ops instead of streaming the whole tensor from memory once
# per op. About 1 MiB per chunk suits 1-2 MiB L2 caches; tiny tensors are one chunk.
CHUNK_BYTES = 1 << 20


def chunk_bounds(x: torch.Tensor) -> list[tuple[int, int]]:
    """Consecutive (start, stop) sample ranges of about ``CHUNK_BYTES`` each, covering 0..N.

    Only CPU tensors are chunked: on accelerators each extra op is an extra kernel launch and the
    memory system is not the bottleneck the chunking works around.
    """
    n = x.shape[0]
    if x.device.type != "cpu":
        return [(0, n)]
    sample_bytes = max(1, x[0].numel() * x.element_size())
    step = max(1, CHUNK_BYTES // sample_bytes)
    return [(i, min(n, i + step)) for i in range(0, n, step)]


def _sum_over_np(t: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """sum_{n,p} w[n, p] t[n, c, p] -> (1, C, 1); ``w`` is (n, 1, P). GEMM against t transposed."""
    return torch.bmm(w, t.transpose(1, 2)).sum(0).reshape(1, -1, 1)


def _sum_over_batch(t: torch.Tensor, pooled: bool) -> torch.Tensor:
    """Sum over the batch-statistics reduction: N alone -> (1, C, P), or N and P -> (1, C, 1)."""
    n, c, p = t.shape
    if pooled:
        return _sum_over_np(t, t.new_ones((n, 1, p)))
    return torch.mm(t.new_ones((1, n)), t.reshape(n, -1)).reshape(1, c, p)


class BatchLayerNormTrain(torch.autograd.Function):
    """Fused BLN forward/backward on ``(N, C, P)`` input; see the module docstring for the maths.

    ``forward(x, weights, gamma, beta, pooled, wf, wb, eps)`` returns ``(y, mu_b, var_b, mu_f,
    var_f)``: the output plus the (non-differentiable, biased) statistics used for the running
    estimates. ``weights`` is a 0/1 mask ``(N, 1, P)`` or None; ``gamma``/``beta`` are ``(1, C, 1)``.

    How it stays cheap on CPU: (1) every reduction is a matrix product against ones (or gamma),
    which reads the tensor about three times faster than ``Tensor.sum`` over a middle axis;
    (2) forward and backward each run in two phases over chunks of samples -- statistics, then the
    elementwise output -- so the full tensors are read about once per phase and the intermediate
    products live in a chunk-sized scratch buffer; (3) the only full-size allocations are the output
    and the input gradient, and only the input is saved for the backward.
    """

    @staticmethod
    def forward(ctx, x, weights, gamma, beta, pooled, wf, wb, eps):  # noqa: D102
        n, c, p = x.shape
        count_b = valid_count(weights, x.shape, (0, 2) if pooled else (0,))
        inv_b = 1.0 / count_b if weights is None else 1.0 / count_b.clamp(min=1)
        chunks = chunk_bounds(x)
        scratch = x.new_empty((chunks[0][1], c, p))

        # phase 1: statistics. Feature statistics are exact two-pass ones (a sample's channels
        # all lie in one chunk). Batch statistics span chunks, so they are accumulated as shifted
        # sums around the first sample, var = E[(x-k)^2] - E[x-k]^2 with k = x[0]: k is a draw
        # from the same distribution, so the subtraction loses no precision even when the mean is
        # large against the spread (the plain E[x^2] - E[x]^2 would).
        mu_f = x.new_empty((n, 1, p))
        var_f = x.new_empty((n, 1, p))
        shift_k = x[:1, :, :1].clone() if pooled else x[:1].clone()
        sum_d = sum_d2 = 0.0
        for i, j in chunks:
            xc = x[i:j]
            rows = x.new_full((j - i, 1, c), 1.0 / c)
            work = scratch[: j - i]
            torch.bmm(rows, xc, out=mu_f[i:j])
            torch.sub(xc, mu_f[i:j], out=work).square_()
            torch.bmm(rows, work, out=var_f[i:j])
            torch.sub(xc, shift_k, out=work)
            if weights is not None:
                work.mul_(weights[i:j])
            sum_d = sum_d + _sum_over_batch(work, pooled)
            sum_d2 = sum_d2 + _sum_over_batch(work.square_(), pooled)
        mean_d = sum_d * inv_b
        mu_b = shift_k + mean_d
        var_b = (sum_d2 * inv_b).sub_(mean_d * mean_d).clamp_(min=0.0)
        rf = (var_f + eps).rsqrt()
        rb = (var_b + eps).rsqrt()

        # phase 2: y = gamma (wf rf (x - mu_f) + wb rb (x - mu_b)) + beta, written as
        # x * scale + shift for the feature term, then the batch term, then gamma and the shifts
        kf, kb = rf * wf, rb * wb
        shift_f = -(kf * mu_f)
        shift = -(kb * mu_b)
        if gamma is not None:
            shift = shift * gamma
        if beta is not None:
            shift = shift + beta
        y = torch.empty_like(x)
        for i, j in chunks:
            xc, yc = x[i:j], y[i:j]
            torch.addcmul(shift_f[i:j], xc, kf[i:j], out=yc)
            yc.addcmul_(xc, kb)
            if gamma is not None:
                # in place, not torch.addcmul(shift, yc, gamma, out=yc): with the output aliasing an
                # input that call is about 4x slower on CPU (torch 2.13, measured)
                yc.mul_(gamma)
            yc.add_(shift)
            if weights is not None:
                yc.mul_(weights[i:j])

        ctx.save_for_backward(x, weights, gamma, mu_f, rf, mu_b, rb)
        ctx.count_b = count_b if weights is None else count_b.clamp(min=1)
        ctx.pooled, ctx.wf, ctx.wb, ctx.chunks = pooled, wf, wb, chunks
        ctx.mark_non_differentiable(mu_b, var_b, mu_f, var_f)
        return y, mu_b, var_b, mu_f, var_f

    @staticmethod
    @once_differentiable
    def backward(ctx, gy, *_):  # noqa: D102 (formula in the module docstring)
        x, weights, gamma, mu_f, rf, mu_b, rb = ctx.saved_tensors
        pooled, wf, wb, count_b, chunks = ctx.pooled, ctx.wf, ctx.wb, ctx.count_b, ctx.chunks
        need_x, _, need_gamma, need_beta = ctx.needs_input_grad[:4]
        n, c, p = x.shape
        if gamma is None:
            gamma = torch.ones((1, c, 1), dtype=x.dtype, device=x.device)
        scratch = x.new_empty((chunks[0][1], c, p))
        masked_scratch = None if weights is None else torch.empty_like(scratch)

        def grad_chunk(i: int, j: int) -> torch.Tensor:
            gc = gy[i:j]
            if weights is not None:
                return torch.mul(gc, weights[i:j], out=masked_scratch[: j - i])
            return gc if gc.is_contiguous() else gc.contiguous()

        # phase 1: every sum the gradients need, from g and the product g*x (chunk scratch)
        sum_c_gzx = x.new_empty((n, 1, p))  # sum_c gamma g x
        sum_c_gz = x.new_empty((n, 1, p))  # sum_c gamma g
        sum_b_gx = sum_b_g = g_xf = 0.0
        rf_mu_f = rf * mu_f
        for i, j in chunks:
            gc, xc = grad_chunk(i, j), x[i:j]
            prod = torch.mul(gc, xc, out=scratch[: j - i])
            rows = gamma.reshape(1, 1, c).expand(j - i, 1, c)
            torch.bmm(rows, prod, out=sum_c_gzx[i:j])
            torch.bmm(rows, gc, out=sum_c_gz[i:j])
            sum_b_gx = sum_b_gx + _sum_over_batch(prod, pooled)
            sum_b_g = sum_b_g + _sum_over_batch(gc, pooled)
            if need_gamma:  # sum_{n,p} g xf = sum_{n,p} rf (g x) - rf mu_f g, per channel
                g_xf = g_xf + _sum_over_np(prod, rf[i:j]) - _sum_over_np(gc, rf_mu_f[i:j])

        g_gamma = g_beta = gx = None
        if need_gamma:
            g_xb = rb * (sum_b_gx - mu_b * sum_b_g)
            if not pooled:
                g_xb = g_xb.sum(2, keepdim=True)
            g_gamma = g_xf * wf + g_xb * wb
        if need_beta:
            g_beta = sum_b_g if pooled else sum_b_g.sum(2, keepdim=True)
        if need_x:
            kf, kb = rf * wf, rb * wb
            # feature side, per (n, p): a_f = mean_f(gz), b_f = mean_f(gz xf)
            a_f = sum_c_gz * (1.0 / c)
            b_f = rf * (sum_c_gzx - mu_f * sum_c_gz) * (1.0 / c)
            shift_f = rf_mu_f * b_f - a_f
            coef_f = rf * b_f
            # batch side, per (c, p) or per c when pooled: a_b = mean_b(gz), b_b = mean_b(gz xb)
            a_b = gamma * sum_b_g / count_b
            b_b = gamma * rb * (sum_b_gx - mu_b * sum_b_g) / count_b
            scale_b = gamma * kb
            coef_b = kb * rb * b_b
            shift_b = kb * (mu_b * rb * b_b - a_b)
            gx = torch.empty_like(x)
            # phase 2: gx = kf (gz - a_f - xf b_f) + kb (gz - a_b - xb b_b) with xf = rf (x - mu_f),
            # xb = rb (x - mu_b); the feature part is built first because its scale kf varies
            # over (n, p) and is applied in place
            for i, j in chunks:
                gc, xc, out = grad_chunk(i, j), x[i:j], gx[i:j]
                torch.addcmul(shift_f[i:j], gc, gamma, out=out)
                out.addcmul_(xc, coef_f[i:j], value=-1.0)
                out.mul_(kf[i:j])
                out.addcmul_(gc, scale_b)
                out.addcmul_(xc, coef_b, value=-1.0)
                out.add_(shift_b)
                if weights is not None:
                    out.mul_(weights[i:j])
        return gx, None, g_gamma, g_beta, None, None, None, None
