"""Weight normalization: which layers each model reparameterizes, w = g v / ||v|| against NumPy, the
gradient's geometry (Salimans & Kingma eq. 3), gradcheck, pairing and the data-dependent init hook."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from torch import nn

from normbench.models import create_model
from normbench.norms import create_norm

MODELS = {
    "mlp": ((1, 8, 8), {"widths": [6, 5]}),
    "cnn2d": ((1, 8, 8), {"channels": [4, 6]}),
    "cnn1d": ((1, 40), {}),
    "lenet5": ((3, 16, 16), {}),
    "rnn": ((2, 5), {"hidden_size": 4}),
    "rnn-gru": ((2, 5), {"hidden_size": 4, "cell": "gru"}),
    "stacked_lstm": ((1, 6), {"vocab_size": 30, "embedding_dim": 5, "hidden_sizes": [4, 3], "dense_width": 4}),
}
# the parameters each model reparameterizes: (module path, parameter name, output-unit axis)
EXPECTED = {
    "mlp": [("blocks.0.linear", "weight", 0), ("blocks.1.linear", "weight", 0)],
    "cnn2d": [("blocks.0.conv", "weight", 0), ("blocks.1.conv", "weight", 0)],
    "cnn1d": [(f"blocks.{i}.conv", "weight", 0) for i in range(3)],
    "lenet5": [(f"stages.{i}.layer", "weight", 0) for i in range(4)],
    "rnn": [("cell", "weight_ih", 0), ("cell", "weight_hh", 0)],
    "rnn-gru": [("cell", "weight_ih", 0), ("cell", "weight_hh", 0)],
    "stacked_lstm": [("layers.0", "kernel", 1), ("layers.0", "recurrent_kernel", 1), ("layers.1", "kernel", 1),
                     ("layers.1", "recurrent_kernel", 1), ("dense", "weight", 0)],
}


def _build(case, norm="weight", seed=0, **norm_options):
    shape, options = MODELS[case]
    torch.manual_seed(seed)
    return create_model(case.removesuffix("-gru"), norm=functools.partial(create_norm, norm, **norm_options),
                        input_shape=shape, num_classes=3, **options)


def _reparameterized(model):
    found = []
    for path, module in model.named_modules():
        if hasattr(module, "parametrizations"):
            found += [(path, name) for name in module.parametrizations]
    return sorted(found)


def _input(case, n=5):
    shape, _ = MODELS[case]
    if case == "stacked_lstm":
        return torch.randint(0, 30, (n,) + shape).float()
    return torch.randn((n,) + shape)


@pytest.mark.parametrize("case", list(MODELS))
def test_each_model_reparameterizes_the_layers_feeding_its_slots_and_w_is_g_v_over_norm_v(case):
    model = _build(case)
    assert _reparameterized(model) == sorted((p, n) for p, n, _ in EXPECTED[case])
    rng = np.random.default_rng(1)
    for path, name, axis in EXPECTED[case]:
        module = model.get_submodule(path)
        g, v = module.parametrizations[name].original0, module.parametrizations[name].original1
        with torch.no_grad():  # move g away from ||v|| so the formula is exercised
            g.copy_(torch.from_numpy(rng.uniform(0.5, 2.0, tuple(g.shape))).to(g.dtype))
        v_np, g_np = v.detach().double().numpy(), g.detach().double().numpy()
        other = tuple(d for d in range(v_np.ndim) if d != axis)
        expected = g_np * v_np / np.sqrt((v_np ** 2).sum(axis=other, keepdims=True))
        np.testing.assert_allclose(getattr(module, name).detach().double().numpy(), expected, rtol=1e-5, atol=1e-6)
    out = model.train()(_input(case))
    out.square().mean().backward()
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("case", ["mlp", "cnn2d", "rnn", "stacked_lstm"])
def test_same_seed_gives_v_equal_to_the_plain_weights_and_g_their_norm(case):
    plain, weighted = _build(case, norm="none"), _build(case)
    for path, name, axis in EXPECTED[case]:
        module = weighted.get_submodule(path)
        v, g = module.parametrizations[name].original1, module.parametrizations[name].original0
        reference = getattr(plain.get_submodule(path), name)
        assert torch.equal(v, reference)
        other = tuple(d for d in range(v.dim()) if d != axis)
        torch.testing.assert_close(g, torch.linalg.vector_norm(reference, dim=other, keepdim=True))
    x = _input(case)
    torch.testing.assert_close(weighted.eval()(x), plain.eval()(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("case", ["mlp", "cnn2d", "rnn"])
def test_the_gradient_of_v_is_orthogonal_to_v(case):
    """Salimans & Kingma eq. 3: grad_v L = (g/||v||) M_w grad_w L, with M_w projecting away from w (so v)."""
    model = _build(case)
    model.train()(_input(case, 6)).square().mean().backward()
    for path, name, axis in EXPECTED[case]:
        v = model.get_submodule(path).parametrizations[name].original1
        other = tuple(d for d in range(v.dim()) if d != axis)
        dot = (v * v.grad).sum(dim=other)
        scale = torch.linalg.vector_norm(v, dim=other) * torch.linalg.vector_norm(v.grad, dim=other)
        assert torch.all(dot.abs() <= 1e-5 * scale + 1e-12), (path, name)
        assert v.grad.abs().max() > 0


def test_gradcheck_of_a_weight_normalized_convolution():
    torch.manual_seed(0)
    conv = nn.utils.parametrizations.weight_norm(nn.Conv1d(2, 3, 3).double())
    g, v = conv.parametrizations.weight.original0, conv.parametrizations.weight.original1
    x = torch.randn(4, 2, 6, dtype=torch.float64, requires_grad=True)

    def call(x_, g_, v_):
        return torch.func.functional_call(conv, {"parametrizations.weight.original0": g_,
                                                 "parametrizations.weight.original1": v_,
                                                 "bias": conv.bias}, (x_,))

    leaves = (g.detach().clone().requires_grad_(True), v.detach().clone().requires_grad_(True))
    assert torch.autograd.gradcheck(call, (x,) + leaves, eps=1e-6, atol=1e-6)


def test_rnn_cell_state_slot_is_plain_and_mean_only_step_copies_share_their_bias():
    model = _build("rnn", mean_only_bn=True)
    cell = model.cell
    assert len(cell.norm_x.steps) == 5  # running means per step (Cooijmans), one bias per site
    assert all(m.bias is cell.norm_x.steps[0].bias for m in cell.norm_x.steps)
    assert [m.has_feeding for m in cell.norm_c.steps] == [True] * 5  # told: nothing feeds N_c
    assert not any(m._reparameterized for m in cell.norm_c.steps)


def test_data_dependent_init_is_armed_once_and_only_for_feed_forward_layers():
    model = _build("mlp", data_dependent_init=True)
    slots = [block.norm_act.norm for block in model.blocks]
    assert [slot.prepare_data_init() for slot in slots] == [True, True]
    g = model.blocks[0].linear.parametrizations.weight.original0
    model.eval()(_input("mlp", 16))
    after_init = g.detach().clone()
    model(_input("mlp", 16))  # the hooks removed themselves
    assert torch.equal(g, after_init)
    rnn = _build("rnn", data_dependent_init=True)
    assert not any(m.prepare_data_init() for m in rnn.modules() if hasattr(m, "prepare_data_init"))
    assert not create_norm("weight", 4, data_dependent_init=True).prepare_data_init()  # no layer yet
    assert not _build("mlp").blocks[0].norm_act.norm.prepare_data_init()  # option off
