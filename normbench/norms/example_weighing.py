"""Inference example weighing (Summers & Dinneen, ICLR 2020, "Four Things Everyone Should Know to
Improve Batch Normalization", §3.1): BN at evaluation with moments that mix the example's own.

In training an example is normalized by statistics it is part of (weight 1/B); with population
statistics at inference it is not, a train/inference discrepancy that grows as B shrinks. Inference
example weighing gives the example weight ``alpha`` in the moments used to normalize it, per
sample i and channel c (``E_i`` = mean over the sample's own (valid) positions of that channel)::

    mu_i     = alpha E_i[x]   + (1 - alpha) mu
    s_i      = alpha E_i[x^2] + (1 - alpha) (sigma^2 + mu^2)
    sigma_i^2 = s_i - mu_i^2
    y = gamma (x - mu_i) / sqrt(sigma_i^2 + eps) + beta

with ``mu``, ``sigma^2`` the population (running) estimates: first and second moments are mixed,
as for a batch holding the example with weight alpha. ``alpha = 1/B`` mirrors training; the paper
tunes it on held-out data. On ``(N, C)`` features the example's moments are its value and its
square, so ``sigma_i^2 = (1 - alpha) sigma^2 + alpha (1 - alpha) (x - mu)^2``.
"""

from __future__ import annotations

import torch

from normbench.norms.layout import flatten, mask_weights


def example_weighted_norm(
    x: torch.Tensor,
    mask: torch.Tensor | None,
    mean: torch.Tensor,
    var: torch.Tensor,
    alpha: float,
    eps: float,
    gamma: torch.Tensor | None = None,
    beta: torch.Tensor | None = None,
) -> torch.Tensor:
    """Normalize ``x`` ``(N, C, *spatial)`` with population ``mean``/``var`` ``(C,)`` mixed with each
    sample's own moments at weight ``alpha``; masked positions enter no moment and come out zero."""
    x3 = flatten(x)
    n, c, p = x3.shape
    if mask is None:
        own_mean = x3.mean(2, keepdim=True)
        own_second = (x3 * x3).mean(2, keepdim=True)
        w3 = None
    else:
        w3 = mask_weights(mask, x.dtype)
        count = w3.sum(2, keepdim=True).clamp_min(1.0)  # a sample with no valid position is all zero
        own_mean = (x3 * w3).sum(2, keepdim=True) / count
        own_second = (x3 * x3 * w3).sum(2, keepdim=True) / count
    pop_mean, pop_var = mean.reshape(1, c, 1), var.reshape(1, c, 1)
    mixed_mean = alpha * own_mean + (1.0 - alpha) * pop_mean
    mixed_second = alpha * own_second + (1.0 - alpha) * (pop_var + pop_mean * pop_mean)
    mixed_var = (mixed_second - mixed_mean * mixed_mean).clamp_min(0.0)
    y = (x3 - mixed_mean) * torch.rsqrt(mixed_var + eps)
    if gamma is not None:
        y = y * gamma.reshape(1, c, 1)
    if beta is not None:
        y = y + beta.reshape(1, c, 1)
    if w3 is not None:
        y = y * w3
    return y.reshape(x.shape)
