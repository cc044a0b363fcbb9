"""BN's inference example weighing (Summers & Dinneen 2020): its limits, its closed form on (N, C),
training left untouched, and what the train_eval_gap probe records."""

from __future__ import annotations

import pytest
import torch

from normbench.data import load_dataset
from normbench.norms import create_norm
from normbench.spec import RunSpec, freeze_options
from normbench.train import run_training


def _trained(options, seed=0, shape=(8, 3, 5)):
    gen = torch.Generator().manual_seed(seed)
    bn = create_norm("batch", shape[1], **options).double().train()
    for _ in range(4):
        bn(torch.randn(shape, generator=gen, dtype=torch.float64) * 2 + 1)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5, generator=gen)
        bn.bias.uniform_(-0.5, 0.5, generator=gen)
    return bn.eval()


def test_weight_zero_is_plain_population_statistics():
    plain, weighted = _trained({}), _trained({"inference_weight": 0.0})
    x = torch.randn(3, 3, 5, dtype=torch.float64)
    torch.testing.assert_close(weighted(x), plain(x), atol=1e-12, rtol=1e-12)


def test_weight_one_uses_the_examples_own_moments_as_instance_norm_does():
    weighted = _trained({"inference_weight": 1.0})
    instance = create_norm("instance", 3, eps=weighted.eps).double()
    with torch.no_grad():
        instance.weight.copy_(weighted.weight)
        instance.bias.copy_(weighted.bias)
    x = torch.randn(4, 3, 6, dtype=torch.float64) * 3
    mask = torch.rand(4, 6) > 0.3
    mask[:, 0] = True
    torch.testing.assert_close(weighted(x, mask), instance(x, mask), atol=1e-10, rtol=1e-10)


def test_on_feature_vectors_the_variance_adds_the_examples_own_deviation():
    alpha = 0.2
    bn = _trained({"inference_weight": alpha}, shape=(8, 3))
    x = torch.randn(5, 3, dtype=torch.float64) * 2
    mu, var = bn.running_mean, bn.running_var
    mixed_mean = alpha * x + (1 - alpha) * mu
    mixed_var = (1 - alpha) * var + alpha * (1 - alpha) * (x - mu) ** 2
    expected = bn.weight * (x - mixed_mean) / (mixed_var + bn.eps).sqrt() + bn.bias
    torch.testing.assert_close(bn(x), expected, atol=1e-12, rtol=1e-12)
    # a repeated call (BN's fast path remembers a callable per input shape) still weighs the example
    torch.testing.assert_close(bn(x), expected, atol=1e-12, rtol=1e-12)


def test_training_is_unchanged():
    gen = torch.Generator().manual_seed(4)
    plain, weighted = create_norm("batch", 3), create_norm("batch", 3, inference_weight=0.5)
    for _ in range(3):
        x = torch.randn(6, 3, 4, generator=gen)
        assert torch.equal(plain(x), weighted(x))
    assert torch.equal(plain.running_mean, weighted.running_mean)
    assert torch.equal(plain.running_var, weighted.running_var)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def test_train_eval_gap_probe_sees_the_same_training_and_a_different_evaluation(digits):
    """Training is bit-for-bit the same, so the batch-statistics accuracy agrees at every point and
    only the eval-mode accuracy moves."""
    def run(norm_options):
        spec = RunSpec(suite="t", model="mlp", dataset="digits", norm="batch", batch_size=4, seed=0, device="cpu",
                       steps=60, epochs=None, optimizer="sgd", lr=0.05, momentum=0.9, weight_decay=0.0, eval_every=30,
                       model_options=freeze_options({"widths": [32]}), norm_options=freeze_options(norm_options),
                       probes=freeze_options({"train_eval_gap": True}))
        result = run_training(spec, digits)
        assert result.outcome == "completed"
        return {(step, key): value for step, probe, key, value in result.probes}

    plain, weighted = run({}), run({"inference_weight": 0.25})
    batch_keys = [k for k in plain if k[1] == "batch_stats_accuracy"]
    assert batch_keys and all(plain[k] == weighted[k] for k in batch_keys)
    assert any(plain[k] != weighted[k] for k in plain if k[1] == "eval_accuracy")
