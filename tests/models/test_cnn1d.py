"""cnn1d: the MNIST-1D reference shape, every registry norm, masks, options and seed pairing."""

from __future__ import annotations

import functools
import itertools

import pytest
import torch
from torch import nn

from normbench.models import create_model
from normbench.norms import available, create_norm

NORM_OPTIONS = {"group": {"num_groups": 5}}  # 32 groups would not divide 25 channels


def _norm(name, **options):
    return functools.partial(create_norm, name, **{**NORM_OPTIONS.get(name, {}), **options})


def _cnn1d(norm, input_shape=(1, 40), num_classes=10, **options):
    return create_model("cnn1d", norm=norm, input_shape=input_shape, num_classes=num_classes, **options)


def _prefix_mask(lengths, length):
    return torch.arange(length)[None, :] < torch.tensor(lengths)[:, None]


def test_defaults_are_the_mnist1d_reference_cnn(recording_norm):
    model = _cnn1d(recording_norm)
    convs = [b.conv for b in model.blocks]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.stride, c.padding) for c in convs] == [
        (1, 25, (5,), (2,), (1,)), (25, 25, (3,), (2,), (1,)), (25, 25, (3,), (2,), (1,)),
    ]
    assert (model.head.in_features, model.head.out_features) == (125, 10)  # 25 channels × 5 positions
    assert sum(p.numel() for p in model.parameters()) == 5210  # ConvBase's parameter count
    model(torch.randn(2, 1, 40))
    assert recording_norm.seen == [((2, 25, 19), None), ((2, 25, 10), None), ((2, 25, 5), None)]


def test_none_norm_gives_the_reference_network():
    # Greydanus 2020's ConvBase, written here from the paper's description: conv → ReLU three times,
    # flatten, linear; constructed in the same order from the same seed
    torch.manual_seed(11)
    model = _cnn1d(_norm("none"))
    torch.manual_seed(11)
    reference = nn.Sequential(
        nn.Conv1d(1, 25, 5, stride=2, padding=1), nn.ReLU(),
        nn.Conv1d(25, 25, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv1d(25, 25, 3, stride=2, padding=1), nn.ReLU(),
        nn.Flatten(), nn.Linear(125, 10),
    )
    x = torch.randn(4, 1, 40)
    assert torch.equal(model(x), reference(x))


@pytest.mark.parametrize("norm_name", available())
def test_forward_backward_with_every_registry_norm(norm_name):
    torch.manual_seed(0)
    model = _cnn1d(_norm(norm_name)).train()
    x = torch.randn(4, 1, 40)
    for mask in (None, _prefix_mask([40, 11, 25, 33], 40)):
        out = model(x, mask=mask)
        assert out.shape == (4, 10) and torch.isfinite(out).all()
        out.square().mean().backward()
        for name, param in model.named_parameters():
            assert param.grad is not None and torch.isfinite(param.grad).all(), name
    assert torch.isfinite(model.eval()(x, mask=_prefix_mask([40, 11, 25, 33], 40))).all()


@pytest.mark.parametrize(
    "activation, placement, bias",
    list(itertools.product(["relu", "sigmoid", "tanh", "gelu"], ["before", "after"], [True, False])),
)
def test_option_combinations_run(activation, placement, bias):
    model = _cnn1d(_norm("batch"), input_shape=(2, 16), num_classes=3, channels=[4, 6],
                   kernel_size=3, activation=activation, placement=placement, bias=bias)
    out = model(torch.randn(3, 2, 16))
    assert out.shape == (3, 3)
    out.sum().backward()


def test_norm_sits_before_or_after_the_activation():
    x = torch.randn(8, 1, 40)
    before = _cnn1d(_norm("batch"), channels=[6]).blocks[0]
    assert before.norm_act(before.conv(x)).min() >= 0  # ReLU last
    after = _cnn1d(_norm("batch"), channels=[6], placement="after").blocks[0]
    hidden = after.norm_act(after.conv(x))
    torch.testing.assert_close(hidden.mean((0, 2)), torch.zeros(6), atol=1e-5, rtol=0)  # BN last


def test_mask_is_downsampled_to_every_resolution(recording_norm):
    seen_masks = []

    def factory(c):
        module = recording_norm(c)
        original = module.forward

        def forward(x, mask=None):
            seen_masks.append(mask)
            return original(x, mask)

        module.forward = forward
        return module

    model = _cnn1d(factory)
    model(torch.randn(2, 1, 40), mask=_prefix_mask([11, 40], 40))
    assert [m.shape for m in seen_masks] == [(2, 19), (2, 10), (2, 5)]
    # length 11, windows [2j-1, 2j+3], [2j-1, 2j+1], [2j-1, 2j+1]: a window is valid when it holds a
    # valid position, i.e. 2j - 1 <= last valid index: 10 → j <= 5; 5 → j <= 3; 3 → j <= 2
    assert [int(m[0].sum()) for m in seen_masks] == [6, 4, 3]
    assert all(bool(m[0, : int(m[0].sum())].all()) for m in seen_masks)  # still a prefix
    assert all(bool(m[1].all()) for m in seen_masks)


@pytest.mark.parametrize("norm_name", ["batch", "layer", "instance", "group", "batch_layer"])
@pytest.mark.parametrize("placement", ["before", "after"])
def test_values_at_padded_positions_never_change_the_logits(norm_name, placement):
    torch.manual_seed(0)
    model = _cnn1d(_norm(norm_name), placement=placement, activation="sigmoid").train()
    x = torch.randn(4, 1, 40)
    mask = _prefix_mask([40, 11, 25, 33], 40)
    mask[2, 5:8] = False  # not a prefix
    garbage = x.masked_fill(~mask.unsqueeze(1), 1e4)
    out = model(x, mask=mask)
    assert torch.equal(out, model(garbage, mask=mask))


@pytest.mark.parametrize("placement", ["before", "after"])
def test_padded_positions_stay_zero_after_every_block(placement):
    # sigmoid(0) = 0.5: without re-zeroing, the next conv and the head would see 0.5 where a real
    # sequence end has zeros
    model = _cnn1d(_norm("batch"), activation="sigmoid", placement=placement)
    x, mask = torch.randn(3, 1, 40), _prefix_mask([40, 11, 25], 40)
    x = x.masked_fill(~mask.unsqueeze(1), 0.0)
    assert len(model.blocks) == 3
    for block in model.blocks:
        x, mask = block(x, mask)
        assert not mask.all()
        assert torch.count_nonzero(x.masked_select(~mask.unsqueeze(1))) == 0


def test_default_kernel_sizes_follow_the_reference_at_any_depth():
    model = _cnn1d(_norm("none"), channels=[4, 4])
    assert [b.conv.kernel_size[0] for b in model.blocks] == [5, 3]


def test_all_true_mask_matches_no_mask():
    torch.manual_seed(0)
    model = _cnn1d(_norm("layer"))
    x = torch.randn(3, 1, 40)
    torch.testing.assert_close(model(x), model(x, mask=torch.ones(3, 40, dtype=torch.bool)))


def test_per_layer_kernel_stride_and_padding():
    model = _cnn1d(_norm("none"), input_shape=(3, 50), channels=[4, 8], kernel_size=[7, 3],
                   stride=[1, 3], padding=[3, 0])
    assert [(b.conv.kernel_size[0], b.conv.stride[0], b.conv.padding[0]) for b in model.blocks] == [
        (7, 1, 3), (3, 3, 0),
    ]
    assert model.head.in_features == 8 * 16  # 50 → 50 → (50 - 3) // 3 + 1 = 16
    assert model(torch.randn(2, 3, 50)).shape == (2, 10)


def test_regression_output_has_one_column():
    assert _cnn1d(_norm("batch"), num_classes=1)(torch.randn(3, 1, 40)).shape == (3, 1)


def _non_norm_state(model, as_built):
    return {k: v for k, v in as_built(model).items() if "norm" not in k}


@pytest.mark.parametrize("options", [{}, {"channels": [10, 15], "kernel_size": 3, "placement": "after"}])
def test_same_seed_gives_same_weights_whatever_the_norm(options, random_affine_norm, as_built):
    states = []
    for factory in [_norm(name) for name in available()] + [random_affine_norm]:
        torch.manual_seed(1234)
        model = _cnn1d(factory, **options)
        state = _non_norm_state(model, as_built)
        state["_next_draw"] = torch.rand(3)
        states.append(state)
    reference = states[0]
    assert len(reference) > 4
    for state in states[1:]:
        assert state.keys() == reference.keys()
        assert all(torch.equal(state[k], v) for k, v in reference.items())


@pytest.mark.parametrize(
    "options, message",
    [
        ({"channels": []}, r"option 'channels' must be a non-empty list of positive integers"),
        ({"kernel_size": [5, 3]}, r"option 'kernel_size' must be a positive integer or a list of 3"),
        ({"kernel_size": 0}, r"option 'kernel_size' must be a positive integer or a list of 3"),
        ({"stride": "2"}, r"option 'stride' must be a positive integer or a list of 3"),
        ({"padding": -1}, r"option 'padding' must be an integer >= 0 or a list of 3"),
        ({"activation": "elu"}, r"option 'activation' must be one of gelu, relu, sigmoid, tanh"),
        ({"placement": "middle"}, r"option 'placement' must be one of after, before"),
        ({"bias": 1}, r"option 'bias' must be true or false"),
        ({"channels": [4] * 4, "kernel_size": 5, "padding": 0},
         r"layer 4 \(kernel_size 5, stride 2, padding 0\) gets 2 positions and would output none"),
        ({"widths": [3]}, r"unknown option 'widths'; allowed options: activation, bias, channels, "
                          r"kernel_size, padding, placement, stride"),
    ],
)
def test_bad_options_name_what_is_allowed(options, message):
    with pytest.raises(ValueError, match=r"model 'cnn1d': " + message):
        _cnn1d(_norm("none"), **options)


def test_inputs_of_the_wrong_layout_are_rejected():
    with pytest.raises(ValueError, match=r"model 'cnn1d' needs a sequence input_shape \(C, L\)"):
        _cnn1d(_norm("none"), input_shape=(1, 8, 8))
    model = _cnn1d(_norm("none"))
    with pytest.raises(ValueError, match="mask shape"):
        model(torch.randn(2, 1, 40), mask=torch.ones(2, 1, 40, dtype=torch.bool))
