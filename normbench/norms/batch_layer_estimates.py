"""BLN's population estimates: their update rule, their counts, lookups sized to an input at eval.

Per-position estimates are sized by the training inputs; an eval input may be longer or shorter
(variable-length sequences), so lookups crop or pad them, and positions never seen in training use
the estimate pooled over positions (or BN's initial value where nothing was ever seen).
"""

from __future__ import annotations

import math

import torch


def blend(momentum: float | None, est: torch.Tensor, count: torch.Tensor, new: torch.Tensor, valid) -> None:
    """est <- est + rate (new - est) where valid, in place; rate 1/(k+1) after k updates (the
    equal-weight mean), or ``momentum`` (1 for the first update: the estimate starts at the value)."""
    valid = torch.as_tensor(valid, device=est.device)
    if momentum is None:
        rate = 1.0 / (count + 1.0)
    else:
        rate = torch.where(count > 0, torch.full_like(count, momentum), torch.ones_like(count))
    rate = rate * valid.to(rate.dtype)
    est.add_((new.to(est.dtype) - est) * rate.to(est.dtype))
    count.add_(valid.to(count.dtype))


def common_count(counts: list[torch.Tensor]) -> int:
    """The one value every element of every count tensor holds, or -1 when they differ (or are empty)."""
    if any(c.numel() == 0 for c in counts):
        return -1
    ends = torch.stack([v for c in counts for v in (c.min(), c.max())])
    k = int(ends[0])
    return k if bool((ends == ends[0]).all()) and float(ends[0]) == k else -1


def masked_moments(x3, w3, dims):
    """Mean and biased variance over ``dims`` of valid entries (differentiable, keepdim)."""
    if w3 is None:
        mean = x3.mean(dims, keepdim=True)
        return mean, ((x3 - mean) ** 2).mean(dims, keepdim=True)
    count = (w3.expand_as(x3)).sum(dims, keepdim=True).clamp(min=1)
    mean = (x3 * w3).sum(dims, keepdim=True) / count
    return mean, (((x3 - mean) * w3) ** 2).sum(dims, keepdim=True) / count


def or_default(est: torch.Tensor, count: torch.Tensor, default: float) -> torch.Tensor:
    """``est``, or ``default`` everywhere when it was never updated (count 0)."""
    return est if float(count) > 0 else torch.full_like(est, default)


def per_position(est, count, spatial, default: float, channels: int | None) -> torch.Tensor:
    """Estimate cropped/padded to ``spatial``; unseen positions get the pooled estimate or default.

    ``est`` is ``(C, *S)`` (batch statistics) or ``(*S)`` (feature statistics); returns the same
    leading shape with ``spatial`` positions flattened to P.
    """
    lead = () if channels is None else (channels,)
    spatial = tuple(spatial)
    p = math.prod(spatial) if spatial else 1
    out = torch.full(lead + spatial, default, dtype=est.dtype, device=est.device)
    seen = torch.zeros(spatial, dtype=count.dtype, device=count.device)
    if count.numel() > 0 and count.dim() != len(spatial):
        raise ValueError(
            f"norm 'batch_layer': trained on inputs with {count.dim()} spatial axes, got "
            f"{len(spatial)}; use one layout per layer"
        )
    if count.numel() > 0 and float(count.sum()) > 0:
        overlap = tuple(slice(0, min(a, b)) for a, b in zip(count.shape, spatial))
        out[(slice(None),) * len(lead) + overlap] = est[(slice(None),) * len(lead) + overlap]
        seen[overlap] = count[overlap]
        weights = count.reshape(-1)
        pooled = (est.reshape(lead + (-1,)) * weights).sum(-1) / weights.sum()
        fill = pooled.reshape(lead + (1,) * len(spatial))
        out = torch.where(seen > 0, out, fill.expand_as(out))
    return out.reshape(lead + (p,))
