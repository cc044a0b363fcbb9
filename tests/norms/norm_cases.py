"""Shared inputs for the norm tests: the four layouts, random inputs, masks and affine parameters."""

from __future__ import annotations

import numpy as np
import torch

C = 4
#: one small shape per supported layout: (N, C), (N, C, L), (N, C, H, W), (N, C, D, H, W)
LAYOUTS = {
    "NC": (6, C),
    "NCL": (4, C, 7),
    "NCHW": (4, C, 3, 5),
    "NCDHW": (4, C, 2, 3, 2),
}


def random_input(shape, rng: np.random.Generator, scale: float = 2.0, offset: float = 0.7) -> np.ndarray:
    """Float64 values with a non-zero mean, so that centering is exercised."""
    return rng.normal(offset, scale, size=shape)


def random_mask(shape, rng: np.random.Generator, min_valid: int = 2) -> np.ndarray | None:
    """A bool mask (N, *spatial) with about 40 % padding and >= ``min_valid`` valid entries per sample.

    For (N, C) input the mask selects samples, so there it keeps >= ``min_valid`` valid samples.
    """
    n, spatial = shape[0], shape[2:]
    if not spatial:
        mask = rng.random(n) > 0.4
        mask[rng.permutation(n)[:min_valid]] = True
        return mask
    mask = rng.random((n,) + spatial) > 0.4
    flat = mask.reshape(n, -1)
    for i in range(n):
        flat[i, rng.permutation(flat.shape[1])[:min_valid]] = True
    return flat.reshape(mask.shape)


def randomize_affine(module: torch.nn.Module, rng: np.random.Generator) -> tuple:
    """Give gamma/beta random values (so the affine map is tested) and return them as arrays."""
    gamma = beta = None
    with torch.no_grad():
        if getattr(module, "weight", None) is not None:
            gamma = rng.uniform(0.5, 1.5, module.weight.shape)
            module.weight.copy_(torch.from_numpy(gamma))
        if getattr(module, "bias", None) is not None:
            beta = rng.normal(0, 0.5, module.bias.shape)
            module.bias.copy_(torch.from_numpy(beta))
    return gamma, beta


def to_torch(x: np.ndarray | None) -> torch.Tensor | None:
    """numpy -> torch without changing dtype (float64 stays float64)."""
    return None if x is None else torch.from_numpy(np.ascontiguousarray(x))
