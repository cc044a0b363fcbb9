"""transformer: torch's encoder layer as reference, padding masks, every registry norm, options, pairing."""

from __future__ import annotations

import functools

import pytest
import torch
from torch import nn

from normbench.models import create_model
from normbench.norms import available, create_norm

NORM_OPTIONS = {"group": {"num_groups": 2}}  # 32 groups would not divide d_model 8


def _norm(name, **options):
    return functools.partial(create_norm, name, **{**NORM_OPTIONS.get(name, {}), **options})


PER_POSITION_LN = _norm("layer", per_position=True)
# weight normalization reparameterizes the layer feeding a slot; the transformer's pre-norm slots
# take the residual stream, which no single layer feeds, so it refuses it (tested below)
ACTIVATION_NORMS = [name for name in available() if name != "weight"]


def _transformer(norm, input_shape=(2, 7), num_classes=3, **options):
    options = {"d_model": 8, "heads": 2, **options}
    return create_model("transformer", norm=norm, input_shape=input_shape, num_classes=num_classes,
                        **options)


def _prefix_mask(lengths, length):
    return torch.arange(length)[None, :] < torch.tensor(lengths)[:, None]


def test_defaults_and_norm_slots(recording_norm):
    model = create_model("transformer", norm=recording_norm, input_shape=(1, 40), num_classes=10)
    assert model.config == {"d_model": 64, "layers": 2, "heads": 4, "ff_mult": 2, "dropout": 0.0,
                            "activation": "gelu", "norm_position": "pre", "max_length": 40}
    assert model.pos_embedding.shape == (40, 64)
    assert model.blocks[0].attn.num_heads == 4 and model.blocks[0].ff[0].out_features == 128
    assert recording_norm.calls == [64] * 5  # two per block and the final norm
    model(torch.randn(3, 1, 40), mask=_prefix_mask([40, 12, 30], 40))
    assert recording_norm.seen == [((3, 64, 40), (3, 40))] * 5  # channel-first, with the mask


def _torch_reference(model, norm_first):
    """torch.nn.TransformerEncoderLayer stack with the model's weights (LN per token, eps 1e-5)."""
    cfg = model.config
    layers = []
    for block in model.blocks:
        layer = nn.TransformerEncoderLayer(
            cfg["d_model"], cfg["heads"], cfg["ff_mult"] * cfg["d_model"], dropout=0.0,
            activation="gelu", batch_first=True, norm_first=norm_first,
        ).double()
        with torch.no_grad():
            layer.self_attn.load_state_dict(block.attn.state_dict())
            layer.linear1.load_state_dict(block.ff[0].state_dict())
            layer.linear2.load_state_dict(block.ff[3].state_dict())
            for ours, theirs in ((block.norm_attn, layer.norm1), (block.norm_ff, layer.norm2)):
                theirs.weight.copy_(ours.weight)
                theirs.bias.copy_(ours.bias)
        layers.append(layer.train())  # train mode (dropout 0) avoids torch's inference fast path
    return layers


@pytest.mark.parametrize("norm_position", ["pre", "post"])
def test_matches_torch_encoder_layers_with_per_token_layer_norm(norm_position):
    torch.manual_seed(0)
    model = _transformer(PER_POSITION_LN, input_shape=(3, 6), norm_position=norm_position).double()
    with torch.no_grad():  # non-trivial affine parameters, so copying them is tested too
        for name, p in model.named_parameters():
            if "norm" in name:
                p.add_(0.1 * torch.randn_like(p))
    layers = _torch_reference(model, norm_first=norm_position == "pre")
    x = torch.randn(4, 3, 6, dtype=torch.float64)
    mask = _prefix_mask([6, 2, 4, 5], 6)
    h = model.input_proj(x.transpose(1, 2)) + model.pos_embedding[:6]
    for layer in layers:
        h = layer(h, src_key_padding_mask=~mask)
    if norm_position == "pre":
        final = model.norm_final
        h = nn.functional.layer_norm(h, (8,), final.weight, final.bias, 1e-5)
    else:
        assert model.norm_final is None
    pooled = torch.stack([h[i, mask[i]].mean(0) for i in range(4)])
    torch.testing.assert_close(model(x, mask=mask), model.head(pooled), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("norm", [PER_POSITION_LN, _norm("layer"), _norm("batch"), _norm("rms")],
                         ids=["ln_per_position", "ln", "batch", "rms"])
@pytest.mark.parametrize("norm_position", ["pre", "post"])
def test_values_at_padded_positions_never_change_the_outputs(norm, norm_position):
    torch.manual_seed(0)
    model = _transformer(norm, norm_position=norm_position).train()
    x = torch.randn(4, 2, 7)
    mask = _prefix_mask([7, 3, 5, 1], 7)
    mask[0, 2] = False  # not a prefix
    garbage = x.masked_fill(~mask.unsqueeze(1), 1e4)
    out = model(x, mask=mask)
    assert torch.equal(out, model(garbage, mask=mask))
    out.sum().backward()


@pytest.mark.parametrize("norm_name", ["ln_per_position", "none", "batch", "batch_renorm"])
def test_padded_batch_equals_each_sequence_alone_in_eval_mode(norm_name):
    norm = PER_POSITION_LN if norm_name == "ln_per_position" else _norm(norm_name)
    torch.manual_seed(1)
    model = _transformer(norm, input_shape=(2, 7)).double().train()
    for _ in range(3):  # give batch norms non-trivial running statistics
        model(torch.randn(6, 2, 7, dtype=torch.float64), mask=_prefix_mask([7, 4, 6, 2, 7, 5], 7))
    model.eval()
    x = torch.randn(4, 2, 7, dtype=torch.float64)
    lengths = [7, 3, 5, 1]
    out = model(x, mask=_prefix_mask(lengths, 7))
    for i, n in enumerate(lengths):
        torch.testing.assert_close(out[i], model(x[i : i + 1, :, :n])[0], rtol=1e-9, atol=1e-9)


def test_batch_norm_statistics_use_valid_tokens_only():
    torch.manual_seed(2)
    model = _transformer(_norm("batch"), layers=1).train()
    x = torch.randn(3, 2, 7)
    mask = _prefix_mask([7, 2, 4], 7)
    model(x, mask=mask)
    tokens = model.input_proj(x.transpose(1, 2)) + model.pos_embedding[:7]
    valid = tokens[mask]  # (valid tokens, d_model)
    expected = 0.1 * valid.mean(0)
    torch.testing.assert_close(model.blocks[0].norm_attn.running_mean, expected.detach())


@pytest.mark.parametrize("norm_name", ACTIVATION_NORMS)
def test_forward_backward_with_every_registry_norm(norm_name):
    torch.manual_seed(0)
    model = _transformer(_norm(norm_name)).train()
    x = torch.randn(4, 2, 7)
    for mask in (None, _prefix_mask([7, 3, 5, 2], 7)):
        out = model(x, mask=mask)
        assert out.shape == (4, 3) and torch.isfinite(out).all()
        out.square().mean().backward()
        for name, param in model.named_parameters():
            assert param.grad is not None and torch.isfinite(param.grad).all(), name
    assert torch.isfinite(model.eval()(x, mask=_prefix_mask([7, 3, 5, 2], 7))).all()


def test_a_sequence_without_valid_tokens_gives_finite_outputs():
    model = _transformer(PER_POSITION_LN)
    mask = _prefix_mask([7, 0], 7)
    out = model(torch.randn(2, 2, 7), mask=mask)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out[1], model.head.bias)  # zero pooled features
    out.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


def test_dropout_applies_in_training_only():
    torch.manual_seed(0)
    model = _transformer(PER_POSITION_LN, dropout=0.5).train()
    x = torch.randn(4, 2, 7)
    assert not torch.equal(model(x), model(x))
    model.eval()
    assert torch.equal(model(x), model(x))


def test_shorter_inputs_run_and_longer_ones_are_refused():
    model = _transformer(PER_POSITION_LN, input_shape=(2, 7), max_length=9)
    assert model(torch.randn(2, 2, 9)).shape == (2, 3)
    with pytest.raises(ValueError, match=r"input length 10 exceeds max_length 9"):
        model(torch.randn(2, 2, 10))


def test_regression_output_has_one_column():
    assert _transformer(PER_POSITION_LN, num_classes=1)(torch.randn(3, 2, 7)).shape == (3, 1)


def _non_norm_state(model):
    return {k: v for k, v in model.state_dict().items() if "norm" not in k}


@pytest.mark.parametrize("options", [{}, {"norm_position": "post", "layers": 3, "ff_mult": 1}])
def test_same_seed_gives_same_weights_whatever_the_norm(options, random_affine_norm):
    states = []
    for factory in [_norm(name) for name in ACTIVATION_NORMS] + [PER_POSITION_LN, random_affine_norm]:
        torch.manual_seed(1234)
        model = _transformer(factory, **options)
        state = _non_norm_state(model)
        state["_next_draw"] = torch.rand(3)
        states.append(state)
    reference = states[0]
    assert "pos_embedding" in reference and "blocks.0.attn.in_proj_weight" in reference
    for state in states[1:]:
        assert state.keys() == reference.keys()
        assert all(torch.equal(state[k], v) for k, v in reference.items())


def test_weight_normalization_is_refused_with_a_clear_message():
    with pytest.raises(ValueError, match=r"norm 'weight' reparameterizes the layer that feeds each norm slot, and "
                                         r"model 'transformer' does not say which layer feeds its slots"):
        _transformer(_norm("weight"))


@pytest.mark.parametrize(
    "options, message",
    [
        ({"heads": 3}, r"option 'heads' must divide d_model \(8\); got 3, allowed: 1, 2, 4, 8"),
        ({"d_model": 0}, r"option 'd_model' must be a positive integer"),
        ({"layers": 0}, r"option 'layers' must be a positive integer"),
        ({"ff_mult": 1.5}, r"option 'ff_mult' must be a positive integer"),
        ({"dropout": 1.0}, r"option 'dropout' must be a number in \[0, 1\)"),
        ({"activation": "swish"}, r"option 'activation' must be one of gelu, relu, sigmoid, tanh"),
        ({"norm_position": "sandwich"}, r"option 'norm_position' must be one of post, pre"),
        ({"max_length": 0}, r"option 'max_length' must be a positive integer"),
        ({"placement": "before"}, r"unknown option 'placement'; allowed options: activation, d_model, "
                                  r"dropout, ff_mult, heads, layers, max_length, norm_position"),
    ],
)
def test_bad_options_name_what_is_allowed(options, message):
    with pytest.raises(ValueError, match=r"model 'transformer': " + message):
        _transformer(PER_POSITION_LN, **options)


def test_inputs_of_the_wrong_layout_are_rejected():
    with pytest.raises(ValueError, match=r"model 'transformer' needs a sequence input_shape \(C, L\)"):
        _transformer(PER_POSITION_LN, input_shape=(1, 8, 8))
    with pytest.raises(ValueError, match="mask shape"):
        _transformer(PER_POSITION_LN)(torch.randn(2, 2, 7), mask=torch.ones(2, 6, dtype=torch.bool))
