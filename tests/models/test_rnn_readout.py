"""rnn's bidirectional and all-steps options: torch's bidirectional GRU/LSTM, the MNIST-1D paper's
GRU baseline (parameter count, initial weights), masks, per-step norms of the backward cell."""

from __future__ import annotations

import functools

import pytest
import torch
from torch import nn

from normbench.models import create_model
from normbench.norms import create_norm

NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def _rnn(norm_name, input_shape=(3, 7), num_classes=4, **options):
    norm = functools.partial(create_norm, norm_name)
    return create_model("rnn", norm=norm, input_shape=input_shape, num_classes=num_classes, **options)


def _copy_into(torch_rnn, model):
    with torch.no_grad():
        for name in NAMES:
            getattr(torch_rnn, f"{name}_l0").copy_(getattr(model.cell, name))
            getattr(torch_rnn, f"{name}_l0_reverse").copy_(getattr(model.backward_cell, name))


@pytest.mark.parametrize("cell, reference", [("lstm", nn.LSTM), ("gru", nn.GRU)])
@pytest.mark.parametrize("readout", ["last", "all_steps"])
def test_bidirectional_plain_cells_equal_torch(cell, reference, readout):
    torch.manual_seed(0)
    model = _rnn("none", cell=cell, hidden_size=5, bidirectional=True, readout=readout).double()
    torch_rnn = reference(3, 5, batch_first=True, bidirectional=True).double()
    _copy_into(torch_rnn, model)
    x = torch.randn(6, 3, 7, dtype=torch.float64)
    outputs, last = torch_rnn(x.transpose(1, 2))
    h_n = last[0] if cell == "lstm" else last  # (2, N, H): forward, backward
    features = outputs.reshape(6, -1) if readout == "all_steps" else torch.cat([h_n[0], h_n[1]], dim=1)
    torch.testing.assert_close(model(x), model.head(features), rtol=1e-12, atol=1e-12)


def test_mnist1d_paper_gru_has_its_parameter_count_and_torch_initial_weights():
    # GRUBase(input_size=1, output_size=10, hidden_size=6, time_steps=40, bidirectional=True):
    # 2 directions x (3·6·1 + 3·6·6 + 2·3·6) = 324 GRU parameters + Linear(480, 10) = 4,810.
    options = dict(cell="gru", hidden_size=6, bidirectional=True, readout="all_steps")
    torch.manual_seed(42)
    model = _rnn("none", input_shape=(1, 40), num_classes=10, **options)
    assert sum(p.numel() for p in model.parameters()) == 324 + 4810
    torch.manual_seed(42)
    torch_gru = nn.GRU(1, 6, batch_first=True, bidirectional=True)
    torch_head = nn.Linear(480, 10)
    for name in NAMES:
        assert torch.equal(getattr(model.cell, name), getattr(torch_gru, f"{name}_l0")), name
        assert torch.equal(getattr(model.backward_cell, name), getattr(torch_gru, f"{name}_l0_reverse")), name
    assert torch.equal(model.head.weight, torch_head.weight) and torch.equal(model.head.bias, torch_head.bias)


@pytest.mark.parametrize("readout", ["last", "all_steps"])
def test_masked_bidirectional_equals_each_sequence_alone(readout):
    torch.manual_seed(1)
    model = _rnn("none", cell="gru", hidden_size=4, bidirectional=True, readout=readout).double()
    torch_gru = nn.GRU(3, 4, batch_first=True, bidirectional=True).double()
    _copy_into(torch_gru, model)
    x = torch.randn(3, 3, 7, dtype=torch.float64)
    lengths = [7, 4, 2]
    mask = torch.arange(7)[None, :] < torch.tensor(lengths)[:, None]
    got = model(x, mask=mask)
    for i, length in enumerate(lengths):
        outputs, h_n = torch_gru(x[i : i + 1, :, :length].transpose(1, 2))
        if readout == "all_steps":
            padded = torch.zeros(1, 7, 8, dtype=torch.float64)
            padded[:, :length] = outputs
            features = padded.reshape(1, -1)
        else:
            features = torch.cat([h_n[0], h_n[1]], dim=1)
        torch.testing.assert_close(got[i : i + 1], model.head(features), rtol=1e-10, atol=1e-10)


def test_backward_cell_has_its_own_per_step_batch_norms():
    model = _rnn("batch", cell="lstm", hidden_size=4, bidirectional=True).train()
    model(torch.randn(8, 3, 7))
    forward_steps = model.cell.norm_x.steps
    backward_steps = model.backward_cell.norm_x.steps
    assert len(forward_steps) == len(backward_steps) == 7
    assert forward_steps[0] is not backward_steps[0]
    assert forward_steps[0].weight is not backward_steps[0].weight  # not tied across directions
    assert torch.allclose(backward_steps[0].weight, torch.full((16,), 0.1))  # Cooijmans' γ there too
    # the backward cell's step 0 read position 6: its running mean moved from that input alone
    assert not torch.equal(forward_steps[0].running_mean, backward_steps[0].running_mean)


@pytest.mark.parametrize("options, message", [
    ({"bidirectional": 1}, "option 'bidirectional' must be true or false"),
    ({"readout": "mean"}, "option 'readout' must be one of all_steps, last"),
])
def test_bad_readout_options(options, message):
    with pytest.raises(ValueError, match=message):
        _rnn("none", **options)
