"""lenet5: the authors' parameter counts and layer order, Glorot init, small inputs, options and errors."""

from __future__ import annotations

import functools
import math

import pytest
import torch
from torch import nn

from normbench.models import create_model
from normbench.norms import create_norm


def _lenet(norm, input_shape=(3, 32, 32), num_classes=10, **options):
    return create_model("lenet5", norm=norm, input_shape=input_shape, num_classes=num_classes, **options)


def _trainable(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# By hand: conv1 3*6*25 + 6 = 456; conv2 6*16*25 + 16 = 2,416; 32 → 32 (same) → 16 (pool) → 12 (valid)
# → 6 (pool), so dense1 sees 16*6*6 = 576 inputs: 576*120 + 120 = 69,240; dense2 120*84 + 84 = 10,164;
# head 84*10 + 10 = 850. Sum 83,126. Norms add gamma and beta per channel/unit: 2*(6+16+120+84) = 452.
WITHOUT_NORMS = 456 + 2416 + 69240 + 10164 + 850
NORM_PARAMETERS = 2 * (6 + 16 + 120 + 84)


def test_parameter_counts_are_the_authors():
    assert WITHOUT_NORMS == 83_126 and WITHOUT_NORMS + NORM_PARAMETERS == 83_578
    assert _trainable(_lenet(functools.partial(create_norm, "none"))) == 83_126
    assert _trainable(_lenet(functools.partial(create_norm, "batch"))) == 83_578
    assert _trainable(_lenet(functools.partial(create_norm, "batch_layer"))) == 83_578


def _call_order(model: nn.Module, x: torch.Tensor) -> list[tuple[str, tuple[int, ...]]]:
    """(leaf module type, output shape) in the order the forward calls them."""
    calls, handles = [], []
    for module in model.modules():
        if not list(module.children()):
            handles.append(module.register_forward_hook(
                lambda m, _i, out: calls.append((type(m).__name__, tuple(out.shape)))))
    model(x)
    for handle in handles:
        handle.remove()
    return calls


def test_layer_order_is_the_authors_with_norms_after_pooling_and_dense_activations(batch_norm):
    model = _lenet(batch_norm)
    assert _call_order(model, torch.randn(2, 3, 32, 32)) == [
        ("Conv2d", (2, 6, 32, 32)), ("Tanh", (2, 6, 32, 32)), ("AvgPool2d", (2, 6, 16, 16)),
        ("ReferenceBatchNorm", (2, 6, 16, 16)),
        ("Conv2d", (2, 16, 12, 12)), ("Tanh", (2, 16, 12, 12)), ("AvgPool2d", (2, 16, 6, 6)),
        ("ReferenceBatchNorm", (2, 16, 6, 6)),
        ("Linear", (2, 120)), ("Tanh", (2, 120)), ("ReferenceBatchNorm", (2, 120)),
        ("Linear", (2, 84)), ("Tanh", (2, 84)), ("ReferenceBatchNorm", (2, 84)),
        ("Linear", (2, 10)),
    ]
    assert model.config == {"activation": "tanh", "pooling": "avg", "placement": "after",
                            "conv2_padding": "valid"}


def test_placement_before_puts_the_norm_between_map_and_activation(batch_norm):
    model = _lenet(batch_norm, placement="before", pooling="max", activation="relu")
    order = [name for name, _ in _call_order(model, torch.randn(2, 3, 32, 32))]
    assert order == [
        "Conv2d", "ReferenceBatchNorm", "ReLU", "MaxPool2d",
        "Conv2d", "ReferenceBatchNorm", "ReLU", "MaxPool2d",
        "Linear", "ReferenceBatchNorm", "ReLU",
        "Linear", "ReferenceBatchNorm", "ReLU",
        "Linear",
    ]


def test_weights_are_glorot_uniform_and_biases_zero(identity_norm):
    torch.manual_seed(0)
    model = _lenet(identity_norm)
    layers = [stage.layer for stage in model.stages] + [model.head]
    fans = [(3 * 25, 6 * 25), (6 * 25, 16 * 25), (576, 120), (120, 84), (84, 10)]
    for layer, (fan_in, fan_out) in zip(layers, fans):
        bound = math.sqrt(6.0 / (fan_in + fan_out))
        weight = layer.weight.detach()
        assert weight.abs().max() <= bound
        if weight.numel() >= 2000:  # enough draws to tell U(-b, b) from torch's default U(-1/sqrt(fan_in), ..)
            assert weight.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.05)
        assert torch.count_nonzero(layer.bias) == 0


def test_digits_size_input_uses_same_padding_and_runs(recording_norm):
    model = _lenet(recording_norm, input_shape=(1, 8, 8))
    assert model.config["conv2_padding"] == "same"
    out = model(torch.randn(3, 1, 8, 8))
    assert out.shape == (3, 10)
    assert [shape for shape, _ in recording_norm.seen] == [(3, 6, 4, 4), (3, 16, 2, 2), (3, 120), (3, 84)]


@pytest.mark.parametrize(
    "input_shape, options, minimum",
    [
        ((1, 3, 3), {}, "4x4"),
        ((1, 8, 8), {"conv2_padding": "valid"}, "12x12"),
        ((3, 32, 2), {"conv2_padding": "same"}, "4x4"),
    ],
)
def test_too_small_inputs_name_the_minimum_size(identity_norm, input_shape, options, minimum):
    with pytest.raises(ValueError, match=r"too small.*minimum input size is 4x4 .*12x12") as err:
        _lenet(identity_norm, input_shape=input_shape, **options)
    assert minimum in str(err.value) and "lenet5" in str(err.value)


def test_smallest_allowed_inputs_run(identity_norm):
    assert _lenet(identity_norm, input_shape=(1, 4, 4))(torch.randn(2, 1, 4, 4)).shape == (2, 10)
    model = _lenet(identity_norm, input_shape=(1, 12, 13), conv2_padding="valid", num_classes=3)
    assert model(torch.randn(2, 1, 12, 13)).shape == (2, 3)


@pytest.mark.parametrize("placement", ["before", "after"])
def test_backward_reaches_every_parameter(any_norm, placement):
    torch.manual_seed(1)
    model = _lenet(any_norm, placement=placement)
    model(torch.randn(4, 3, 32, 32)).square().mean().backward()
    for name, param in model.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all(), name


def test_same_seed_gives_same_weights_whatever_the_norm(batch_norm, identity_norm, random_affine_norm):
    states = []
    for factory in (batch_norm, identity_norm, random_affine_norm):
        torch.manual_seed(7)
        model = _lenet(factory)
        states.append({k: v for k, v in model.state_dict().items() if ".norm." not in k})
    for other in states[1:]:
        assert other.keys() == states[0].keys()
        assert all(torch.equal(states[0][k], other[k]) for k in other)


@pytest.mark.parametrize(
    "options, fragment",
    [
        ({"widths": [10]}, "unknown option 'widths'; allowed options: activation, conv2_padding, placement, pooling"),
        ({"pooling": "sum"}, "option 'pooling' must be one of avg, max; got 'sum'"),
        ({"placement": "inside"}, "option 'placement' must be one of after, before"),
        ({"conv2_padding": 2}, "option 'conv2_padding' must be one of auto, same, valid"),
    ],
)
def test_bad_options_are_named(identity_norm, options, fragment):
    with pytest.raises(ValueError, match="model 'lenet5'") as err:
        _lenet(identity_norm, **options)
    assert fragment in str(err.value)


def test_sequence_shape_and_masks_are_refused(identity_norm):
    with pytest.raises(ValueError, match=r"needs an image input_shape \(C, H, W\)"):
        _lenet(identity_norm, input_shape=(1, 40))
    with pytest.raises(ValueError, match="takes no padding mask"):
        _lenet(identity_norm)(torch.randn(2, 3, 32, 32), torch.ones(2, 32, 32, dtype=torch.bool))
