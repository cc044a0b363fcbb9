"""The batch_stat_variance probe (PowerNorm's fluctuating batch statistics): hand-computed values,
masks, the i.i.d. normal limit, and that it never changes the run it observes."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

import normbench.train as train
from normbench.data import load_dataset
from normbench.norms import create_norm
from normbench.probes import ProbeConfig, batch_statistic_fluctuation, probe_batches
from normbench.spec import freeze_options


class OneNorm(torch.nn.Module):
    """A model that is one norm site (so the probe's input is exactly the batch given)."""

    def __init__(self, channels: int, name: str = "batch") -> None:
        super().__init__()
        self.norm = create_norm(name, channels)

    def forward(self, x, mask=None):
        return self.norm(x) if mask is None else self.norm(x, mask=mask)


def test_two_hand_computed_batches():
    # channel 0: batch 1 holds 0, 2 (mean 1, variance 1), batch 2 holds 2, 6 (mean 4, variance 4);
    # channel 1 is constant (variance 0 in both) and is left out.
    batches = [(torch.tensor([[0.0, 5.0], [2.0, 5.0]]), None), (torch.tensor([[2.0, 5.0], [6.0, 5.0]]), None)]
    values = batch_statistic_fluctuation(OneNorm(2), batches)
    spread = math.sqrt(((1 - 2.5) ** 2 + (4 - 2.5) ** 2) / 1)  # sample std of the means (1, 4) and of the variances (1, 4)
    assert values["mean_fluctuation"] == pytest.approx(spread / math.sqrt(2.5))
    assert values["var_fluctuation"] == pytest.approx(spread / 2.5)
    assert set(values) == {"mean_fluctuation", "var_fluctuation"}


def test_padded_positions_never_enter_the_statistics():
    torch.manual_seed(0)
    x = torch.randn(3, 4, 2, 6)  # (batches, N, C, L)
    mask = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 0, 0, 0], [1] * 6, [1, 1, 1, 1, 1, 0]], dtype=torch.bool)
    garbage = x.clone()
    garbage[:, ~mask.unsqueeze(1).expand(4, 2, 6)] = 1e6
    clean = batch_statistic_fluctuation(OneNorm(2), [(b, mask) for b in x])
    dirty = batch_statistic_fluctuation(OneNorm(2), [(b, mask) for b in garbage])
    assert dirty == pytest.approx(clean)


def test_iid_normal_batches_give_the_sampling_limits():
    # m values per statistic from N(3, 2²): std(batch mean)/σ_b = 1/sqrt(m - 1) and the coefficient
    # of variation of the biased batch variance sqrt(2/(m - 1)), whatever the location and scale.
    m, channels = 16, 8
    generator = torch.Generator().manual_seed(0)
    batches = [(3 + 2 * torch.randn(m, channels, generator=generator), None) for _ in range(2000)]
    values = batch_statistic_fluctuation(OneNorm(channels, "layer"), batches)
    assert values["mean_fluctuation"] == pytest.approx(1 / math.sqrt(m - 1), rel=0.03)
    assert values["var_fluctuation"] == pytest.approx(math.sqrt(2 / (m - 1)), rel=0.05)


def test_per_site_values_and_an_untouched_model():
    torch.manual_seed(0)
    model = torch.nn.Sequential(OneNorm(3), torch.nn.Dropout(0.5), OneNorm(3, "none")).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    batches = [(torch.randn(5, 3), None) for _ in range(4)]
    values = batch_statistic_fluctuation(model, batches, per_site=True)
    assert set(values) == {"mean_fluctuation", "var_fluctuation", "0.norm.mean_fluctuation",
                           "0.norm.var_fluctuation", "2.norm.mean_fluctuation", "2.norm.var_fluctuation"}
    assert values["mean_fluctuation"] == pytest.approx(
        (values["0.norm.mean_fluctuation"] + values["2.norm.mean_fluctuation"]) / 2)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not model.training


def test_probe_batches_are_seeded_draws_of_the_batch_size():
    x, mask = torch.arange(20.0).reshape(10, 1, 2), torch.ones(10, 2, dtype=torch.bool)
    first, again = probe_batches(x, mask, 4, 3, seed=7), probe_batches(x, mask, 4, 3, seed=7)
    assert len(first) == 3 and all(b.shape == (4, 1, 2) and m.shape == (4, 2) for b, m in first)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(first, again))
    assert not torch.equal(first[0][0], probe_batches(x, mask, 4, 3, seed=8)[0][0])


def test_probe_config_reads_the_suite_options():
    config = ProbeConfig.from_options({"batch_stat_variance": {"batches": 4, "per_site": True}})
    assert config.batch_stat_variance and config.any
    assert config.batch_stat_variance_batches == 4 and config.batch_stat_variance_per_site


def test_the_probe_does_not_change_the_run_it_observes(make_spec):
    data = load_dataset("adding", n_train=64, n_test=32, min_length=5, max_length=9)
    spec = make_spec(model="transformer", dataset="adding", steps=6, eval_every=3, batch_size=8,
                     model_options=freeze_options({"d_model": 8, "layers": 1, "heads": 2}),
                     probes=freeze_options({"batch_stat_variance": {"batches": 3}}))
    probed = train.run_training(spec, data)
    plain = train.run_training(dataclasses.replace(spec, probes=()), data)
    assert probed.outcome == plain.outcome == "completed"
    assert [p.test_loss for p in probed.curve] == [p.test_loss for p in plain.curve]
    assert {(row[0], row[2]) for row in probed.probes} == {
        (step, key) for step in (0, 3, 6) for key in ("mean_fluctuation", "var_fluctuation")}
    assert all(row[1] == "batch_stat_variance" and row[3] > 0 for row in probed.probes)
