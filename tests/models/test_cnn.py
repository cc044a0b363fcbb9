"""cnn2d: shapes and gradients across options and image sizes, pooling rule, masks, option errors."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from normbench.models import create_model


def _cnn(norm, input_shape=(1, 8, 8), num_classes=10, **options):
    return create_model("cnn2d", norm=norm, input_shape=input_shape, num_classes=num_classes, **options)


@pytest.mark.parametrize(
    "activation, placement, bias",
    list(itertools.product(["relu", "sigmoid", "tanh", "gelu"], ["before", "after"], [True, False])),
)
@pytest.mark.parametrize("input_shape", [(1, 8, 8), (3, 32, 32), (2, 12, 9)])
def test_forward_backward_every_option_combination(any_norm, activation, placement, bias, input_shape):
    torch.manual_seed(0)
    model = _cnn(any_norm, input_shape=input_shape, num_classes=5, channels=[4, 6],
                 activation=activation, placement=placement, bias=bias)
    x = torch.randn(3, *input_shape)
    out = model(x)
    assert out.shape == (3, 5) and torch.isfinite(out).all()
    out.square().mean().backward()
    for name, param in model.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all(), name


def test_defaults_and_norm_on_feature_maps(recording_norm):
    model = _cnn(recording_norm)
    assert [b.conv.out_channels for b in model.blocks] == [32, 64]
    assert all(b.conv.kernel_size == (3, 3) and b.conv.padding == (1, 1) for b in model.blocks)
    assert model.head.in_features == 64 and model.head.out_features == 10
    model(torch.randn(2, 1, 8, 8))
    assert recording_norm.seen == [((2, 32, 8, 8), None), ((2, 64, 4, 4), None)]


@pytest.mark.parametrize(
    "input_shape, channels, pools",
    [
        ((1, 8, 8), [4, 4], [True, True]),  # 8 → 4 → 2
        ((1, 8, 8), [4, 4, 4], [True, True, False]),  # stops at 2×2
        ((3, 32, 32), [4, 4, 4], [True, True, True]),  # 32 → 16 → 8 → 4
        ((1, 6, 3), [4], [False]),  # the narrow side is below 4
    ],
)
def test_pools_while_the_map_is_at_least_4x4(identity_norm, input_shape, channels, pools):
    model = _cnn(identity_norm, input_shape=input_shape, channels=channels)
    assert [b.pool for b in model.blocks] == pools
    assert model(torch.randn(2, *input_shape)).shape == (2, 10)


def test_kernel_size_option_keeps_the_spatial_size(recording_norm):
    model = _cnn(recording_norm, channels=[4], kernel_size=5)
    assert model.blocks[0].conv.padding == (2, 2)
    model(torch.randn(2, 1, 8, 8))
    assert recording_norm.seen == [((2, 4, 8, 8), None)]


def test_identity_norm_gives_the_plain_network(identity_norm):
    torch.manual_seed(5)
    model = _cnn(identity_norm, channels=[4, 8])
    torch.manual_seed(5)
    plain = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10),
    )
    x = torch.randn(3, 1, 8, 8)
    assert torch.allclose(model(x), plain(x), atol=1e-6)


def _mask(n=3, h=8, w=8):
    mask = torch.ones(n, h, w, dtype=torch.bool)
    mask[0, :, 5:] = False
    mask[1, 6:, :] = False
    mask[2, 1, 1] = False
    return mask


@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("placement", ["before", "after"])
def test_values_at_masked_pixels_never_change_the_logits(batch_norm, activation, placement):
    # batch_norm ignores masks, so this also holds for norms whose statistics see padded zeros
    norm = lambda c: _MaskIgnoring(batch_norm(c))  # noqa: E731
    model = _cnn(norm, channels=[4, 6, 5], activation=activation, placement=placement)
    x, mask = torch.randn(3, 1, 8, 8), _mask()
    garbage = x.masked_fill(~mask.unsqueeze(1), 1e4)
    out = model(x, mask=mask)
    assert torch.equal(out, model(garbage, mask=mask))
    out.sum().backward()


def test_mask_reaches_every_norm_at_its_resolution(recording_norm):
    model = _cnn(recording_norm, channels=[4, 6, 5])
    model(torch.randn(3, 1, 8, 8), mask=_mask())
    assert recording_norm.seen == [
        ((3, 4, 8, 8), (3, 8, 8)),
        ((3, 6, 4, 4), (3, 4, 4)),
        ((3, 5, 2, 2), (3, 2, 2)),
    ]


def test_all_true_mask_matches_no_mask(identity_norm):
    torch.manual_seed(0)
    model = _cnn(identity_norm, channels=[4, 6], activation="tanh")
    x = torch.randn(3, 1, 8, 8)
    assert torch.allclose(model(x), model(x, mask=torch.ones(3, 8, 8, dtype=torch.bool)), atol=1e-6)


def test_mask_of_wrong_shape_is_rejected(identity_norm):
    with pytest.raises(ValueError, match="mask shape"):
        _cnn(identity_norm)(torch.randn(2, 1, 8, 8), mask=torch.ones(2, 1, 8, 8, dtype=torch.bool))


class _MaskIgnoring(nn.Module):
    """Wraps a mask-unaware norm so it can sit in a masked model."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x, mask=None):
        return self.inner(x)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"activation": "foo"}, r"option 'activation' must be one of gelu, relu, sigmoid, tanh; got 'foo'"),
        ({"placement": "middle"}, r"option 'placement' must be one of after, before; got 'middle'"),
        ({"channels": []}, r"option 'channels' must be a non-empty list of positive integers"),
        ({"kernel_size": 4}, r"option 'kernel_size' must be odd"),
        ({"kernel_size": 0}, r"option 'kernel_size' must be a positive integer"),
        ({"bias": "yes"}, r"option 'bias' must be true or false"),
        ({"widths": [3]}, r"unknown option 'widths'; allowed options: activation, bias, channels, "
                          r"kernel_size, placement"),
    ],
)
def test_bad_options_name_what_is_allowed(identity_norm, options, message):
    with pytest.raises(ValueError, match=r"model 'cnn2d': " + message):
        _cnn(identity_norm, **options)


def test_non_image_input_shape_is_rejected(identity_norm):
    with pytest.raises(ValueError, match=r"model 'cnn2d' needs an image input_shape \(C, H, W\)"):
        _cnn(identity_norm, input_shape=(1, 40))
