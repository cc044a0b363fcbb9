"""BLN behaviour beyond the reference comparison: remembered m, m = 1, growth, state, precision."""

from __future__ import annotations

import math

import norm_reference as ref
import numpy as np
import pytest
import torch

from normbench.norms import create_norm
from normbench.norms.batch_layer import mixing_weights


def test_mixing_weights_follow_the_reference_formula():
    wf, wb = mixing_weights(25, 16)
    assert wf == pytest.approx((1 / 25 - 1e-4) / 4)
    assert wb == pytest.approx((1 - 1 / 25 - 1e-4) / 4)


@pytest.mark.parametrize(
    "offset,divide,expected",
    [
        (1e-4, True, ((1 / 25 - 1e-4) / 4, (24 / 25 - 1e-4) / 4)),  # the reference form
        (0.0, True, (0.04 / 4, 0.96 / 4)),  # the paper's weights, still divided by sqrt(16)
        (1e-4, False, (0.0399, 0.9599)),
        (0.0, False, (0.04, 0.96)),  # the paper's equations: weights 1/m and 1 - 1/m
    ],
)
def test_mixing_weight_variants(offset, divide, expected):
    assert mixing_weights(25, 16, offset, divide) == pytest.approx(expected, rel=1e-12)
    bln = create_norm("bln", 16, offset=offset, divide_by_sqrt_channels=divide)
    assert bln._mixing_weights(25) == pytest.approx(expected, rel=1e-12)


def test_variant_defaults_are_the_reference_code():
    """Default options give exactly the reference layer (so existing runs are unchanged)."""
    gen = torch.Generator().manual_seed(6)
    x = torch.randn(5, 4, 3, generator=gen)
    default, explicit = create_norm("bln", 4), create_norm("bln", 4, offset=1e-4, divide_by_sqrt_channels=True)
    assert torch.equal(default(x), explicit(x))


def test_paper_form_at_batch_one_is_the_feature_term_alone():
    """offset 0, no sqrt(C): at m = 1 the batch weight is exactly 0, so y = gamma x_f + beta."""
    gen = torch.Generator().manual_seed(7)
    bln = create_norm("bln", 4, offset=0.0, divide_by_sqrt_channels=False).double()
    x = torch.randn(1, 4, 3, generator=gen, dtype=torch.float64)
    xf = (x - x.mean(1, keepdim=True)) / torch.sqrt(x.var(1, unbiased=False, keepdim=True) + 1e-3)
    torch.testing.assert_close(bln(x), xf)


def test_eval_mixes_with_the_last_training_batch_size_whatever_the_eval_batch():
    gen = torch.Generator().manual_seed(0)
    bln = create_norm("bln", 6).double()
    for n in (4, 8):  # the last training batch has m = 8
        bln(torch.randn(n, 6, 5, generator=gen, dtype=torch.float64))
    assert int(bln.last_batch_size) == 8
    bln.eval()
    x = torch.randn(3, 6, 5, generator=gen, dtype=torch.float64)
    together = bln(x)
    # default flags: population batch statistics and per-sample feature statistics, so each eval
    # sample's output is independent of the others in its batch
    alone = torch.cat([bln(x[i:i + 1]) for i in range(3)])
    torch.testing.assert_close(together, alone)
    # and it is the m = 8 mix: compare with the definition
    mu_b = bln.running_batch_mean.reshape(1, 6, 5)
    var_b = bln.running_batch_var.reshape(1, 6, 5)
    xf = (x - x.mean(1, keepdim=True)) / torch.sqrt(x.var(1, unbiased=False, keepdim=True) + 1e-3)
    xb = (x - mu_b) / torch.sqrt(var_b + 1e-3)
    expected = ((1 / 8 - 1e-4) * xf + (1 - 1 / 8 - 1e-4) * xb) / math.sqrt(6)
    torch.testing.assert_close(together, expected)


def test_batch_of_one_trains_and_evaluates_sensibly():
    """m = 1: x_b = 0 exactly, so y = gamma (1 - 1e-4) x_f / sqrt(C) + beta; no variance evidence."""
    gen = torch.Generator().manual_seed(1)
    bln = create_norm("bln", 4).double()
    with torch.no_grad():
        bln.bias.fill_(0.25)
    x = torch.randn(1, 4, 3, generator=gen, dtype=torch.float64)
    y = bln(x)
    xf = (x - x.mean(1, keepdim=True)) / torch.sqrt(x.var(1, unbiased=False, keepdim=True) + 1e-3)
    torch.testing.assert_close(y, (1 - 1e-4) * xf / 2 + 0.25)
    assert torch.all(bln.batch_var_count == 0)  # a batch of one says nothing about the variance
    assert torch.all(bln.batch_mean_count == 1)
    bln.eval()
    y_eval = bln(torch.randn(5, 4, 3, generator=gen, dtype=torch.float64))
    assert torch.isfinite(y_eval).all()


def test_variable_lengths_grow_the_estimates_and_unseen_positions_use_the_pooled_one():
    rng = np.random.default_rng(2)
    ours, theirs = create_norm("bln", 3).double(), ref.RefBatchLayerNorm(3)
    for length in (4, 7, 5):
        x = rng.normal(0.3, 1.5, size=(4, 3, length))
        got = ours(torch.from_numpy(x)).detach().numpy()
        np.testing.assert_allclose(got, theirs.train(x), atol=1e-10)
    assert tuple(ours.running_batch_mean.shape) == (3, 7)
    ours.eval()
    x = rng.normal(0.3, 1.5, size=(2, 3, 10))  # positions 7..9 were never seen in training
    np.testing.assert_allclose(ours(torch.from_numpy(x)).detach().numpy(), theirs.eval(x), atol=1e-10)


def test_state_dict_round_trip_restores_the_lazily_sized_estimates():
    gen = torch.Generator().manual_seed(3)
    trained = create_norm("bln", 4, feature_moving_mean=True)
    for _ in range(3):
        trained(torch.randn(6, 4, 3, 2, generator=gen))
    fresh = create_norm("bln", 4, feature_moving_mean=True)
    assert fresh.running_batch_mean.numel() == 0
    fresh.load_state_dict(trained.state_dict())
    trained.eval(), fresh.eval()
    x = torch.randn(2, 4, 3, 2, generator=gen)
    torch.testing.assert_close(fresh(x), trained(x))


def test_untrained_eval_uses_bn_initial_statistics_and_the_current_batch_size():
    bln = create_norm("bln", 4).double().eval()
    x = torch.randn(5, 4, 3, dtype=torch.float64)
    wf, wb = mixing_weights(5, 4)
    xf = (x - x.mean(1, keepdim=True)) / torch.sqrt(x.var(1, unbiased=False, keepdim=True) + 1e-3)
    torch.testing.assert_close(bln(x), wf * xf + wb * x / math.sqrt(1 + 1e-3))


def test_reset_running_stats_forgets_the_population():
    bln = create_norm("bln", 4)
    bln(torch.randn(6, 4, 3) + 5)
    bln.reset_running_stats()
    assert torch.all(bln.batch_mean_count == 0) and int(bln.num_batches_tracked) == 0
    assert int(bln.last_batch_size) == 6  # m is a property of the training setup, kept


def test_momentum_gives_an_exponential_moving_average():
    gen = torch.Generator().manual_seed(4)
    bln = create_norm("bln", 2, pooled=True, momentum=0.25).double()
    expected = None
    for _ in range(4):
        x = torch.randn(5, 2, 3, generator=gen, dtype=torch.float64) * 2 + 1
        bln(x)
        batch_mean = x.mean((0, 2))
        expected = batch_mean if expected is None else 0.75 * expected + 0.25 * batch_mean
    torch.testing.assert_close(bln.running_batch_mean, expected)


@pytest.mark.parametrize("offset", [0.0, 1e2, 1e4])
def test_float32_statistics_stay_accurate_with_a_large_mean(offset, bln_kernel_mode):
    """Shifted sums keep the variance accurate when |mean| >> std (E[x^2] - E[x]^2 would not)."""
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(16, 8, 40, generator=gen) + offset
    single, double = create_norm("bln", 8), create_norm("bln", 8).double()
    y32, y64 = single(x), double(x.double())
    torch.testing.assert_close(single.running_batch_var.double(), double.running_batch_var, rtol=1e-5, atol=0)
    # the output error grows like float32 epsilon * |mean| / std, as torch's own BatchNorm's does
    bound = 5e-7 * max(1.0, offset) + 1e-6
    assert float((y32.detach().double() - y64.detach()).abs().max()) < 10 * bound


@pytest.mark.parametrize("shape", [(7, 3, 6), (7, 3), (7, 3, 1, 1)], ids=["positions", "features", "one-position"])
@pytest.mark.parametrize("pooled", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_every_kernel_matches_the_reference_over_several_steps(pooled, masked, shape, bln_kernel_mode):
    """The general kernel (first step, masks), the uniform-count path (later unmasked steps) and,
    with one position per sample, torch's BN + LN kernels all give the reference's numbers."""
    if masked and len(shape) == 2:
        pytest.skip("(N, C) input has no positions to mask")
    rng = np.random.default_rng(6)
    ours, theirs = create_norm("bln", 3, pooled=pooled).double(), ref.RefBatchLayerNorm(3, pooled=pooled)
    spatial = shape[2:]
    for _ in range(4):
        x = rng.normal(4.0, 1.5, size=shape)
        mask = None
        if masked:
            mask = rng.random((shape[0], *spatial)) > 0.3
            mask.reshape(shape[0], -1)[:, 0] = True
        got = ours(torch.from_numpy(x), None if mask is None else torch.from_numpy(mask))
        np.testing.assert_allclose(got.detach().numpy(), theirs.train(x, mask), atol=1e-10)
    assert int(ours.num_batches_tracked) == 4 and int(ours.last_batch_size) == shape[0]
    ours.eval()
    x = rng.normal(4.0, 1.5, size=(3, *shape[1:]))
    np.testing.assert_allclose(ours(torch.from_numpy(x)).detach().numpy(), theirs.eval(x), atol=1e-10)


@pytest.mark.parametrize("momentum", [None, 0.3])
@pytest.mark.parametrize("shape", [(6, 4, 5), (6, 4)])
def test_uniform_count_path_keeps_the_same_population_state_as_the_general_path(shape, momentum):
    """Unmasked fixed-size steps take the uniform-count path; an all-true mask forces the general
    one. Both must leave identical buffers (counts, estimates, m, steps) after every step."""
    gen = torch.Generator().manual_seed(8)
    fast, general = (create_norm("bln", 4, momentum=momentum).double() for _ in range(2))
    full = torch.ones((shape[0], *shape[2:]), dtype=torch.bool)
    for step in range(5):
        x = torch.randn(shape, generator=gen, dtype=torch.float64) * 2 + 1
        torch.testing.assert_close(fast(x), general(x, full))
        for (name, a), (_, b) in zip(fast.named_buffers(), general.named_buffers()):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12, msg=f"{name} after step {step}")
    assert fast.__dict__["_uniform_count"] == 5  # steps 2-5 took the uniform path (counts mirrored)


def test_uniform_count_is_read_again_after_masks_resets_and_loaded_state():
    gen = torch.Generator().manual_seed(9)
    bln, twin = create_norm("bln", 4).double(), create_norm("bln", 4).double()
    x = torch.randn(6, 4, 5, generator=gen, dtype=torch.float64)
    mask = torch.rand(6, 5, generator=gen) > 0.5
    mask[:, 0], mask[:, 4] = True, False  # position 4 is padding in every sample: its counts lag
    for layer in (bln, twin):
        layer(x), layer(x, mask)  # counts now differ by position
        layer(x), layer(x)
    assert bln.__dict__["_uniform_count"] == -1  # read, found non-uniform: the general path stays
    bln.reset_running_stats()
    bln(x), bln(x)
    assert bln.__dict__["_uniform_count"] >= 0
    bln.load_state_dict(twin.state_dict())
    assert bln.__dict__["_uniform_count"] is None
    y, y_twin = bln(x * 3), twin(x * 3)
    torch.testing.assert_close(y, y_twin)
    torch.testing.assert_close(bln.running_batch_var, twin.running_batch_var)
