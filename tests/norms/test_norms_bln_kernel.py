"""BLN's fused CPU kernel (normbench/norms/bln_kernel.cpp) against the eager kernel and float64,
its determinism across thread counts, when it is used, and its fallback when it cannot be built."""

from __future__ import annotations

import pytest
import torch

from normbench.norms import batch_layer_fused as fused
from normbench.norms import bln_kernel, create_norm
from normbench.norms.batch_layer_function import BatchLayerNormTrain


@pytest.fixture
def kernel(bln_fused_kernel):
    return bln_fused_kernel


def _run(x, gamma, beta, pooled, dy):
    """Output and gradients (x, gamma, beta) of one training forward + backward."""
    x = x.detach().clone().requires_grad_(True)
    leaves = [t.detach().clone().requires_grad_(True) if t is not None else None for t in (gamma, beta)]
    y = BatchLayerNormTrain.apply(x, None, leaves[0], leaves[1], pooled, 0.07, 0.6, 1e-3)[0]
    y.backward(dy)
    return [y.detach(), x.grad] + [t.grad for t in leaves if t is not None]


def _eager(monkeypatch):
    monkeypatch.setitem(bln_kernel._state, "tried", True)
    monkeypatch.setitem(bln_kernel._state, "module", None)


# short rows in one and in several chunks of samples, long rows (>= 512 positions) with more
# samples than one chunk, several blocks of positions
SHAPES = [(8, 5, 37), (4, 3, 300), (16, 64, 33), (3, 40, 1000), (12, 8, 600), (20, 300, 70)]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("pooled", [False, True])
@pytest.mark.parametrize("affine", [True, False])
def test_fused_float32_matches_float64_as_closely_as_the_eager_kernel(kernel, monkeypatch, shape, pooled, affine):
    """Output and every gradient of the fused kernel within float32 rounding of the float64 result,
    and no further from it than the eager kernel's float32 result (times 4)."""
    gen = torch.Generator().manual_seed(sum(shape))
    x = torch.randn(shape, generator=gen) * 2 + 0.5
    dy = torch.randn(shape, generator=gen)
    gamma = torch.rand(shape[1], generator=gen) + 0.5 if affine else None
    beta = torch.randn(shape[1], generator=gen) if affine else None
    as64 = lambda t: None if t is None else t.double()  # noqa: E731
    with monkeypatch.context() as eager:
        _eager(eager)
        exact = _run(x.double(), as64(gamma), as64(beta), pooled, dy.double())
        eager32 = _run(x, gamma, beta, pooled, dy)
    fused32 = _run(x, gamma, beta, pooled, dy)
    for name, got, ref, other in zip(["y", "dx", "dgamma", "dbeta"], fused32, exact, eager32):
        scale = float(ref.abs().max())
        err, eager_err = float((got.double() - ref).abs().max()), float((other.double() - ref).abs().max())
        assert err <= max(4 * eager_err, 1e-6 * scale), f"{name}: fused {err:.2e}, eager {eager_err:.2e}"


def test_fused_kernel_gives_the_same_bits_at_one_and_two_threads(kernel):
    """Every sum is accumulated by one thread in a fixed order: the thread count changes nothing.
    (20 samples x 256 channels x 300 positions span three chunks of samples and several blocks of
    positions.)"""
    gen = torch.Generator().manual_seed(3)
    x, dy = torch.randn(20, 256, 300, generator=gen), torch.randn(20, 256, 300, generator=gen)
    gamma, beta = torch.rand(256, generator=gen), torch.randn(256, generator=gen)
    before = torch.get_num_threads()
    results = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            results.append(_run(x, gamma, beta, False, dy))
    finally:
        torch.set_num_threads(before)
    for one, two in zip(*results):
        assert torch.equal(one, two)


class _Counting:
    """Wraps the compiled module and counts the calls of each of its functions."""

    def __init__(self, module):
        self.module, self.calls = module, {}

    def __getattr__(self, name):
        def call(*args):
            self.calls[name] = self.calls.get(name, 0) + 1
            return getattr(self.module, name)(*args)
        return call


def test_layer_trains_through_the_fused_kernel_only_where_it_applies(kernel, monkeypatch):
    counting = _Counting(kernel)
    monkeypatch.setitem(bln_kernel._state, "module", counting)
    layer = create_norm("bln", 4)
    x = torch.randn(6, 4, 9, requires_grad=True)
    layer(x).sum().backward()
    assert counting.calls == {"moment_sums": 1, "forward_factors": 1, "apply_forward": 1,
                              "gradient_sums": 1, "backward_factors": 1, "apply_backward": 1}
    layer(x, torch.rand(6, 9) > 0.3).sum().backward()  # masked: the eager kernel
    assert counting.calls["moment_sums"] == 1 and counting.calls["gradient_sums"] == 1
    assert fused.usable(x, None) and not fused.usable(x.transpose(1, 2), None)
    assert not fused.usable(x.to(torch.bfloat16), None) and not fused.usable(x, torch.ones(6, 1, 9))


def test_env_switch_runs_the_eager_kernel_and_says_why(monkeypatch):
    monkeypatch.setenv(bln_kernel.ENV_SWITCH, "eager")
    monkeypatch.setitem(bln_kernel._state, "tried", False)
    monkeypatch.setitem(bln_kernel._state, "module", None)
    monkeypatch.setitem(bln_kernel._state, "reason", None)
    assert bln_kernel.kernel() is None
    assert bln_kernel.ENV_SWITCH in bln_kernel.unavailable_reason()
    assert bln_kernel.status().startswith("eager (")
    monkeypatch.setitem(bln_kernel._state, "tried", False)
    assert bln_kernel.describe() == "eager (NORMBENCH_BLN_KERNEL=eager)"


def test_a_failed_build_warns_once_and_bln_trains_on_the_eager_kernel(monkeypatch):
    def no_compiler():
        raise RuntimeError("Ninja is required to load C++ extensions")

    monkeypatch.delenv(bln_kernel.ENV_SWITCH, raising=False)
    monkeypatch.setattr(bln_kernel, "_build", no_compiler)
    for key, value in {"tried": False, "module": None, "reason": None}.items():
        monkeypatch.setitem(bln_kernel._state, key, value)
    x = torch.randn(5, 3, 7, dtype=torch.float64)
    with pytest.warns(RuntimeWarning, match="Ninja is required"):
        y = create_norm("bln", 3).double()(x)
    assert "Ninja is required" in bln_kernel.unavailable_reason()
    # the eager result: normalized over N per (c, p) and over C per (n, p), mixed
    m, c = 5, 3
    wf, wb = (1 / m - 1e-4) / c**0.5, (1 - 1 / m - 1e-4) / c**0.5
    xb = (x - x.mean(0)) / (x.var(0, unbiased=False) + 1e-3).sqrt()
    xf = (x - x.mean(1, keepdim=True)) / (x.var(1, unbiased=False, keepdim=True) + 1e-3).sqrt()
    torch.testing.assert_close(y, wf * xf + wb * xb)
    create_norm("bln", 3)(x.float())  # tried once: no second warning (pytest would not fail on one,
    assert bln_kernel._state["tried"]  # but the state says the build is not attempted again)


def test_ill_conditioned_statistics_are_recomputed_exactly(kernel, monkeypatch):
    """A mean 10^4 standard deviations from 0 flags the kernel's E[x^2] - E[x]^2; the factors are then
    recomputed with exact variances, and the variance matches float64."""
    calls = []
    exact = fused._exact_factors
    monkeypatch.setattr(fused, "_exact_factors", lambda *a: calls.append(1) or exact(*a))
    x = torch.randn(16, 8, 40, generator=torch.Generator().manual_seed(5)) + 1e4
    layer = create_norm("bln", 8)
    layer(x)
    assert calls == [1]
    torch.testing.assert_close(layer.running_batch_var.double(), x.double().var(0), rtol=1e-4, atol=0)
    layer(x - 1e4)  # well-conditioned: the kernel's own factors
    assert calls == [1]


def test_parameter_gradients_without_an_input_gradient_match_the_eager_kernel(kernel, monkeypatch):
    """The input-gradient pass also yields gamma's feature part: it still runs when only the
    parameters need gradients (BLN as the first layer, on data that needs none)."""
    gen = torch.Generator().manual_seed(8)
    x, dy = torch.randn(6, 5, 40, generator=gen, dtype=torch.float64), torch.randn(6, 5, 40, generator=gen, dtype=torch.float64)
    grads = []
    for mode in ("eager", "fused"):
        with monkeypatch.context() as patch:
            if mode == "eager":
                _eager(patch)
            gamma = (torch.rand(5, generator=torch.Generator().manual_seed(1), dtype=torch.float64) + 0.5).requires_grad_()
            beta = torch.zeros(5, dtype=torch.float64, requires_grad=True)
            y = BatchLayerNormTrain.apply(x, None, gamma, beta, False, 0.07, 0.6, 1e-3)[0]
            y.backward(dy)
            grads.append((gamma.grad, beta.grad))
    for eager, fused_grad in zip(*grads):
        torch.testing.assert_close(fused_grad, eager, rtol=1e-10, atol=1e-10)
    assert grads[0][0].abs().max() > 0.1  # a real gradient, not two zeros
