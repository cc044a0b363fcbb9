"""mlp: shapes and gradients for every option combination, presets, init, masks and option errors."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from torch import nn

from normbench.models import create_model


def _mlp(norm, input_shape=(1, 8, 8), num_classes=10, **options):
    return create_model("mlp", norm=norm, input_shape=input_shape, num_classes=num_classes, **options)


def _check_forward_backward(model, x, num_classes, mask=None):
    out = model(x) if mask is None else model(x, mask=mask)
    assert out.shape == (x.shape[0], num_classes)
    assert torch.isfinite(out).all()
    out.square().mean().backward()
    for name, param in model.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all(), name


@pytest.mark.parametrize(
    "activation, placement, dropout, init, bias",
    list(itertools.product(["relu", "sigmoid", "tanh", "gelu"], ["before", "after"], [0.0, 0.5],
                           ["default", "normal", "glorot_uniform"], [True, False])),
)
def test_forward_backward_every_option_combination(any_norm, activation, placement, dropout, init, bias):
    torch.manual_seed(0)
    model = _mlp(any_norm, widths=[16, 12], activation=activation, placement=placement,
                 dropout=dropout, init=init, bias=bias)
    model.train()
    _check_forward_backward(model, torch.randn(6, 1, 8, 8), 10)


@pytest.mark.parametrize("input_shape", [(64,), (1, 8, 8), (3, 5, 7), (2, 40)])
@pytest.mark.parametrize("preset", [None, "ioffe2015", "keras_dense"])
def test_any_input_shape_is_flattened(any_norm, input_shape, preset):
    model = _mlp(any_norm, input_shape=input_shape, num_classes=3, preset=preset)
    _check_forward_backward(model, torch.randn(4, *input_shape), 3)


def test_eval_mode_runs_on_a_single_sample(batch_norm):
    model = _mlp(batch_norm).eval()
    assert model(torch.randn(1, 1, 8, 8)).shape == (1, 10)


def _layout(model):
    return [(type(b.linear).__name__, b.linear.in_features, b.linear.out_features,
             type(b.norm_act.activation).__name__, b.norm_act.placement) for b in model.blocks]


def test_defaults_are_two_relu_layers_of_128_norm_before_activation(identity_norm):
    model = _mlp(identity_norm)
    assert _layout(model) == [("Linear", 64, 128, "ReLU", "before"), ("Linear", 128, 128, "ReLU", "before")]
    assert (model.head.in_features, model.head.out_features) == (128, 10)
    assert model.config["dropout"] == 0.0 and model.config["bias"] is True


def test_ioffe2015_preset_structure(identity_norm):
    model = _mlp(identity_norm, input_shape=(1, 28, 28), preset="ioffe2015")
    assert _layout(model) == [
        ("Linear", 784, 100, "Sigmoid", "before"),
        ("Linear", 100, 100, "Sigmoid", "before"),
        ("Linear", 100, 100, "Sigmoid", "before"),
    ]
    assert (model.head.in_features, model.head.out_features) == (100, 10)
    assert model.config["init"] == "normal" and model.config["init_std"] == 0.01


def test_keras_dense_preset_structure(identity_norm):
    model = _mlp(identity_norm, input_shape=(1, 28, 28), preset="keras_dense")
    assert _layout(model) == [("Linear", 784, 128, "ReLU", "after")]
    assert (model.head.in_features, model.head.out_features) == (128, 10)
    assert model.config["init"] == "glorot_uniform"


def test_options_override_the_preset(identity_norm):
    model = _mlp(identity_norm, preset="ioffe2015", dropout=0.2, init_std=0.05)
    assert model.config["dropout"] == 0.2 and model.config["init_std"] == 0.05
    assert len(model.blocks) == 3  # the preset's three hidden layers
    assert all(isinstance(b.dropout, nn.Dropout) and b.dropout.p == 0.2 for b in model.blocks)


def _all_linear_weights(model):
    return torch.cat([b.linear.weight.flatten() for b in model.blocks] + [model.head.weight.flatten()])


@pytest.mark.parametrize("std", [0.01, 0.1])
def test_normal_init_draws_gaussian_weights_with_the_configured_std(identity_norm, std):
    torch.manual_seed(0)
    model = _mlp(identity_norm, input_shape=(1, 28, 28), preset="ioffe2015", init_std=std)
    w = _all_linear_weights(model).detach().double().numpy()
    n = w.size  # 784·100 + 2·100·100 + 100·10 = 99,400
    # The sample std has standard error ≈ std / sqrt(2n) (0.2 % here): 2 % is ~9 standard errors.
    assert abs(w.std() / std - 1) < 0.02
    assert abs(w.mean()) < 5 * std / np.sqrt(n)
    # Gaussian, not uniform: excess kurtosis ≈ 0 (a uniform has -1.2); its s.e. is sqrt(24/n) ≈ 0.016.
    kurtosis = np.mean((w - w.mean()) ** 4) / w.var() ** 2 - 3
    assert abs(kurtosis) < 0.1
    for linear in [b.linear for b in model.blocks] + [model.head]:
        assert torch.count_nonzero(linear.bias) == 0


def test_glorot_uniform_init_matches_keras_bounds(identity_norm):
    torch.manual_seed(0)
    model = _mlp(identity_norm, input_shape=(1, 28, 28), preset="keras_dense")
    for linear in [model.blocks[0].linear, model.head]:
        fan_out, fan_in = linear.weight.shape
        bound = np.sqrt(6 / (fan_in + fan_out))
        w = linear.weight.detach().double().numpy()
        assert np.abs(w).max() <= bound
        assert abs(w.std() / (bound / np.sqrt(3)) - 1) < 0.05
        assert torch.count_nonzero(linear.bias) == 0


def test_identity_norm_gives_the_plain_network(identity_norm):
    torch.manual_seed(7)
    model = _mlp(identity_norm, widths=[32, 16], activation="tanh")
    torch.manual_seed(7)
    plain = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.Tanh(), nn.Linear(32, 16), nn.Tanh(),
                          nn.Linear(16, 10))
    x = torch.randn(5, 1, 8, 8)
    assert torch.equal(model(x), plain(x))


def test_keras_dense_with_identity_norm_is_the_tutorial_model(identity_norm):
    torch.manual_seed(3)
    model = _mlp(identity_norm, preset="keras_dense")
    x = torch.randn(5, 1, 8, 8)
    linear, head = model.blocks[0].linear, model.head
    expected = head(torch.relu(linear(x.flatten(1))))
    assert torch.equal(model(x), expected)


def test_norm_sits_before_or_after_the_activation(batch_norm):
    x = torch.randn(8, 1, 8, 8)
    before = _mlp(batch_norm, widths=[20], placement="before").blocks[0]
    assert before.norm_act(before.linear(x.flatten(1))).min() >= 0  # ReLU applied last
    after = _mlp(batch_norm, widths=[20], placement="after").blocks[0]
    hidden = after.norm_act(after.linear(x.flatten(1)))
    assert torch.allclose(hidden.mean(0), torch.zeros(20), atol=1e-5)  # BN applied last
    assert hidden.min() < 0


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_hooks_on_each_norm_and_activation_fire_once_per_forward(batch_norm, dropout):
    # blocks call their norm/activation pair without nn.Module dispatch (issue 15's harness
    # overhead); the leaves stay modules, so hooks on them (the probes') still run
    model = _mlp(batch_norm, widths=[6, 5], dropout=dropout)
    calls = []
    for i, block in enumerate(model.blocks):
        for role in ("norm", "activation"):
            module = getattr(block.norm_act, role)
            module.register_forward_hook(lambda *_, tag=(i, role): calls.append(tag))
    model(torch.randn(4, 1, 8, 8))
    assert calls == [(0, "norm"), (0, "activation"), (1, "norm"), (1, "activation")]
    assert (model.blocks[0].dropout is None) == (dropout == 0)


def test_eval_output_is_the_plain_chain_of_its_layers(batch_norm):
    model = _mlp(batch_norm, widths=[7, 5], activation="tanh", dropout=0.5)
    model(torch.randn(16, 1, 8, 8) * 3 + 1)  # running estimates move away from (0, 1)
    model.eval()
    x = torch.randn(3, 1, 8, 8)
    h = x.flatten(1)
    for block in model.blocks:  # dropout is the identity in eval mode
        bn = block.norm_act.norm
        z = block.linear(h)
        h = torch.tanh((z - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps) * bn.weight + bn.bias)
    assert torch.allclose(model(x), model.head(h), atol=1e-6)


def test_mask_zeroes_padded_inputs_and_is_not_passed_to_feature_norms(recording_norm):
    model = _mlp(recording_norm, input_shape=(2, 10), num_classes=4, widths=[8])
    x = torch.randn(3, 2, 10)
    mask = torch.ones(3, 10, dtype=torch.bool)
    mask[:, 6:] = False
    garbage = x.clone()
    garbage[:, :, 6:] = 1e6
    assert torch.equal(model(x, mask=mask), model(garbage, mask=mask))
    assert recording_norm.seen  # the norms were called
    assert all(seen_mask is None for _, seen_mask in recording_norm.seen)
    with pytest.raises(ValueError, match="mask shape"):
        model(x, mask=torch.ones(3, 9, dtype=torch.bool))


@pytest.mark.parametrize(
    "options, message",
    [
        ({"activation": "foo"}, r"option 'activation' must be one of gelu, relu, sigmoid, tanh; got 'foo'"),
        ({"placement": "middle"}, r"option 'placement' must be one of after, before; got 'middle'"),
        ({"preset": "vgg"}, r"option 'preset' must be one of ioffe2015, keras_dense; got 'vgg'"),
        ({"init": "orthogonal"}, r"option 'init' must be one of default, glorot_uniform, normal"),
        ({"widths": []}, r"option 'widths' must be a non-empty list of positive integers"),
        ({"widths": [16, 0]}, r"option 'widths' must be a non-empty list of positive integers"),
        ({"widths": 16}, r"option 'widths' must be a non-empty list of positive integers"),
        ({"dropout": 1.0}, r"option 'dropout' must be a number in \[0, 1\)"),
        ({"dropout": -0.1}, r"option 'dropout' must be a number in \[0, 1\)"),
        ({"bias": 1}, r"option 'bias' must be true or false"),
        ({"init": "normal", "init_std": 0}, r"option 'init_std' must be a positive number"),
        ({"init": "normal", "init_std": float("nan")}, r"option 'init_std' must be a positive number"),
        ({"init_std": 0.1}, r"option 'init_std' only applies with init 'normal'; got init 'default'"),
        ({"depth": 3}, r"unknown option 'depth'; allowed options: activation, bias, dropout, init, "
                       r"init_std, placement, preset, widths"),
        ({"preset": "ioffe2015", "depth": 3}, r"unknown option 'depth'"),
    ],
)
def test_bad_options_name_what_is_allowed(identity_norm, options, message):
    with pytest.raises(ValueError, match=r"model 'mlp': " + message):
        _mlp(identity_norm, **options)


def test_widths_may_be_a_tuple_as_frozen_specs_give_them(identity_norm):
    model = _mlp(identity_norm, widths=(3, 4))
    assert [b.linear.out_features for b in model.blocks] == [3, 4]
