"""rnn: plain cells vs torch, LN-/BN-LSTM vs hand-written references, per-step statistics, masks, options."""

from __future__ import annotations

import functools

import pytest
import torch
from torch import nn

from normbench.models import create_model
from normbench.norms import NormUndefinedError, available, create_norm

NORM_OPTIONS = {"group": {"num_groups": 2}}  # 32 groups would not divide the tiny sizes used here


def _norm(name, **options):
    return functools.partial(create_norm, name, **{**NORM_OPTIONS.get(name, {}), **options})


def _rnn(norm, input_shape=(2, 6), num_classes=3, **options):
    options.setdefault("hidden_size", 4)
    return create_model("rnn", norm=norm, input_shape=input_shape, num_classes=num_classes, **options)


def _prefix_mask(lengths, length):
    return torch.arange(length)[None, :] < torch.tensor(lengths)[:, None]


# -- plain cells are torch's LSTM / GRU --------------------------------------------------------------


@pytest.mark.parametrize("cell, reference", [("lstm", nn.LSTM), ("gru", nn.GRU)])
def test_none_norm_equals_torch_rnn_with_copied_weights(cell, reference):
    torch.manual_seed(0)
    model = _rnn(_norm("none"), input_shape=(3, 9), cell=cell, hidden_size=5).double()
    torch_rnn = reference(3, 5, batch_first=True).double()
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(torch_rnn, f"{name}_l0").copy_(getattr(model.cell, name))
    x = torch.randn(4, 3, 9, dtype=torch.float64)
    _, last = torch_rnn(x.transpose(1, 2))
    h_n = last[0] if cell == "lstm" else last
    expected = model.head(h_n[0])
    torch.testing.assert_close(model(x), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cell, reference", [("lstm", nn.LSTM), ("gru", nn.GRU)])
def test_same_seed_draws_torch_rnn_initial_weights(cell, reference):
    torch.manual_seed(3)
    model = _rnn(_norm("layer"), input_shape=(3, 9), cell=cell, hidden_size=5)
    torch.manual_seed(3)
    torch_rnn = reference(3, 5)
    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        assert torch.equal(getattr(model.cell, name), getattr(torch_rnn, f"{name}_l0")), name


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("norm_name", ["none", "layer"])
def test_masked_batch_equals_each_sequence_alone(cell, norm_name):
    torch.manual_seed(1)
    model = _rnn(_norm(norm_name), input_shape=(2, 7), cell=cell).double()
    x = torch.randn(4, 2, 7, dtype=torch.float64)
    lengths = [7, 3, 5, 1]
    out = model(x, mask=_prefix_mask(lengths, 7))
    for i, n in enumerate(lengths):
        torch.testing.assert_close(out[i], model(x[i : i + 1, :, :n])[0], rtol=1e-10, atol=1e-10)


def test_state_is_carried_over_gaps_in_a_mask_that_is_not_a_prefix():
    torch.manual_seed(2)
    model = _rnn(_norm("layer"), input_shape=(2, 8)).double()
    x = torch.randn(2, 2, 8, dtype=torch.float64)
    mask = torch.tensor([[1, 0, 0, 1, 1, 0, 1, 0], [1, 1, 1, 1, 1, 1, 1, 1]], dtype=torch.bool)
    out = model(x, mask=mask)
    alone = model(x[:1, :, mask[0]])  # the valid steps only, in order
    torch.testing.assert_close(out[0], alone[0], rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("norm_name", ["batch", "batch_layer", "layer"])
def test_values_at_padded_steps_never_change_the_outputs(cell, norm_name):
    torch.manual_seed(0)
    model = _rnn(_norm(norm_name), input_shape=(2, 6), cell=cell).train()
    x = torch.randn(5, 2, 6)
    mask = _prefix_mask([6, 2, 4, 6, 3], 6)
    mask[3, 1] = False  # a gap inside a sequence
    garbage = x.masked_fill(~mask.unsqueeze(1), 1e4)
    out = model(x, mask=mask)
    assert torch.equal(out, model(garbage, mask=mask))
    out.sum().backward()


# -- LN-LSTM (Ba et al. 2016) and BN-LSTM (Cooijmans et al. 2016) against hand-written references ---------


def _standardize(a, dim, eps=1e-5):
    return (a - a.mean(dim, keepdim=True)) / (a.var(dim, unbiased=False, keepdim=True) + eps).sqrt()


def _reference_lstm(model, x, site_norm, gamma):
    """LSTM with norm(W_ih x) + norm(W_hh h) + b and h = σ(o) tanh(norm(c)), written out from the papers."""
    cell = model.cell
    h = c = x.new_zeros(x.shape[0], cell.hidden_size)
    for t in range(x.shape[2]):
        gates = (
            gamma * site_norm(x[:, :, t] @ cell.weight_ih.t())
            + gamma * site_norm(h @ cell.weight_hh.t())
            + cell.bias_ih + cell.bias_hh
        )
        i, f, g, o = gates.chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(gamma * site_norm(c))
    return model.head(h)


def test_layer_norm_factory_gives_ln_lstm():
    torch.manual_seed(4)
    model = _rnn(_norm("layer"), input_shape=(3, 6), hidden_size=5).double()
    x = torch.randn(4, 3, 6, dtype=torch.float64)
    expected = _reference_lstm(model, x, lambda a: _standardize(a, dim=1), gamma=1.0)
    torch.testing.assert_close(model(x), expected, rtol=1e-10, atol=1e-10)


@pytest.fixture
def float64_default():
    """Build in float64, so that γ = 0.1 is not first rounded to float32."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def test_batch_norm_factory_gives_bn_lstm_with_gamma_one_tenth(float64_default):
    torch.manual_seed(5)
    model = _rnn(_norm("batch"), input_shape=(3, 6), hidden_size=5).train()
    x = torch.randn(8, 3, 6, dtype=torch.float64)
    expected = _reference_lstm(model, x, lambda a: _standardize(a, dim=0), gamma=0.1)
    torch.testing.assert_close(model(x), expected, rtol=1e-10, atol=1e-10)


def test_bn_lstm_keeps_separate_running_statistics_per_step():
    torch.manual_seed(6)
    model = _rnn(_norm("batch"), input_shape=(3, 5), hidden_size=4).double().train()
    x = torch.randn(8, 3, 5, dtype=torch.float64)
    model(x)
    norm_x = model.cell.norm_x
    assert len(norm_x.steps) == 5 and int(norm_x.trained_steps) == 5
    for t in range(5):
        a = x[:, :, t] @ model.cell.weight_ih.t()
        # one training batch: torch semantics, momentum 0.1 from (0, 1), unbiased variance
        torch.testing.assert_close(norm_x.steps[t].running_mean, 0.1 * a.mean(0))
        torch.testing.assert_close(norm_x.steps[t].running_var, 0.9 + 0.1 * a.var(0, unbiased=True))


def test_step_modules_share_one_gamma_and_beta_so_optimizers_see_them_once():
    model = _rnn(_norm("batch"), input_shape=(2, 6), hidden_size=4)
    for site in (model.cell.norm_x, model.cell.norm_h, model.cell.norm_c):
        first = site.steps[0]
        assert all(m.weight is first.weight and m.bias is first.bias for m in site.steps)
        assert torch.equal(first.weight, torch.full_like(first.weight, 0.1))
        assert torch.count_nonzero(first.bias) == 0
    params = list(model.parameters())
    assert len(params) == 4 + 3 * 2 + 2  # cell weights, one (γ, β) per site, head
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    model(torch.randn(4, 2, 6)).sum().backward()
    opt.step()  # shared parameters appear once in the optimizer, so this is a single update


def test_eval_reuses_the_last_trained_step_statistics_beyond_t_max():
    torch.manual_seed(7)
    model = _rnn(_norm("batch"), input_shape=(2, 8), max_steps=8).train()
    for _ in range(3):
        model(torch.randn(6, 2, 8), mask=_prefix_mask([5, 5, 4, 5, 3, 5], 8))  # T_max = 5
    sites = (model.cell.norm_x, model.cell.norm_h, model.cell.norm_c)
    assert all(int(site.trained_steps) == 5 for site in sites)
    model.eval()
    x = torch.randn(3, 2, 12)  # longer than max_steps too
    before = model(x)
    with torch.no_grad():
        for site in sites:
            for module in site.steps[5:]:  # never trained: must not be used
                module.running_mean.fill_(1e3)
                module.running_var.fill_(1e-3)
    assert torch.equal(model(x), before)


def test_a_step_with_one_running_sequence_uses_population_statistics():
    torch.manual_seed(8)
    x = torch.randn(3, 2, 5)
    mask = _prefix_mask([5, 3, 3], 5)  # steps 3 and 4 have a single valid sequence
    model = _rnn(_norm("batch"), input_shape=(2, 5)).train()
    out = model(x, mask=mask)
    out.sum().backward()
    assert torch.isfinite(out).all()
    norm_x = model.cell.norm_x
    assert int(norm_x.trained_steps) == 3
    assert len(norm_x.steps[3:]) >= 2  # steps 3 and 4
    assert all(torch.count_nonzero(m.running_mean) == 0 for m in norm_x.steps[3:])
    assert all(m.training for m in norm_x.steps)  # eval() for one call only
    strict = _rnn(_norm("batch"), input_shape=(2, 5), single_sample_steps="batch").train()
    with pytest.raises(NormUndefinedError):
        strict(x, mask=mask)


def test_batch_of_one_stays_undefined_for_batch_norm():
    model = _rnn(_norm("batch")).train()
    with pytest.raises(NormUndefinedError):
        model(torch.randn(1, 2, 6))
    assert model.eval()(torch.randn(1, 2, 6)).shape == (1, 3)


@pytest.mark.parametrize(
    "norm_name, options, per_step, gamma",
    [
        ("batch", {}, True, 0.1),
        ("batch_renorm", {}, True, 0.1),
        ("batch_layer", {}, True, 1.0),
        ("layer", {}, False, 1.0),
        ("rms", {}, False, 1.0),
        ("layer", {"per_step_statistics": True, "gamma_init": 0.5}, True, 0.5),
        ("batch", {"per_step_statistics": False, "gamma_init": 1}, False, 1.0),
    ],
)
def test_per_step_statistics_and_gamma_init(norm_name, options, per_step, gamma):
    model = _rnn(_norm(norm_name), input_shape=(2, 6), **options)
    for site in (model.cell.norm_x, model.cell.norm_h, model.cell.norm_c):
        assert len(site.steps) == (6 if per_step else 1)
        assert torch.equal(site.steps[0].weight, torch.full_like(site.steps[0].weight, gamma))
    assert model.config["per_step_statistics"] is per_step


def test_max_steps_sets_the_number_of_step_modules_and_longer_inputs_run():
    model = _rnn(_norm("batch"), input_shape=(2, 6), max_steps=3, cell="gru").train()
    assert len(model.cell.norm_x.steps) == 3 and not hasattr(model.cell, "norm_c")
    assert model(torch.randn(4, 2, 6)).shape == (4, 3)  # steps 3..5 use the last module
    assert int(model.cell.norm_x.trained_steps) == 3


# -- every registry norm ---------------------------------------------------------------------------


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("norm_name", available())
def test_forward_backward_with_every_registry_norm(cell, norm_name):
    torch.manual_seed(0)
    model = _rnn(_norm(norm_name), cell=cell).train()
    x = torch.randn(4, 2, 6)
    mask = _prefix_mask([6, 4, 5, 2], 6)
    if norm_name == "instance":  # (N, C) step inputs have no spatial axis: undefined, by definition
        with pytest.raises(NormUndefinedError):
            model(x)
        return
    for m in (None, mask):
        out = model(x, mask=m)
        assert out.shape == (4, 3) and torch.isfinite(out).all()
        out.square().mean().backward()
        for name, param in model.named_parameters():
            assert param.grad is not None and torch.isfinite(param.grad).all(), name
    assert torch.isfinite(model.eval()(x, mask=mask)).all()


def test_regression_output_has_one_column():
    model = _rnn(_norm("layer"), input_shape=(2, 10), num_classes=1)
    assert model(torch.randn(3, 2, 10), mask=_prefix_mask([10, 5, 7], 10)).shape == (3, 1)


def test_state_dict_round_trip_keeps_per_step_statistics():
    torch.manual_seed(0)
    model = _rnn(_norm("batch"), input_shape=(2, 6)).train()
    model(torch.randn(5, 2, 6))
    copy = _rnn(_norm("batch"), input_shape=(2, 6))
    copy.load_state_dict(model.state_dict())
    x = torch.randn(3, 2, 6)
    assert torch.equal(copy.eval()(x), model.eval()(x))


# -- pairing and options ---------------------------------------------------------------------------


def _non_norm_state(model, as_built):
    return {k: v for k, v in as_built(model).items() if "norm" not in k}


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_same_seed_gives_same_weights_whatever_the_norm(cell, random_affine_norm, as_built):
    states = []
    for factory in [_norm(name) for name in available()] + [random_affine_norm]:
        torch.manual_seed(1234)
        model = _rnn(factory, cell=cell)
        state = _non_norm_state(model, as_built)
        state["_next_draw"] = torch.rand(3)
        states.append(state)
    reference = states[0]
    assert set(reference) == {"cell.weight_ih", "cell.weight_hh", "cell.bias_ih", "cell.bias_hh",
                              "head.weight", "head.bias", "_next_draw"}
    for state in states[1:]:
        assert state.keys() == reference.keys()
        assert all(torch.equal(state[k], v) for k, v in reference.items())


def test_norm_factory_calls_per_site_and_step(recording_norm):
    _rnn(recording_norm, input_shape=(2, 6), hidden_size=4, per_step_statistics=True, max_steps=2)
    assert recording_norm.calls == [16, 16, 16, 16, 4, 4]


@pytest.mark.parametrize(
    "options, message",
    [
        ({"cell": "rnn"}, r"option 'cell' must be one of gru, lstm; got 'rnn'"),
        ({"hidden_size": 0}, r"option 'hidden_size' must be a positive integer"),
        ({"max_steps": 0}, r"option 'max_steps' must be a positive integer"),
        ({"per_step_statistics": "yes"}, r"option 'per_step_statistics' must be auto, true or false"),
        ({"per_step_statistics": 1}, r"option 'per_step_statistics' must be auto, true or false"),
        ({"gamma_init": 0}, r"option 'gamma_init' must be auto or a positive number"),
        ({"single_sample_steps": "x"}, r"option 'single_sample_steps' must be one of batch, population"),
        ({"layers": 2}, r"unknown option 'layers'; allowed options: bidirectional, cell, gamma_init, "
                        r"hidden_size, max_steps, per_step_statistics, readout, single_sample_steps"),
    ],
)
def test_bad_options_name_what_is_allowed(options, message):
    with pytest.raises(ValueError, match=r"model 'rnn': " + message):
        _rnn(_norm("none"), **options)


def test_inputs_of_the_wrong_layout_are_rejected():
    with pytest.raises(ValueError, match=r"model 'rnn' needs a sequence input_shape \(C, L\)"):
        _rnn(_norm("none"), input_shape=(1, 8, 8))
    model = _rnn(_norm("none"))
    with pytest.raises(ValueError, match="mask shape"):
        model(torch.randn(2, 2, 6), mask=torch.ones(2, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"not a batch of sequences \(N, 2, L\)"):
        model(torch.randn(2, 3, 6))


def test_gradients_reach_the_first_step_through_the_carried_state():
    model = _rnn(_norm("batch"), input_shape=(2, 6)).train()
    x = torch.randn(4, 2, 6, requires_grad=True)
    model(x).sum().backward()
    assert x.grad[:, :, 0].abs().sum() > 0

