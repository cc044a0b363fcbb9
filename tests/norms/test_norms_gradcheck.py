"""``torch.autograd.gradcheck`` in float64 for every layer that is not a thin wrapper of a torch op.

The hand-derived backwards (``MomentNorm`` behind masked BN, ghost BN, masked LN/IN/GN, RMSNorm
and batch renorm; ``BatchLayerNormTrain`` behind BLN) are compared with finite differences, for the
input and for gamma/beta. Running estimates are restored before every call, so that repeated
forwards inside gradcheck see the same layer state (batch renorm's r and d depend on it).
"""

from __future__ import annotations

import pytest
import torch

from normbench.norms import create_norm
from normbench.norms.batch_layer_function import BatchLayerNormTrain, batch_layer_norm_rows
from normbench.norms.full import normalize_with_moments
from normbench.norms.moments import moment_norm


def _inputs(shape, seed=0, masked=False):
    gen = torch.Generator().manual_seed(seed)
    x = (torch.randn(shape, generator=gen, dtype=torch.float64) * 1.5 + 0.3).requires_grad_(True)
    mask = None
    if masked:
        mask = torch.rand((shape[0],) + tuple(shape[2:]), generator=gen) > 0.35
        mask.reshape(shape[0], -1)[:, :2] = True  # every sample keeps two valid positions
    return x, mask


def _check_module(module, x, mask):
    """gradcheck wrt x, gamma and beta; each call gets fresh copies of the layer's buffers."""
    module = module.double()
    with torch.no_grad():  # non-trivial affine parameters
        for name, p in module.named_parameters():
            low, high = (0.5, 1.5) if name == "weight" else (-0.5, 0.5)
            p.uniform_(low, high, generator=torch.Generator().manual_seed(len(name)))
    names = [n for n, _ in module.named_parameters()]
    buffers = {n: b.detach().clone() for n, b in module.named_buffers()}

    def call(x_, *params):
        state = {n: b.clone() for n, b in buffers.items()}
        state.update(zip(names, params))
        return torch.func.functional_call(module, state, (x_, mask))

    leaves = tuple(p.detach().clone().requires_grad_(True) for p in module.parameters())
    assert torch.autograd.gradcheck(call, (x,) + leaves, eps=1e-6, atol=1e-6)


CASES = {
    "bln": ("batch_layer", {}, (4, 3, 5)),
    "bln-pooled": ("batch_layer", {"pooled": True}, (4, 3, 2, 3)),
    "bln-no-affine": ("batch_layer", {"affine": False}, (5, 3)),
    "bln-offset0-no-sqrt": ("batch_layer", {"offset": 0.0, "divide_by_sqrt_channels": False}, (4, 3, 5)),
    "bln-offset-large": ("batch_layer", {"offset": 0.2, "pooled": True}, (4, 3, 5)),
    "bn-masked": ("batch", {}, (4, 3, 6)),
    "bn-keras-masked": ("batch", {"convention": "keras"}, (4, 3, 2, 3)),
    "bn-ghost": ("batch", {"ghost_batch_size": 2}, (4, 3, 5)),
    "renorm": ("batch_renorm", {"warmup_steps": 0, "r_max_steps": 1, "d_max_steps": 1, "r_max": 1.2, "d_max": 0.1}, (4, 3, 5)),
    "layer": ("layer", {}, (3, 3, 5)),
    "instance": ("instance", {}, (3, 3, 5)),
    "group": ("group", {"num_groups": 3}, (3, 6, 4)),
    "rms": ("rms", {"bias": True}, (3, 3, 5)),
    # FN: restored buffers make every call the first batch (rate 1), where FN's gradient is the
    # derivative of its output; later batches are checked against the compositional gradient below
    "full-first-batch": ("full", {}, (4, 3, 5)),
    "full-momentum-1": ("full", {"momentum": 1.0, "eps": 1e-3}, (5, 3)),
    "weight-mean-only": ("weight", {"mean_only_bn": True}, (4, 3, 5)),
    "rms-per-position": ("rms", {"per_position": True}, (3, 3, 5)),
}


BLN_CASES = [case for case, (name, _, _) in CASES.items() if name == "batch_layer"]


@pytest.mark.parametrize("masked", [False, True], ids=["dense", "masked"])
@pytest.mark.parametrize("case", BLN_CASES)
def test_gradcheck_bln_training_mode(case, masked, bln_kernel_mode):
    """BLN's layer through both of its (N, C, P) kernels (the fused one takes the dense cases)."""
    test_gradcheck_training_mode(case, masked)


@pytest.mark.parametrize("masked", [False, True], ids=["dense", "masked"])
@pytest.mark.parametrize("case", [case for case in CASES if case not in BLN_CASES])
def test_gradcheck_training_mode(case, masked):
    name, options, shape = CASES[case]
    module = create_norm(name, shape[1], **options).train()
    if name == "batch_renorm":
        # move the running estimates away from (0, 1) so that r and d clip
        with torch.no_grad():
            module.running_mean.fill_(0.8)
            module.running_std.fill_(0.5)
    x, mask = _inputs(shape, seed=len(case), masked=masked)
    _check_module(module, x, mask)


@pytest.mark.parametrize(
    "flags,variant",
    [
        ((True, True, False, False), {}),
        ((False, False, False, False), {}),
        ((False, True, True, False), {}),
        ((True, True, False, False), {"offset": 0.0, "divide_by_sqrt_channels": False}),
    ],
)
def test_gradcheck_batch_layer_eval(flags, variant):
    module = create_norm(
        "bln", 3, batch_moving_mean=flags[0], batch_moving_var=flags[1],
        feature_moving_mean=flags[2], feature_moving_var=flags[3], **variant,
    ).double()
    x, mask = _inputs((5, 3, 4), seed=9, masked=True)
    module.train()
    with torch.no_grad():
        module(x * 2, mask)
    module.eval()
    _check_module(module, x, mask)


@pytest.mark.parametrize("pooled", [False, True])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("affine", [True, False])
def test_gradcheck_bln_function(pooled, masked, affine, bln_kernel_mode):
    """Both (N, C, P) kernels (fused, eager) against finite differences, for x, gamma and beta."""
    x, mask = _inputs((5, 3, 4), seed=3, masked=masked)
    weights = None if mask is None else mask.reshape(5, 1, 4).double()
    gen = torch.Generator().manual_seed(4)
    gamma = (torch.rand(3, generator=gen, dtype=torch.float64) + 0.5).requires_grad_(True)
    beta = torch.randn(3, generator=gen, dtype=torch.float64).requires_grad_(True)
    if affine:
        fn = lambda x_, g_, b_: BatchLayerNormTrain.apply(x_, weights, g_, b_, pooled, 0.3, 0.5, 1e-3)[0]  # noqa: E731
        assert torch.autograd.gradcheck(fn, (x, gamma, beta), eps=1e-6, atol=1e-6)
    else:
        bare = lambda x_: BatchLayerNormTrain.apply(x_, weights, None, None, pooled, 0.3, 0.5, 1e-3)[0]  # noqa: E731
        assert torch.autograd.gradcheck(bare, (x,), eps=1e-6, atol=1e-6)


def test_gradcheck_bln_rows():
    """torch's BN and LN kernels, composed for (N, C) input, against finite differences."""
    x, _ = _inputs((6, 4), seed=5)
    gen = torch.Generator().manual_seed(6)
    gamma = (torch.rand(4, generator=gen, dtype=torch.float64) + 0.5).requires_grad_(True)
    beta = torch.randn(4, generator=gen, dtype=torch.float64).requires_grad_(True)
    fn = lambda x_, g_, b_: batch_layer_norm_rows(x_, g_, b_, None, None, 0.0, 0.3, 0.5, 1e-3)[0]  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, gamma, beta), eps=1e-6, atol=1e-6)
    no_affine = lambda x_: batch_layer_norm_rows(x_, None, None, None, None, 0.0, 0.3, 0.5, 1e-3)[0]  # noqa: E731
    assert torch.autograd.gradcheck(no_affine, (x,), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("center", [True, False])
@pytest.mark.parametrize("dims", [(0, 2), (1, 2), (2,), (1,)])
def test_gradcheck_moment_norm_function(dims, center):
    x, mask = _inputs((4, 3, 5), seed=5, masked=True)
    weights = mask.reshape(4, 1, 5).double()
    gen = torch.Generator().manual_seed(6)
    gamma = (torch.rand(1, 3, 1, generator=gen, dtype=torch.float64) + 0.5).requires_grad_(True)
    beta = torch.randn(1, 3, 1, generator=gen, dtype=torch.float64).requires_grad_(True)
    fn = lambda x_, g_, b_: moment_norm(x_, dims, weights=weights, gamma=g_, beta=b_, eps=1e-5, center=center)[0]  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, gamma, beta), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("masked", [False, True], ids=["dense", "masked"])
@pytest.mark.parametrize("options", [{"inference_weight": 0.3}, {"inference_weight": 1.0, "convention": "keras"}])
def test_gradcheck_batch_norm_with_inference_weight_in_eval(options, masked):
    module = create_norm("batch", 3, **options).double()
    x, mask = _inputs((5, 3, 4), seed=12, masked=masked)
    with torch.no_grad():
        module.train()(x * 1.7 + 0.4, mask)
    module.eval()
    _check_module(module, x, mask)


def test_gradcheck_full_norm_outer_function():
    """FN's normalization as a function of the input and of both moments (its outer function)."""
    gen = torch.Generator().manual_seed(13)
    x = torch.randn(4, 3, 5, generator=gen, dtype=torch.float64).requires_grad_(True)
    mean = (torch.randn(3, generator=gen, dtype=torch.float64) * 0.3).requires_grad_(True)
    second = (mean.detach() ** 2 + torch.rand(3, generator=gen, dtype=torch.float64) + 0.5).requires_grad_(True)
    gamma = (torch.rand(3, generator=gen, dtype=torch.float64) + 0.5).requires_grad_(True)
    beta = torch.randn(3, generator=gen, dtype=torch.float64).requires_grad_(True)
    fn = lambda *a: normalize_with_moments(a[0], a[1], a[2], 1e-5, a[3], a[4])  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, mean, second, gamma, beta), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("masked", [False, True], ids=["dense", "masked"])
def test_gradcheck_full_norm_estimate_gradient_after_some_batches(masked):
    """With ``gradient: estimate`` the backward is the derivative of the forward, updates included,
    at any batch (here the third, rate = momentum)."""
    module = create_norm("full", 3, momentum=0.4, gradient="estimate").double().train()
    x, mask = _inputs((5, 3, 4), seed=14, masked=masked)
    with torch.no_grad():
        module(x * 2 + 1, mask)
        module(x - 0.5, mask)
    _check_module(module, x, mask)
