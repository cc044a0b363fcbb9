"""Where a torch module defines the same layer, normbench's layer must match it numerically.

The default ``batch`` must equal ``torch.nn.BatchNorm{1,2,3}d`` (train output, running estimates,
eval output, gradients); LN per position, GN, IN with running estimates and RMSNorm per position
are checked against their torch counterparts as well.
"""

from __future__ import annotations

import pytest
import torch

from normbench.norms import create_norm

BN_SHAPES = {
    "BatchNorm1d-NC": (torch.nn.BatchNorm1d, (8, 5)),
    "BatchNorm1d-NCL": (torch.nn.BatchNorm1d, (4, 5, 6)),
    "BatchNorm2d": (torch.nn.BatchNorm2d, (4, 5, 3, 4)),
    "BatchNorm3d": (torch.nn.BatchNorm3d, (3, 5, 2, 3, 2)),
}


def _same_params(ours: torch.nn.Module, theirs: torch.nn.Module, gen: torch.Generator) -> None:
    with torch.no_grad():
        for p_ours, p_theirs in zip((ours.weight, ours.bias), (theirs.weight, theirs.bias)):
            values = torch.rand(p_ours.shape, generator=gen, dtype=p_ours.dtype) + 0.5
            p_ours.copy_(values)
            p_theirs.copy_(values)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("momentum", [0.1, None], ids=["ema", "cumulative"])
@pytest.mark.parametrize("case", list(BN_SHAPES))
def test_batch_default_equals_torch_batchnorm(case, momentum, dtype):
    cls, shape = BN_SHAPES[case]
    gen = torch.Generator().manual_seed(3)
    ours = create_norm("batch", shape[1], momentum=momentum).to(dtype)
    theirs = cls(shape[1], momentum=momentum).to(dtype)
    _same_params(ours, theirs, gen)
    tol = dict(atol=1e-12, rtol=1e-12) if dtype == torch.float64 else dict(atol=1e-5, rtol=1e-5)
    for _ in range(3):
        x = (torch.randn(shape, generator=gen, dtype=dtype) * 3 + 1).requires_grad_(True)
        x2 = x.detach().clone().requires_grad_(True)
        upstream = torch.randn(shape, generator=gen, dtype=dtype)
        y, y2 = ours(x), theirs(x2)
        torch.testing.assert_close(y, y2, **tol)
        y.backward(upstream)
        y2.backward(upstream)
        torch.testing.assert_close(x.grad, x2.grad, **tol)
        torch.testing.assert_close(ours.weight.grad, theirs.weight.grad, **tol)
        torch.testing.assert_close(ours.bias.grad, theirs.bias.grad, **tol)
    torch.testing.assert_close(ours.running_mean, theirs.running_mean, **tol)
    torch.testing.assert_close(ours.running_var, theirs.running_var, **tol)
    assert int(ours.num_batches_tracked) == int(theirs.num_batches_tracked) == 3
    ours.eval(), theirs.eval()
    x = torch.randn(shape, generator=gen, dtype=dtype)
    torch.testing.assert_close(ours(x), theirs(x), **tol)


@pytest.mark.parametrize("case", list(BN_SHAPES))
def test_masked_path_with_all_valid_mask_equals_torch_batchnorm(case):
    """The mask-aware code path (not torch's kernel) must give torch's numbers on a full mask."""
    cls, shape = BN_SHAPES[case]
    gen = torch.Generator().manual_seed(4)
    ours, theirs = create_norm("batch", shape[1]).double(), cls(shape[1]).double()
    _same_params(ours, theirs, gen)
    mask = torch.ones((shape[0],) + shape[2:], dtype=torch.bool)
    for _ in range(2):
        x = torch.randn(shape, generator=gen, dtype=torch.float64, requires_grad=True)
        x2 = x.detach().clone().requires_grad_(True)
        upstream = torch.randn(shape, generator=gen, dtype=torch.float64)
        y, y2 = ours(x, mask), theirs(x2)
        torch.testing.assert_close(y, y2)
        y.backward(upstream)
        y2.backward(upstream)
        torch.testing.assert_close(x.grad, x2.grad)
        torch.testing.assert_close(ours.weight.grad, theirs.weight.grad)
    torch.testing.assert_close(ours.running_var, theirs.running_var)


def test_layer_per_position_equals_torch_layernorm_on_channel_last():
    gen = torch.Generator().manual_seed(5)
    ours, theirs = create_norm("layer", 6, per_position=True).double(), torch.nn.LayerNorm(6).double()
    _same_params(ours, theirs, gen)
    x = torch.randn(3, 6, 7, generator=gen, dtype=torch.float64)
    torch.testing.assert_close(ours(x), theirs(x.transpose(1, 2)).transpose(1, 2))


@pytest.mark.parametrize("groups", [1, 3, 6])
def test_group_equals_torch_groupnorm(groups):
    gen = torch.Generator().manual_seed(6)
    ours = create_norm("group", 6, num_groups=groups).double()
    theirs = torch.nn.GroupNorm(groups, 6).double()
    _same_params(ours, theirs, gen)
    x = torch.randn(3, 6, 4, 5, generator=gen, dtype=torch.float64)
    torch.testing.assert_close(ours(x), theirs(x))


@pytest.mark.parametrize("cls,shape", [(torch.nn.InstanceNorm1d, (3, 4, 9)), (torch.nn.InstanceNorm2d, (3, 4, 3, 5)),
                                        (torch.nn.InstanceNorm3d, (3, 4, 2, 3, 2))])
def test_instance_tracked_equals_torch_instancenorm(cls, shape):
    gen = torch.Generator().manual_seed(7)
    ours = create_norm("instance", 4, track_running_stats=True).double()
    theirs = cls(4, affine=True, track_running_stats=True).double()
    _same_params(ours, theirs, gen)
    for _ in range(3):
        x = torch.randn(shape, generator=gen, dtype=torch.float64) * 2 + 0.5
        torch.testing.assert_close(ours(x), theirs(x))
    torch.testing.assert_close(ours.running_mean, theirs.running_mean)
    torch.testing.assert_close(ours.running_var, theirs.running_var)
    ours.eval(), theirs.eval()
    x = torch.randn(shape, generator=gen, dtype=torch.float64)
    torch.testing.assert_close(ours(x), theirs(x))


def test_rms_per_position_equals_torch_rmsnorm_on_channel_last():
    gen = torch.Generator().manual_seed(8)
    ours = create_norm("rms", 6, per_position=True, eps=1e-6).double()
    theirs = torch.nn.RMSNorm(6, eps=1e-6).double()
    with torch.no_grad():
        values = torch.rand(6, generator=gen, dtype=torch.float64) + 0.5
        ours.weight.copy_(values)
        theirs.weight.copy_(values)
    x = torch.randn(3, 6, 7, generator=gen, dtype=torch.float64)
    torch.testing.assert_close(ours(x), theirs(x.transpose(1, 2)).transpose(1, 2))


def test_reset_running_stats_matches_torch():
    ours, theirs = create_norm("batch", 3), torch.nn.BatchNorm1d(3)
    x = torch.randn(5, 3) * 4 + 2
    ours(x), theirs(x)
    ours.reset_running_stats(), theirs.reset_running_stats()
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        torch.testing.assert_close(getattr(ours, name), getattr(theirs, name))
