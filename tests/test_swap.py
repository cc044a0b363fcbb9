"""swap_norms: a swapped model computes what the same model hand-built with the target norm computes.

The references are independent where one exists: torch's GroupNorm for GN and for LN over (C, H, W)
(GN with one group), torch's RMSNorm for per-token RMS in a Transformer. BLN has no torch
counterpart, so its reference places normbench's layer by hand: that checks the swap (which layer,
which width, which layout), while BLN itself is tested against its definition in tests/norms/.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from normbench import SwapReport, swap_norms
from normbench.norms import create_norm
from normbench.swap import ChannelLast


class SmallConvNet(nn.Module):
    """conv → norm → ReLU → conv → norm → ReLU → pool → linear, norms from ``make_norm(width)``."""

    def __init__(self, make_norm) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.norm1 = make_norm(8)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.norm2 = make_norm(16)
        self.head = nn.Linear(16, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.norm1(self.conv1(x)))
        x = torch.relu(self.norm2(self.conv2(x)))
        return self.head(x.mean(dim=(2, 3)))


class TinyTransformer(nn.Module):
    """One pre-norm encoder block on (N, T, d) tokens, a final norm, mean pooling, a linear head."""

    def __init__(self, make_norm, d: int = 8, heads: int = 2) -> None:
        super().__init__()
        self.embed = nn.Linear(3, d)
        self.norm_attn = make_norm(d)
        self.attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.norm_mlp = make_norm(d)
        self.mlp = nn.Sequential(nn.Linear(d, 2 * d), nn.GELU(), nn.Linear(2 * d, d))
        self.norm_out = make_norm(d)
        self.head = nn.Linear(d, 4)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.embed(tokens)
        h = self.norm_attn(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        x = x + self.mlp(self.norm_mlp(x))
        return self.head(self.norm_out(x).mean(dim=1))


def _built(cls, make_norm, seed: int = 7) -> nn.Module:
    torch.manual_seed(seed)
    return cls(make_norm)


def _outputs(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Outputs in training mode (batch statistics), then after switching to eval mode."""
    model.train()
    train_out = model(x)
    model.eval()
    return train_out, model(x)


@pytest.mark.parametrize(("target", "options", "reference"), [
    ("group", {"num_groups": 4}, lambda c: nn.GroupNorm(4, c)),
    ("layer", {}, lambda c: nn.GroupNorm(1, c)),  # LN over (C, H, W) per sample, Wu & He's definition
    ("batch_layer", {}, lambda c: create_norm("batch_layer", c)),
])
def test_a_swapped_conv_net_equals_the_net_built_with_the_target_norm(target, options, reference):
    x = torch.randn(6, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    swapped = _built(SmallConvNet, nn.BatchNorm2d)
    report = swap_norms(swapped, target, **options)
    expected = _built(SmallConvNet, reference)
    assert [(s.name, s.original, s.width) for s in report.replaced] == [("norm1", "BatchNorm2d", 8),
                                                                         ("norm2", "BatchNorm2d", 16)]
    assert report.not_replaced == []
    for got, want in zip(_outputs(swapped, x), _outputs(expected, x)):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_layer_norm_to_rms_in_a_transformer_equals_torch_rmsnorm():
    tokens = torch.randn(4, 5, 3, generator=torch.Generator().manual_seed(2))
    swapped = _built(TinyTransformer, nn.LayerNorm)
    report = swap_norms(swapped, "rms", layer_norm=True, per_position=True, eps=1e-6)
    expected = _built(TinyTransformer, lambda d: nn.RMSNorm(d, eps=1e-6))
    assert [s.name for s in report.replaced] == ["norm_attn", "norm_mlp", "norm_out"]
    assert all(s.channel_last and s.width == 8 for s in report.replaced)
    assert isinstance(swapped.norm_out, ChannelLast)
    for got, want in zip(_outputs(swapped, tokens), _outputs(expected, tokens)):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_layer_norm_is_left_and_reported_unless_asked_for():
    model = _built(TinyTransformer, nn.LayerNorm)
    report = swap_norms(model, "rms")
    assert report.replaced == []
    assert [n.name for n in report.not_replaced] == ["norm_attn", "norm_mlp", "norm_out"]
    assert "layer_norm=True" in report.not_replaced[0].reason
    assert isinstance(model.norm_out, nn.LayerNorm)


def test_every_channel_first_family_is_replaced_and_what_cannot_be_is_named():
    model = nn.Sequential(
        nn.BatchNorm1d(3), nn.BatchNorm3d(4), nn.SyncBatchNorm(5), nn.InstanceNorm1d(6), nn.InstanceNorm2d(7),
        nn.InstanceNorm3d(8), nn.GroupNorm(2, 10), nn.LayerNorm((4, 4)), nn.LazyBatchNorm2d(), nn.LocalResponseNorm(2),
        nn.ReLU(),
    )
    report = swap_norms(model, "batch", layer_norm=True)
    assert [(s.original, s.width) for s in report.replaced] == [
        ("BatchNorm1d", 3), ("BatchNorm3d", 4), ("SyncBatchNorm", 5), ("InstanceNorm1d", 6), ("InstanceNorm2d", 7),
        ("InstanceNorm3d", 8), ("GroupNorm", 10)]
    reasons = {n.original: n.reason for n in report.not_replaced}
    assert set(reasons) == {"LayerNorm", "LazyBatchNorm2d", "LocalResponseNorm"}
    assert "2 trailing axes" in reasons["LayerNorm"] and "lazy" in reasons["LazyBatchNorm2d"]
    assert "7 replaced, 3 not replaced" in str(report)
    assert "3 InstanceNorm" not in report.summary() and "1 SyncBatchNorm" in report.summary()


def test_instance_norm_swap_matches_torch_instance_norm():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 4, 3), nn.BatchNorm2d(4))
    swap_norms(model, "instance")
    x = torch.randn(3, 2, 6, 6)
    reference = nn.InstanceNorm2d(4, affine=True)
    torch.testing.assert_close(model(x), reference(model[0](x)), rtol=1e-5, atol=1e-5)


def test_a_shared_layer_stays_shared_and_dtype_and_mode_follow_the_original():
    shared = nn.BatchNorm1d(4)
    model = nn.Sequential(nn.Linear(4, 4), shared, nn.Linear(4, 4), shared).double().eval()
    report = swap_norms(model, "group", num_groups=2)
    assert len(report.replaced) == 1 and model[1] is model[3]
    assert model[1].weight.dtype == torch.float64 and not model[1].training


def test_swapping_draws_no_random_numbers_so_other_weights_stay_paired():
    torch.manual_seed(3)
    model = SmallConvNet(nn.BatchNorm2d)
    before = torch.random.get_rng_state()
    swap_norms(model, lambda c: nn.GroupNorm(1, c))
    assert torch.equal(before, torch.random.get_rng_state())


def test_bad_norms_and_options_are_value_errors_naming_them():
    with pytest.raises(ValueError, match="unknown norm 'nope'"):
        swap_norms(SmallConvNet(nn.BatchNorm2d), "nope")
    with pytest.raises(ValueError, match="num_groups=3 does not divide 8"):
        swap_norms(SmallConvNet(nn.BatchNorm2d), "group", num_groups=3)
    with pytest.raises(TypeError, match="bind them into the factory"):
        swap_norms(SmallConvNet(nn.BatchNorm2d), nn.Identity, eps=1.0)


def test_report_type_is_exported():
    assert isinstance(swap_norms(nn.Linear(2, 2), "batch"), SwapReport)
