"""Batch and feature moments for BLN's kernels: from sums of x and x^2, with an exact fallback.

Both BLN training kernels (eager, ``batch_layer_function.py``, and fused, ``batch_layer_fused.py``)
get their statistics from sums of x and x^2 in one read, E[x^2] - E[x]^2, and recompute a group's
variance around its mean only where that formula would lose precision.
"""

from __future__ import annotations

import torch

# A group whose squared mean exceeds this multiple of (variance + eps) has its variance recomputed
# around its mean: E[x^2] - E[x]^2 loses about log10 of this ratio digits (float32: at most ~1e-6
# relative here), and well-scaled activations sit far below it.
ILL_CONDITIONED = 16.0


def moments_from_squares(
    total: torch.Tensor, total_sq: torch.Tensor, inv_count, eps: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mean, biased variance (E[x^2] - E[x]^2, clamped at 0), 1 / sqrt(var + eps), and a flag
    tensor marking the groups whose variance this formula cannot give to float precision (squared
    mean > ILL_CONDITIONED (var + eps))."""
    mean = total * inv_count
    mean_sq = mean * mean
    var = (total_sq * inv_count).sub_(mean_sq).clamp_(min=0.0)
    var_eps = var + eps
    return mean, var, var_eps.rsqrt(), mean_sq > var_eps.mul_(ILL_CONDITIONED)


def checked_moments(total, total_sq, inv_count, eps: float, exact_var, relevant=None):
    """``moments_from_squares``, with the variance recomputed by ``exact_var(mean)`` when any group
    (among ``relevant`` ones, if given) is ill-conditioned; returns (mean, var, 1/sqrt(var + eps))."""
    mean, var, rstd, bad = moments_from_squares(total, total_sq, inv_count, eps)
    if relevant is not None:
        bad &= relevant
    if bool(bad.any()):
        var = exact_var(mean)
        rstd = (var + eps).rsqrt_()
    return mean, var, rstd


def sum_over_batch(t: torch.Tensor, pooled: bool) -> torch.Tensor:
    """Sum over the batch-statistics reduction: N alone -> (1, C, P), or N and P -> (1, C, 1)."""
    return t.sum((0, 2) if pooled else 0, keepdim=True)


def sum_over_channels(rows: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """sum_c rows[n, 0, c] t[n, c, p] -> (N, 1, P): a batched matrix product, parallel over N."""
    return torch.bmm(rows, t)


def sum_over_positions(rows: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """sum_{n,p} rows[n, 0, p] t[n, c, p] -> (C,): per-sample products (rows against t's
    transpose, the orientation that reads t once), then summed over the batch."""
    return torch.bmm(rows, t.transpose(1, 2)).sum(0).reshape(-1)


def exact_batch_var(x, weights, mean, inv_count, pooled):
    """Biased batch variance of (N, C, P) ``x`` around ``mean``, masked entries left out."""
    d = x - mean
    if weights is not None:
        d.mul_(weights)
    return sum_over_batch(d.square_(), pooled) * inv_count


def exact_feature_var(x, mean, rows):
    """Biased feature variance of (N, C, P) ``x`` around ``mean``; ``rows`` holds 1/C per channel."""
    return sum_over_channels(rows, (x - mean).square_())
