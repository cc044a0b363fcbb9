"""Hypothesis properties over layouts, shapes and masks for every norm.

For any layout and any mask that leaves at least one valid position per normalization group:
the output has the input's shape and dtype, is finite, is zero at masked positions, and does not
change when the values at masked positions change (padding never leaks into statistics).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from normbench.norms import NormUndefinedError, available, create_norm

BATCH_FAMILY = {"batch", "batch_renorm"}


@st.composite
def cases(draw):
    """(norm name, options, x, mask) with >= 1 valid position per sample (and channel group)."""
    name = draw(st.sampled_from(available()))
    ndim = draw(st.integers(3 if name == "instance" else 2, 5))
    c = draw(st.sampled_from([1, 2, 4, 6]))
    spatial = tuple(draw(st.lists(st.integers(1, 4), min_size=ndim - 2, max_size=ndim - 2)))
    n = draw(st.integers(2 if name in BATCH_FAMILY else 1, 5))
    options = {}
    if name == "group":
        options["num_groups"] = draw(st.sampled_from([g for g in (1, 2, 3, 6) if c % g == 0]))
    if name == "layer" or name == "rms":
        options["per_position"] = draw(st.booleans())
    if name == "batch_layer":
        options["pooled"] = draw(st.booleans())
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    x = torch.from_numpy(rng.normal(0.5, 2.0, size=(n, c) + spatial))
    mask = None
    if draw(st.booleans()):
        flat = rng.random((n, int(np.prod(spatial, dtype=int)))) > draw(st.floats(0.0, 0.9))
        flat[np.arange(n), rng.integers(0, flat.shape[1], size=n)] = True  # >= 1 valid per sample
        mask = torch.from_numpy(flat.reshape((n,) + spatial))
    return name, options, x, mask


def _defined(name: str, x: torch.Tensor, mask: torch.Tensor | None) -> bool:
    """Whether batch statistics exist: BN-family training needs two values per channel."""
    if name not in BATCH_FAMILY:
        return True
    valid = x[:, 0].numel() if mask is None else int(mask.sum())
    return valid >= 2


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_shape_dtype_finite_and_masked_positions(case):
    name, options, x, mask = case
    layer = create_norm(name, x.shape[1], **options).double()
    if not _defined(name, x, mask):
        with pytest.raises(NormUndefinedError):
            layer(x, mask)
        return
    for mode in ("train", "eval"):
        getattr(layer, mode)()
        y = layer(x, mask)
        assert y.shape == x.shape and y.dtype == x.dtype
        assert torch.isfinite(y).all()
        if mask is not None:
            padded = ~mask.unsqueeze(1).expand_as(y)
            assert torch.all(y[padded] == 0)
            # changing the padding changes nothing
            noisy = x.clone()
            noisy[padded] = noisy[padded] * 7.0 + 3.0
            fresh = create_norm(name, x.shape[1], **options).double()
            fresh.load_state_dict(layer.state_dict())
            getattr(fresh, mode)()
            torch.testing.assert_close(fresh(noisy, mask), y)


@settings(max_examples=25, deadline=None)
@given(cases())
def test_backward_is_finite_and_zero_at_masked_positions(case):
    name, options, x, mask = case
    if not _defined(name, x, mask):
        return
    layer = create_norm(name, x.shape[1], **options).double().train()
    x = x.clone().requires_grad_(True)
    y = layer(x, mask)
    (y * torch.linspace(-1, 1, y.numel(), dtype=y.dtype).reshape(y.shape)).sum().backward()
    assert torch.isfinite(x.grad).all()
    if mask is not None:
        assert torch.all(x.grad[~mask.unsqueeze(1).expand_as(x)] == 0)
