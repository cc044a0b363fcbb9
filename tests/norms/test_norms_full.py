"""Full Normalization: SCGD's gradient against finite differences, its limits (BN), its estimates."""

from __future__ import annotations

import copy

import norm_reference as ref
import numpy as np
import pytest
import torch
from norm_cases import random_input, random_mask, to_torch

from normbench.norms import create_norm


def _surrogate(x, mask, offsets, gamma, beta, eps):
    """FN's output as SCGD differentiates it: the outer function at (batch moments of x + offsets).

    ``offsets`` = (estimate - batch moment) at the evaluation point, held fixed, so the value at that
    point is FN's and the derivative is the batch moments' (coefficient 1)."""
    X, M = ref.as_ncp(x, mask)
    c = X.shape[1]
    mean, second = np.zeros(c), np.zeros(c)
    for k in range(c):
        vals = X[:, k, :][M]
        mean[k], second[k] = vals.mean() + offsets[0][k], (vals ** 2).mean() + offsets[1][k]
    var = np.maximum(second - mean ** 2, 0.0)
    y = (X - mean[None, :, None]) / np.sqrt(var[None, :, None] + eps)
    return ref.finish(ref.affine(y, gamma, beta), M, x.shape)


@pytest.mark.parametrize("masked", [False, True], ids=["dense", "masked"])
@pytest.mark.parametrize("shape", [(5, 3), (4, 3, 4)], ids=["NC", "NCL"])
def test_backward_is_the_compositional_gradient(shape, masked):
    """After two batches the estimates differ from the batch moments; the input gradient of a
    third batch equals central differences of the SCGD surrogate (NumPy, float64)."""
    rng = np.random.default_rng(21)
    module = create_norm("full", shape[1], momentum=0.3).double().train()
    gamma, beta = rng.uniform(0.5, 1.5, shape[1]), rng.normal(0, 0.5, shape[1])
    with torch.no_grad():
        module.weight.copy_(torch.from_numpy(gamma))
        module.bias.copy_(torch.from_numpy(beta))
        for _ in range(2):
            module(to_torch(random_input(shape, rng, offset=1.5)))
    x = random_input(shape, rng)
    mask = random_mask(shape, rng) if masked else None
    upstream = rng.normal(size=shape)
    before = copy.deepcopy(module)

    xt = to_torch(x).clone().requires_grad_(True)
    (module(xt, to_torch(mask)) * to_torch(upstream)).sum().backward()
    X, M = ref.as_ncp(x, mask)
    batch = [np.array([X[:, k, :][M].mean() for k in range(shape[1])]),
             np.array([(X[:, k, :][M] ** 2).mean() for k in range(shape[1])])]
    offsets = (module.running_mean.numpy() - batch[0], module.running_second_moment.numpy() - batch[1])
    np.testing.assert_allclose(_surrogate(x, mask, offsets, gamma, beta, module.eps),
                               module.eval()(to_torch(x), to_torch(mask)).detach().numpy(), atol=1e-10)

    numeric = np.zeros_like(x)
    h = 1e-6
    for index in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[index] += h
        down[index] -= h
        numeric[index] = ((_surrogate(up, mask, offsets, gamma, beta, module.eps)
                           - _surrogate(down, mask, offsets, gamma, beta, module.eps)) * upstream).sum() / (2 * h)
    np.testing.assert_allclose(xt.grad.numpy(), numeric, atol=1e-6, rtol=1e-5)
    # which is not the derivative of the forward value (the estimate moves by 0.3 of the batch's)
    def forward_value(values):
        with torch.no_grad():
            return float((copy.deepcopy(before)(to_torch(values), to_torch(mask)) * to_torch(upstream)).sum())

    valid = np.argwhere(np.ones(shape[:1] + shape[2:], dtype=bool) if mask is None else mask)[0]
    index = (int(valid[0]), 0) + tuple(int(v) for v in valid[1:])
    up, down = x.copy(), x.copy()
    up[index] += h
    down[index] -= h
    assert abs((forward_value(up) - forward_value(down)) / (2 * h) - xt.grad.numpy()[index]) > 1e-3


@pytest.mark.parametrize("masked", [False, True], ids=["dense", "masked"])
def test_momentum_one_is_batch_norm_in_training(masked):
    rng = np.random.default_rng(3)
    shape = (6, 4, 5)
    fn = create_norm("full", 4, momentum=1.0).double()
    bn = create_norm("batch", 4).double()
    for _ in range(3):
        x, mask = random_input(shape, rng), (random_mask(shape, rng) if masked else None)
        xs = [to_torch(x).clone().requires_grad_(True) for _ in range(2)]
        ys = [fn(xs[0], to_torch(mask)), bn(xs[1], to_torch(mask))]
        upstream = to_torch(rng.normal(size=shape))
        for y, xt in zip(ys, xs):
            (y * upstream).sum().backward()
        torch.testing.assert_close(ys[0], ys[1], atol=1e-10, rtol=1e-10)
        torch.testing.assert_close(xs[0].grad, xs[1].grad, atol=1e-10, rtol=1e-10)


def test_first_training_batch_is_batch_norm_and_eval_before_training_is_the_identity_map():
    x = torch.randn(6, 3, 4, dtype=torch.float64) * 2 + 1
    fn = create_norm("full", 3).double()
    torch.testing.assert_close(fn.eval()(x), x / (1 + 1e-5) ** 0.5)  # estimates 0 and 1: x / sqrt(1 + eps)
    torch.testing.assert_close(fn.train()(x), create_norm("batch", 3).double()(x))
    assert int(fn.num_batches_tracked) == 1


def test_eval_normalizes_with_the_full_data_moments_that_batch_norm_misses():
    """Class-pure batches: BN's averaged batch variance lacks the between-class variance, FN's
    estimates of E[x] and E[x^2] do not (cumulative average over one pass = the data's moments)."""
    gen = torch.Generator().manual_seed(0)
    classes = [torch.randn(40, 1, generator=gen, dtype=torch.float64) * 0.5 + centre for centre in (-3.0, 0.0, 3.0)]
    data = torch.cat(classes)
    fn = create_norm("full", 1, momentum=None).double().train()
    bn = create_norm("batch", 1, momentum=None).double().train()
    for batch in classes:
        fn(batch)
        bn(batch)
    torch.testing.assert_close(fn.running_mean, data.mean(0))
    torch.testing.assert_close(fn.running_second_moment - fn.running_mean ** 2, data.var(0, unbiased=False))
    assert float(bn.running_var) < 0.5 < float(data.var())  # within-class variance only


def test_a_batch_of_one_value_per_channel_is_defined():
    fn = create_norm("full", 3).train()
    fn(torch.randn(8, 3))
    y = fn(torch.randn(1, 3))
    assert torch.isfinite(y).all() and int(fn.num_batches_tracked) == 2
