"""stacked_lstm and its Keras LSTM layer: counts, torch parity, dropout, masks, norm sites, errors."""

from __future__ import annotations

import functools

import pytest
import torch
from torch import nn

import normbench.models.keras_lstm as keras_lstm
from normbench.models import create_model
from normbench.models.keras_lstm import KerasLSTM
from normbench.norms import create_norm

SMALL = {"vocab_size": 50, "embedding_dim": 8, "hidden_sizes": [6, 4], "dense_width": 5}
NO_DROPOUT = {**SMALL, "dropout": 0.0, "recurrent_dropout": 0.0}


def _model(norm="batch", input_shape=(1, 7), num_classes=3, **options):
    factory = functools.partial(create_norm, norm) if isinstance(norm, str) else norm
    return create_model("stacked_lstm", norm=factory, input_shape=input_shape, num_classes=num_classes, **options)


def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _lstm(c: int, h: int) -> int:
    """Keras LSTM parameters: kernel C x 4H, recurrent kernel H x 4H, one bias 4H."""
    return c * 4 * h + h * 4 * h + 4 * h


def test_parameter_count_by_hand():
    # embedding 50x8, LSTM(8 -> 6), LSTM(6 -> 4), dense 4 -> 5, head 5 -> 3, BN gamma/beta on 6, 4, 5
    expected = 50 * 8 + _lstm(8, 6) + _lstm(6, 4) + (4 * 5 + 5) + (5 * 3 + 3) + 2 * (6 + 4 + 5)
    assert expected == 400 + 360 + 176 + 25 + 18 + 30
    assert _count(_model(**SMALL)) == expected
    assert _count(_model("none", **SMALL)) == expected - 30


def test_authors_model_parameter_count():
    """Embedding(20000, 512) → LSTM 128 → LSTM 64 → Dense 32 → head; BN adds 2 x (128 + 64 + 32)."""
    one_logit = 20000 * 512 + _lstm(512, 128) + _lstm(128, 64) + (64 * 32 + 32) + (32 + 1)
    assert one_logit == 10_619_713
    # two logits for a binary task (see the module docstring): one more weight row and bias
    assert _count(_model(input_shape=(1, 80), num_classes=2)) == one_logit + 33 + 2 * (128 + 64 + 32)


def test_keras_lstm_equals_torch_lstm_with_the_same_weights():
    torch.manual_seed(0)
    ours = KerasLSTM(5, 3).double()
    theirs = nn.LSTM(5, 3, batch_first=True).double()
    with torch.no_grad():  # Keras x K is torch's x W_ih^T; one bias = b_ih with b_hh = 0; gate order i, f, g, o
        theirs.weight_ih_l0.copy_(ours.kernel.t())
        theirs.weight_hh_l0.copy_(ours.recurrent_kernel.t())
        theirs.bias_ih_l0.copy_(ours.bias)
        theirs.bias_hh_l0.zero_()
    x = torch.randn(4, 6, 5, dtype=torch.float64)
    outputs, last = ours(x)
    want, (h_n, _) = theirs(x)
    torch.testing.assert_close(outputs, want)
    torch.testing.assert_close(last, h_n[0])


def test_keras_lstm_initialisation():
    torch.manual_seed(1)
    layer = KerasLSTM(40, 6)
    bound = (6 / (40 + 24)) ** 0.5
    assert layer.kernel.abs().max() <= bound
    # orthogonal recurrent kernel (H x 4H): orthonormal rows
    torch.testing.assert_close(layer.recurrent_kernel @ layer.recurrent_kernel.t(), torch.eye(6), atol=1e-5, rtol=0)
    expected_bias = torch.cat([torch.zeros(6), torch.ones(6), torch.zeros(12)])  # unit forget bias
    assert torch.equal(layer.bias.detach(), expected_bias)


def test_recurrent_dropout_masks_the_state_with_one_mask_for_all_steps(monkeypatch):
    """With the masks fixed (input: keep all, state: x2), the layer equals torch's LSTM with 2 W_hh."""
    torch.manual_seed(2)
    layer = KerasLSTM(5, 3, dropout=0.5, recurrent_dropout=0.5).double()
    masks = []

    def fixed_mask(shape, rate, like):
        masks.append(shape)
        return torch.ones(shape, dtype=like.dtype) * (1.0 if len(shape) == 3 else 2.0)

    monkeypatch.setattr(keras_lstm, "dropout_mask", fixed_mask)
    theirs = nn.LSTM(5, 3, batch_first=True).double()
    with torch.no_grad():
        theirs.weight_ih_l0.copy_(layer.kernel.t())
        theirs.weight_hh_l0.copy_(2.0 * layer.recurrent_kernel.t())
        theirs.bias_ih_l0.copy_(layer.bias)
        theirs.bias_hh_l0.zero_()
    x = torch.randn(4, 6, 5, dtype=torch.float64)
    torch.testing.assert_close(layer(x)[0], theirs(x)[0])
    assert masks == [(4, 1, 5), (4, 3)]  # drawn once per forward: per sequence, not per step
    layer.eval()
    masks.clear()
    layer(x)
    assert masks == []  # no dropout at inference


def test_dropout_draws_in_training_only():
    torch.manual_seed(3)
    model = _model(**SMALL)
    x = torch.randint(0, 50, (4, 1, 7)).float()
    assert not torch.equal(model(x), model(x))
    model.eval()
    assert torch.equal(model(x), model(x))


def test_token_input_forms_and_float_sequences():
    torch.manual_seed(4)
    model = _model(**NO_DROPOUT).eval()
    ids = torch.randint(0, 50, (3, 7))
    out = model(ids)
    assert out.shape == (3, 3)
    torch.testing.assert_close(model(ids.float().unsqueeze(1)), out)
    features = _model(input_shape=(2, 9), vocab_size=None, embedding_dim=4, hidden_sizes=[5, 3], dense_width=4)
    assert isinstance(features.embed, nn.Linear) and features.embed.in_features == 2
    assert features(torch.randn(3, 2, 9)).shape == (3, 3)


def _pre_pad(ids: torch.Tensor, lengths: list[int], total: int, pad_values: torch.Tensor):
    """Right-align each sequence's last ``lengths[i]`` tokens in ``total`` steps, the rest ``pad_values``."""
    out = pad_values[:, :total].clone()
    mask = torch.zeros(len(lengths), total, dtype=torch.bool)
    for i, n in enumerate(lengths):
        out[i, total - n:] = ids[i, -n:]
        mask[i, total - n:] = True
    return out.float().unsqueeze(1), mask


@pytest.mark.parametrize("norm", ["batch", "layer", "batch_layer"])
def test_padding_changes_nothing_even_in_batch_statistics(norm):
    """Train mode, batch statistics: more padding steps with other pad values give the same logits, so
    padded steps enter no statistic (they would shift a batch mean over N and T)."""
    torch.manual_seed(5)
    model = _model(norm, input_shape=(1, 6), **NO_DROPOUT)
    ids = torch.randint(1, 50, (4, 6))
    lengths = [6, 3, 5, 1]
    short = _pre_pad(ids, lengths, 6, torch.zeros(4, 6, dtype=torch.long))
    long = _pre_pad(ids, lengths, 10, torch.randint(0, 50, (4, 10)))
    if norm == "batch_layer":
        # BLN's batch statistics are per position; compare the two layouts on separate fresh copies
        other = _model(norm, input_shape=(1, 6), **NO_DROPOUT)
        other.load_state_dict(model.state_dict())
        torch.testing.assert_close(model(*short), other(*long))
    else:
        torch.testing.assert_close(model(*short), model(*long))


def test_padding_does_not_change_a_samples_output_at_inference():
    torch.manual_seed(6)
    model = _model(**NO_DROPOUT)
    model(torch.randint(0, 50, (8, 1, 7)).float())  # one training batch for the running statistics
    model.eval()
    ids = torch.randint(1, 50, (1, 4))
    a = model(*_pre_pad(ids, [4], 7, torch.zeros(1, 7, dtype=torch.long)))
    b = model(*_pre_pad(ids, [4], 12, torch.randint(0, 50, (1, 12))))
    torch.testing.assert_close(a, b)


def test_without_the_mask_padding_tokens_are_read_as_input():
    torch.manual_seed(7)
    model = _model(**NO_DROPOUT, use_mask=False).eval()
    ids = torch.randint(1, 50, (2, 4))
    a = model(*_pre_pad(ids, [4, 4], 7, torch.zeros(2, 7, dtype=torch.long)))
    b = model(*_pre_pad(ids, [4, 4], 7, torch.full((2, 7), 9)))
    assert not torch.allclose(a, b)


def test_the_sequence_norm_gets_channel_first_outputs_and_the_mask(recording_norm):
    model = _model(recording_norm, **{**NO_DROPOUT, "hidden_sizes": [6, 5, 4]})
    ids, mask = _pre_pad(torch.randint(1, 50, (3, 7)), [7, 2, 4], 7, torch.zeros(3, 7, dtype=torch.long))
    model(ids, mask)
    assert recording_norm.calls == [6, 5, 4, 5]  # two sequence norms, the state norm, the dense norm
    assert recording_norm.seen == [((3, 6, 7), (3, 7)), ((3, 5, 7), (3, 7)), ((3, 4), None), ((3, 5), None)]


def test_sequence_outputs_are_zero_at_padded_steps():
    torch.manual_seed(8)
    layer = KerasLSTM(3, 4)
    mask = torch.tensor([[False, False, True, True], [True, True, True, True]])
    outputs, last = layer(torch.randn(2, 4, 3), mask)
    assert torch.count_nonzero(outputs[0, :2]) == 0 and torch.all(outputs[1] != 0)
    torch.testing.assert_close(last, outputs[:, -1])


@pytest.mark.parametrize(
    "sites, counts",
    [([], []), (["state"], [4]), (["sequence", "dense"], [6, 5])],
)
def test_norm_sites_choose_where_norms_sit(recording_norm, sites, counts):
    _model(recording_norm, **SMALL, norm_sites=sites)
    assert recording_norm.calls == counts


def test_same_seed_gives_same_weights_whatever_the_norm(batch_norm, identity_norm, random_affine_norm):
    states = []
    for factory in (batch_norm, identity_norm, random_affine_norm):
        torch.manual_seed(9)
        model = _model(factory, **SMALL)
        states.append({k: v for k, v in model.state_dict().items() if "norms." not in k})
    for other in states[1:]:
        assert other.keys() == states[0].keys()
        assert all(torch.equal(states[0][k], other[k]) for k in other)


@pytest.mark.parametrize(
    "x, fragment",
    [
        (torch.full((2, 1, 7), 0.5), "non-integer values"),
        (torch.full((2, 1, 7), 50.0), r"token ids must lie in \[0, vocab_size=50\); found 50..50"),
        (torch.zeros(2, 3, 7), r"needs token ids \(N, T\) or \(N, 1, T\)"),
    ],
)
def test_bad_token_input_is_named(x, fragment):
    with pytest.raises(ValueError, match=fragment):
        _model(**SMALL)(x)


@pytest.mark.parametrize(
    "input_shape, options, fragment",
    [
        ((1, 7), {"norm_sites": ["cell"]}, "option 'norm_sites' must be one of dense, sequence, state; got 'cell'"),
        ((1, 7), {"norm_sites": "state"}, "option 'norm_sites' must be a list"),
        ((1, 7), {"recurrent_dropout": 1.0}, "option 'recurrent_dropout' must be a number in [0, 1)"),
        ((1, 7), {"hidden_sizes": []}, "option 'hidden_sizes' must be a non-empty list"),
        ((1, 7), {"cell": "gru"}, "unknown option 'cell'"),
        ((3, 7), {}, "needs token input_shape (1, T) or (T,)"),
        ((1, 8, 8), {"vocab_size": None}, "needs a sequence input_shape (C, T)"),
    ],
)
def test_bad_options_are_named(input_shape, options, fragment):
    with pytest.raises(ValueError, match="model 'stacked_lstm'") as err:
        _model(input_shape=input_shape, **{**SMALL, **options})
    assert fragment in str(err.value)
