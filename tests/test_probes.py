"""Probes against hand-computed cases; probes never change the training they observe."""

import dataclasses

import numpy as np
import pytest
import torch

import normbench.train as train
from normbench.data import load_dataset
from normbench.probes import (
    ActivationInputCapture,
    ProbeConfig,
    ProbeRecorder,
    batch_statistics_accuracy,
    record_grad_norms,
    record_percentiles,
    record_smoothness,
)
from normbench.spec import freeze_options


def test_percentiles_match_numpy():
    values = torch.tensor(np.random.default_rng(0).normal(size=1001))
    recorder = ProbeRecorder()
    record_percentiles(recorder, 7, values)
    expected = np.percentile(values.numpy(), [15, 50, 85])
    assert [r[2] for r in recorder.rows] == ["p15", "p50", "p85"]
    np.testing.assert_allclose([r[3] for r in recorder.rows], expected, rtol=1e-12)
    assert all(r[0] == 7 for r in recorder.rows)


def test_smoothness_on_a_quadratic_equals_its_curvature():
    # L(w) = a/2 · w²: g = a·w, ∇L(w − ηg) − g = −η a² w, so β_eff = a exactly, and the loss range
    # over η ∈ {0.1, 0.2} is L(w) − min(L(w − ηg)).
    a, w0, lr = 3.0, 2.0, 0.1
    model = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(w0)
    def loss_fn():
        return 0.5 * a * model.weight.sum() ** 2
    recorder = ProbeRecorder()
    record_smoothness(recorder, 1, model, loss_fn, lr, (1.0, 2.0))
    rows = {key: value for _, _, key, value in recorder.rows}
    g = a * w0
    losses = [0.5 * a * w0**2] + [0.5 * a * (w0 - eta * g) ** 2 for eta in (0.1, 0.2)]
    assert rows["beta_smoothness"] == pytest.approx(a, rel=1e-6)
    assert rows["gradient_predictiveness"] == pytest.approx(0.2 * a * a * w0, rel=1e-6)
    assert rows["loss_range"] == pytest.approx(max(losses) - min(losses), rel=1e-6)
    assert model.weight.item() == w0  # restored


def test_grad_norms_cover_weights_only():
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 2))
    model(torch.randn(5, 3)).sum().backward()
    recorder = ProbeRecorder()
    record_grad_norms(recorder, 3, model)
    assert [r[2] for r in recorder.rows] == ["0", "2"]  # BN's 1-d weight and biases excluded
    assert recorder.rows[0][3] == pytest.approx(model[0].weight.grad.norm().item())


def test_grad_norms_of_weight_normalized_layers_are_their_directions():
    model = torch.nn.Sequential(torch.nn.utils.parametrizations.weight_norm(torch.nn.Linear(3, 4)),
                                torch.nn.Linear(4, 2))
    model(torch.randn(5, 3)).sum().backward()
    recorder = ProbeRecorder()
    record_grad_norms(recorder, 3, model)
    assert [r[2] for r in recorder.rows] == ["0", "1"]
    v = model[0].parametrizations.weight.original1
    assert recorder.rows[0][3] == pytest.approx(v.grad.norm().item())


def test_batch_statistics_accuracy_uses_batch_stats_and_leaves_model_untouched():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(8, 2) * 5 + 3
    y = torch.zeros(8, dtype=torch.long)
    def count(out, target):
        return int((out.argmax(1) == target).sum())
    acc = batch_statistics_accuracy(model, x, y, 4, count)
    with torch.no_grad():
        z = model[0](x)
        halves = [(h - h.mean(0)) / torch.sqrt(h.var(0, unbiased=False) + 1e-5) for h in (z[:4], z[4:])]
        expected = sum(int((h.argmax(1) == 0).sum()) for h in halves) / 8
    assert acc == expected
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not model.training


def test_capture_rejects_models_without_slots_and_bad_indices():
    with pytest.raises(ValueError, match="norm/activation blocks"):
        ActivationInputCapture(torch.nn.Linear(2, 2), -1, 0)


def test_probe_config_from_suite_options():
    config = ProbeConfig.from_options({"percentiles": {"layer": 1, "unit": 3}, "smoothness": {"every": 5, "step_scales": [1.0]}})
    assert config.percentiles and config.percentile_layer == 1 and config.percentile_unit == 3
    assert config.smoothness and config.smoothness_every == 5 and config.smoothness_step_scales == (1.0,)
    assert not config.grad_norms and not ProbeConfig().any


def test_probes_do_not_change_the_run_they_observe(make_spec):
    data = load_dataset("digits")
    spec = make_spec(
        steps=30, model_options=freeze_options({"preset": "ioffe2015"}),
        probes=freeze_options({"percentiles": True, "train_eval_gap": True, "grad_norms": True,
                               "smoothness": {"every": 10}}),
    )
    probed = train.run_training(spec, data)
    plain = train.run_training(dataclasses.replace(spec, probes=()), data)
    assert probed.outcome == plain.outcome == "completed"
    assert [p.test_accuracy for p in probed.curve] == [p.test_accuracy for p in plain.curve]
    assert [p.test_loss for p in probed.curve] == [p.test_loss for p in plain.curve]
    kinds = {row[1] for row in probed.probes}
    assert kinds == {"percentiles", "train_eval_gap", "grad_norms", "smoothness"}
    assert plain.probes == []
