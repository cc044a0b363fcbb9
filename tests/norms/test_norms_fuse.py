"""fuse_conv_bn: the folded layer equals conv followed by the eval-mode norm."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from normbench.norms import create_norm, fuse_conv_bn


def _trained(norm: nn.Module, conv: nn.Module, shape, steps=4) -> nn.Module:
    """Give the norm non-trivial running statistics and affine parameters."""
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        norm.weight.copy_(torch.rand(norm.weight.shape, generator=gen) + 0.5)
        norm.bias.copy_(torch.rand(norm.bias.shape, generator=gen) * 2 - 1)
        for _ in range(steps):
            x = torch.randn(shape, generator=gen, dtype=conv.weight.dtype) * 2 + 1
            norm.train()(conv(x))
    return norm.eval()


CASES = {
    "conv2d-batch": (lambda: nn.Conv2d(3, 6, 3, padding=1), lambda: create_norm("batch", 6), (5, 3, 8, 8)),
    "conv2d-groups-no-bias": (lambda: nn.Conv2d(4, 6, 3, stride=2, groups=2, bias=False),
                              lambda: create_norm("bn", 6, convention="keras"), (5, 4, 9, 9)),
    "conv1d-batch": (lambda: nn.Conv1d(3, 6, 5), lambda: create_norm("batch", 6), (5, 3, 20)),
    "conv3d-torch-bn": (lambda: nn.Conv3d(2, 4, 3), lambda: nn.BatchNorm3d(4), (3, 2, 5, 5, 5)),
    "linear-batch": (lambda: nn.Linear(7, 6), lambda: create_norm("batch", 6), (16, 7)),
    "conv2d-renorm": (lambda: nn.Conv2d(3, 6, 1), lambda: create_norm("batch_renorm", 6), (5, 3, 4, 4)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_fused_equals_conv_then_eval_norm(case):
    make_conv, make_norm, shape = CASES[case]
    torch.manual_seed(1)
    conv = make_conv().double()
    norm = _trained(make_norm().double(), conv, shape)
    fused = fuse_conv_bn(conv, norm)
    x = torch.randn(shape, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(fused(x), norm(conv(x)))
    assert not fused.training
    assert fused is not conv and conv.weight.shape == fused.weight.shape


def test_fused_float32_matches_torch_fusion_helper():
    torch.manual_seed(2)
    conv = nn.Conv2d(3, 8, 3)
    bn = _trained(create_norm("batch", 8), conv, (4, 3, 10, 10))
    torch_bn = nn.BatchNorm2d(8).eval()
    torch_bn.load_state_dict(bn.state_dict())
    theirs = torch.nn.utils.fusion.fuse_conv_bn_eval(conv.eval(), torch_bn)
    ours = fuse_conv_bn(conv, bn)
    torch.testing.assert_close(ours.weight, theirs.weight)
    torch.testing.assert_close(ours.bias, theirs.bias)


def test_fuse_rejects_what_cannot_be_folded():
    conv = nn.Conv2d(3, 4, 1)
    with pytest.raises(ValueError, match="no running statistics"):
        fuse_conv_bn(conv, create_norm("batch", 4, track_running_stats=False))
    with pytest.raises(ValueError, match="cannot fold LayerNorm"):
        fuse_conv_bn(conv, create_norm("layer", 4))
    with pytest.raises(ValueError, match="has 5 channels but the layer outputs 4"):
        fuse_conv_bn(conv, create_norm("batch", 5))
    with pytest.raises(ValueError, match="cannot fold into ConvTranspose2d"):
        fuse_conv_bn(nn.ConvTranspose2d(3, 4, 1), create_norm("batch", 4))
