"""Channel-first layouts and masks: validation, flattening to (N, C, P), compute dtype.

Every norm takes ``(N, C)``, ``(N, C, L)``, ``(N, C, H, W)`` or ``(N, C, D, H, W)`` and an optional
boolean mask of shape ``(N, *spatial)`` (True = valid). Internally the spatial axes are flattened to
one axis P so that each family reduces over plain dimensions of an ``(N, C, P)`` tensor.
"""

from __future__ import annotations

import torch

SUPPORTED_NDIM = (2, 3, 4, 5)
_LOW_PRECISION = (torch.float16, torch.bfloat16)


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype statistics are accumulated in: float32 for half/bfloat16 inputs, else the input's."""
    return torch.float32 if dtype in _LOW_PRECISION else dtype


def check_input(norm: str, x: torch.Tensor, num_features: int) -> None:
    """Raise ``ValueError`` unless ``x`` is a floating tensor ``(N, C, *spatial)`` with C channels."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"norm {norm!r}: input must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() not in SUPPORTED_NDIM:
        raise ValueError(
            f"norm {norm!r}: input must be (N, C), (N, C, L), (N, C, H, W) or (N, C, D, H, W); "
            f"got shape {tuple(x.shape)}"
        )
    if x.shape[1] != num_features:
        raise ValueError(
            f"norm {norm!r}: built for {num_features} channels (axis 1), got shape {tuple(x.shape)}"
        )
    if not x.is_floating_point():
        raise ValueError(f"norm {norm!r}: input must be floating point, got {x.dtype}")
    if x.shape[0] == 0:
        raise ValueError(f"norm {norm!r}: input has an empty batch (N = 0)")


def check_mask(norm: str, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor | None:
    """Validate a mask against ``x``: bool, shape ``(N, *spatial)``, same device. Returns it."""
    if mask is None:
        return None
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
        got = mask.dtype if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise ValueError(f"norm {norm!r}: mask must be a bool tensor (True = valid), got {got}")
    expected = (x.shape[0], *x.shape[2:])
    if tuple(mask.shape) != expected:
        raise ValueError(
            f"norm {norm!r}: mask must have shape (N, *spatial) = {expected} for input "
            f"{tuple(x.shape)}, got {tuple(mask.shape)}"
        )
    if mask.device != x.device:
        raise ValueError(f"norm {norm!r}: mask is on {mask.device}, input on {x.device}")
    return mask


def flatten(x: torch.Tensor) -> torch.Tensor:
    """View ``(N, C, *spatial)`` as a contiguous ``(N, C, P)``; ``(N, C)`` becomes ``(N, C, 1)``."""
    return x.reshape(x.shape[0], x.shape[1], -1).contiguous()


def mask_weights(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """A bool mask ``(N, *spatial)`` as 0/1 weights ``(N, 1, P)`` that broadcast over channels."""
    return mask.reshape(mask.shape[0], 1, -1).to(dtype)


def spatial_positions(x: torch.Tensor) -> int:
    """Number of spatial positions P (1 for ``(N, C)`` input)."""
    p = 1
    for s in x.shape[2:]:
        p *= s
    return p
