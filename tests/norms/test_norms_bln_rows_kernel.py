"""BLN's whole-step kernel for one position per sample (normbench/norms/bln_rows_kernel.cpp): the
same outputs, gradients and population state as the composition of torch's BN and LN kernels, its
determinism across thread counts, where it declines, and that it is differentiable once."""

from __future__ import annotations

import pytest
import torch

from normbench.norms import bln_kernel, create_norm


@pytest.fixture
def kernel(bln_fused_kernel):
    return bln_fused_kernel


def _eager(monkeypatch):
    monkeypatch.setitem(bln_kernel._state, "tried", True)
    monkeypatch.setitem(bln_kernel._state, "module", None)


def _train(layer, xs, dys):
    """Per step: output, input gradient and parameter gradients; then the layer's buffers."""
    steps = []
    for x, dy in zip(xs, dys):
        x = x.detach().clone().requires_grad_(True)
        layer.zero_grad(set_to_none=True)
        y = layer(x)
        y.backward(dy)
        steps.append([y.detach(), x.grad] + [p.grad for p in layer.parameters()])
    return steps, {name: b.clone() for name, b in layer.named_buffers()}


def _batches(shape, steps, dtype, seed):
    gen = torch.Generator().manual_seed(seed)
    xs = [(torch.randn(shape, generator=gen) * 2 + 0.7).to(dtype) for _ in range(steps)]
    dys = [torch.randn(shape, generator=gen).to(dtype) for _ in range(steps)]
    return xs, dys


def _layer(dtype, affine, momentum, c):
    layer = create_norm("bln", c, affine=affine, momentum=momentum).to(dtype)
    if affine:
        gen = torch.Generator().manual_seed(c)
        with torch.no_grad():  # away from (1, 0), so that a wrong gamma or beta shows
            layer.weight.copy_(torch.rand(c, generator=gen) + 0.5)
            layer.bias.copy_(torch.randn(c, generator=gen))
    return layer


# one chunk of rows, several chunks (32 rows each), a batch of two, (N, C, 1) input
SHAPES = [(60, 100), (70, 5), (2, 3), (200, 33), (9, 6, 1)]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("momentum", [None, 0.3])
def test_rows_steps_match_torchs_bn_and_ln_kernels_in_float64(kernel, monkeypatch, shape, affine, momentum):
    xs, dys = _batches(shape, 4, torch.float64, seed=sum(shape))
    with monkeypatch.context() as eager:
        _eager(eager)
        expected, expected_buffers = _train(_layer(torch.float64, affine, momentum, shape[1]), xs, dys)
    got, buffers = _train(_layer(torch.float64, affine, momentum, shape[1]), xs, dys)
    for step, (ours, theirs) in enumerate(zip(got, expected)):
        for name, a, b in zip(["y", "dx", "dgamma", "dbeta"], ours, theirs):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10, msg=f"{name} at step {step}")
    assert buffers.keys() == expected_buffers.keys()
    for name in buffers:
        torch.testing.assert_close(buffers[name], expected_buffers[name], rtol=1e-10, atol=1e-12, msg=name)


@pytest.mark.parametrize("shape", [(60, 100), (200, 33)], ids=lambda s: "x".join(map(str, s)))
def test_rows_float32_is_as_close_to_float64_as_torchs_kernels(kernel, monkeypatch, shape):
    xs, dys = _batches(shape, 3, torch.float32, seed=5)
    with monkeypatch.context() as eager:
        _eager(eager)
        exact, _ = _train(_layer(torch.float64, True, None, shape[1]), [x.double() for x in xs],
                          [d.double() for d in dys])
        torch32, _ = _train(_layer(torch.float32, True, None, shape[1]), xs, dys)
    fused32, _ = _train(_layer(torch.float32, True, None, shape[1]), xs, dys)
    for ours, theirs, ref in zip(fused32, torch32, exact):
        for name, a, b, r in zip(["y", "dx", "dgamma", "dbeta"], ours, theirs, ref):
            err, torch_err = float((a.double() - r).abs().max()), float((b.double() - r).abs().max())
            assert err <= max(4 * torch_err, 1e-6 * float(r.abs().max())), f"{name}: {err:.2e} vs {torch_err:.2e}"


def test_rows_kernel_gives_the_same_bits_at_one_and_two_threads(kernel):
    # 10 chunks of rows; the first step (estimates not sized yet) takes rows_forward, the others rows_train
    xs, dys = _batches((300, 200), 3, torch.float32, seed=11)
    before = torch.get_num_threads()
    results = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            results.append(_train(_layer(torch.float32, True, None, 200), xs, dys))
    finally:
        torch.set_num_threads(before)
    (steps1, buffers1), (steps2, buffers2) = results
    for one, two in zip(steps1, steps2):
        assert all(torch.equal(a, b) for a, b in zip(one, two))
    assert all(torch.equal(buffers1[name], buffers2[name]) for name in buffers1)


def test_equal_inputs_give_the_same_bits_whichever_population_update_the_step_takes(kernel):
    layer = create_norm("bln", 7)
    x = torch.randn(10, 7)
    first = layer(x)  # estimates not sized yet: the output kernel, then the general update
    second = layer(x)  # the whole-step call
    transposed = torch.empty(7, 10).t().copy_(x)  # (10, 7), not contiguous: the whole-step call declines
    assert not transposed.is_contiguous()
    assert torch.equal(first, second) and torch.equal(first, layer(transposed))


class _Counting:
    """Wraps the compiled module; records what each ``rows_train`` call returned (taken or declined)."""

    def __init__(self, module):
        self.module, self.rows = module, []

    def __getattr__(self, name):
        function = getattr(self.module, name)
        if name != "rows_train":
            return function

        def call(*args):
            out = function(*args)
            self.rows.append("taken" if out is not None else "declined")
            return out
        return call


def test_rows_kernel_declines_where_the_uniform_update_does_not_apply(kernel, monkeypatch):
    counting = _Counting(kernel)
    monkeypatch.setitem(bln_kernel._state, "module", counting)
    layer = create_norm("bln", 4).double()
    x = torch.randn(6, 4, dtype=torch.float64)
    layer(x)  # first training step: estimates not sized yet -> the general path sizes them
    layer(x)
    assert counting.rows == ["declined", "taken"]
    assert int(layer.num_batches_tracked) == 2 and float(layer.feature_count) == 2.0
    assert int(layer.last_batch_size) == 6
    strided = torch.randn(4, 6, dtype=torch.float64).t()  # (6, 4), not contiguous
    torch.testing.assert_close(layer(strided), layer(strided.contiguous()))
    assert counting.rows[2:] == ["declined", "taken"]
    layer.batch_var_count.add_(1)  # counts that differ: the general path's per-estimate update
    layer(x)
    assert counting.rows[4:] == ["declined"]


def test_rows_kernel_is_differentiable_once(kernel):
    layer = create_norm("bln", 5).double()
    x = torch.randn(8, 5, dtype=torch.float64, requires_grad=True)
    layer(x)  # size the estimates; the next call takes the kernel
    y = layer(x)
    with pytest.raises(RuntimeError, match="differentiable once"):  # said when the graph is asked for
        torch.autograd.grad(y.square().sum(), x, create_graph=True)
    (gx,) = torch.autograd.grad(layer(x).square().sum(), x)  # a first-order gradient still works
    assert torch.isfinite(gx).all()
