"""Every norm against its independent NumPy float64 definition: all layouts, train and eval, masks.

Each case runs three training steps (so running/population estimates accumulate), comparing the
output after every step, then one eval step on a batch of a different size. Tolerance 1e-5.
"""

from __future__ import annotations

import zlib

import norm_reference as ref
import numpy as np
import pytest
import torch
from norm_cases import LAYOUTS, C, random_input, random_mask, randomize_affine, to_torch

from normbench.norms import create_norm

TOL = 1e-5


class Stateless:
    """Adapter: a reference function that behaves the same in train and eval."""

    def __init__(self, fn):
        self.fn = fn

    def train(self, x, mask, gamma, beta):
        return self.fn(x, mask, gamma, beta)

    eval = train


class InstanceTracked:
    """IN with running estimates: instance statistics in training, running ones in eval."""

    def __init__(self):
        self.running = ref.RefInstanceRunning(C)

    def train(self, x, mask, gamma, beta):
        out = ref.instance_norm(x, mask, gamma, beta)
        self.running.update(x, mask)
        return out

    def eval(self, x, mask, gamma, beta):
        return ref.instance_norm(x, mask, gamma, beta, running=(self.running.mean, self.running.var))


def identity(x, mask, gamma, beta):
    X, M = ref.as_ncp(x, mask)
    return ref.finish(X, M, x.shape)


RENORM = dict(momentum=0.3, r_max=1.5, d_max=0.5, warmup_steps=1, r_max_steps=3, d_max_steps=2)

# name, options, reference factory, needs a spatial axis
CASES = {
    "none": ("none", {}, lambda: Stateless(identity), False),
    "batch": ("batch", {}, lambda: ref.RefBatchNorm(C), False),
    "batch-cumulative": ("batch", {"momentum": None}, lambda: ref.RefBatchNorm(C, momentum=None), False),
    "batch-keras": ("batch", {"convention": "keras"}, lambda: ref.RefBatchNorm(C, convention="keras"), False),
    "batch-ghost": ("batch", {"ghost_batch_size": 2}, lambda: ref.RefBatchNorm(C, ghost=2), False),
    "batch-untracked": (
        "batch", {"track_running_stats": False}, lambda: ref.RefBatchNorm(C, track=False), False,
    ),
    "layer": ("layer", {}, lambda: Stateless(ref.layer_norm), False),
    "layer-per-position": (
        "layer", {"per_position": True},
        lambda: Stateless(lambda x, m, g, b: ref.layer_norm(x, m, g, b, per_position=True)), False,
    ),
    "instance": ("instance", {}, lambda: Stateless(ref.instance_norm), True),
    "instance-tracked": ("instance", {"track_running_stats": True}, InstanceTracked, True),
    "group": (
        "group", {"num_groups": 2}, lambda: Stateless(lambda x, m, g, b: ref.group_norm(x, 2, m, g, b)),
        False,
    ),
    "group-per-channel": (
        "group", {"channels_per_group": 1},
        lambda: Stateless(lambda x, m, g, b: ref.group_norm(x, C, m, g, b)), False,
    ),
    "batch_layer": ("batch_layer", {}, lambda: ref.RefBatchLayerNorm(C), False),
    "batch_layer-pooled": ("batch_layer", {"pooled": True}, lambda: ref.RefBatchLayerNorm(C, pooled=True), False),
    "batch_layer-current": (
        "batch_layer", {"batch_moving_mean": False, "batch_moving_var": False},
        lambda: ref.RefBatchLayerNorm(C, flags=(False, False, False, False)), False,
    ),
    "batch_layer-mixed": (
        "batch_layer",
        {"batch_moving_var": False, "feature_moving_mean": True, "feature_moving_var": True},
        lambda: ref.RefBatchLayerNorm(C, flags=(True, False, True, True)), False,
    ),
    "batch_layer-offset0": (
        "batch_layer", {"offset": 0.0}, lambda: ref.RefBatchLayerNorm(C, offset=0.0), False,
    ),
    "batch_layer-no-sqrt": (
        "batch_layer", {"divide_by_sqrt_channels": False},
        lambda: ref.RefBatchLayerNorm(C, divide_by_sqrt_channels=False), False,
    ),
    "batch_layer-paper": (
        "batch_layer", {"offset": 0.0, "divide_by_sqrt_channels": False, "pooled": True},
        lambda: ref.RefBatchLayerNorm(C, pooled=True, offset=0.0, divide_by_sqrt_channels=False), False,
    ),
    "batch_renorm": (
        "batch_renorm", RENORM,
        lambda: ref.RefBatchRenorm(C, momentum=0.3, r_max=1.5, d_max=0.5, warmup=1, r_steps=3, d_steps=2),
        False,
    ),
    "batch-inference-weight": (
        "batch", {"inference_weight": 0.3}, lambda: ref.RefBatchNormWeighted(C, 0.3), False,
    ),
    "batch-keras-inference-weight": (
        "batch", {"inference_weight": 0.5, "convention": "keras"},
        lambda: ref.RefBatchNormWeighted(C, 0.5, convention="keras"), False,
    ),
    "full": ("full", {}, lambda: ref.RefFullNorm(C), False),
    "full-momentum": ("full", {"momentum": 0.6, "eps": 1e-3}, lambda: ref.RefFullNorm(C, eps=1e-3, momentum=0.6), False),
    "full-cumulative": ("full", {"momentum": None}, lambda: ref.RefFullNorm(C, momentum=None), False),
    "full-estimate-gradient": ("full", {"gradient": "estimate"}, lambda: ref.RefFullNorm(C), False),
    "weight": ("weight", {}, lambda: Stateless(identity), False),
    "weight-mean-only": ("weight", {"mean_only_bn": True}, lambda: ref.RefMeanOnlyBatchNorm(C), False),
    "rms": ("rms", {}, lambda: Stateless(ref.rms_norm), False),
    "rms-per-position-bias": (
        "rms", {"per_position": True, "bias": True},
        lambda: Stateless(lambda x, m, g, b: ref.rms_norm(x, m, g, b, per_position=True)), False,
    ),
}


def _mask_for(case: str, shape, rng) -> np.ndarray:
    mask = random_mask(shape, rng)
    if case == "batch-ghost" and len(shape) == 2:
        # each ghost batch of 2 samples needs both samples to have a value per channel
        mask[:] = True
    return mask


@pytest.mark.parametrize("masked", [False, True], ids=["dense", "masked"])
@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("case", list(CASES))
def test_matches_numpy_definition(case, layout, masked):
    name, options, make_ref, spatial_only = CASES[case]
    shape = LAYOUTS[layout]
    if spatial_only and len(shape) == 2:
        pytest.skip("instance norm is undefined on (N, C); tested in test_norms_errors")
    rng = np.random.default_rng(zlib.crc32(f"{case}|{layout}|{masked}".encode()))
    module = create_norm(name, C, **options).double()
    gamma, beta = randomize_affine(module, rng)
    reference = make_ref()

    module.train()
    for step in range(3):
        x = random_input(shape, rng)
        mask = _mask_for(case, shape, rng) if masked else None
        got = module(to_torch(x), to_torch(mask)).detach().numpy()
        want = reference.train(x, mask, gamma, beta)
        np.testing.assert_allclose(got, want, atol=TOL, rtol=TOL, err_msg=f"train step {step}")
        _assert_same_estimates(module, reference)

    module.eval()
    eval_shape = (shape[0] + 2,) + shape[1:]  # a different batch size than in training
    x = random_input(eval_shape, rng)
    mask = random_mask(eval_shape, rng) if masked else None
    got = module(to_torch(x), to_torch(mask)).detach().numpy()
    np.testing.assert_allclose(got, reference.eval(x, mask, gamma, beta), atol=TOL, rtol=TOL, err_msg="eval")


def _assert_same_estimates(module, reference) -> None:
    """The layer's running estimates equal the reference's (the norms that keep some)."""
    pairs = []
    if isinstance(reference, ref.RefBatchNorm) and reference.track:
        pairs = [(module.running_mean, reference.mean), (module.running_var, reference.var)]
    elif isinstance(reference, ref.RefFullNorm):
        mean, second = reference.estimates()
        pairs = [(module.running_mean, mean), (module.running_second_moment, second)]
    elif isinstance(reference, ref.RefMeanOnlyBatchNorm):
        pairs = [(module.running_mean, reference.mean)]
    for got, want in pairs:
        np.testing.assert_allclose(got.numpy(), want, atol=TOL, rtol=TOL)


def _compact_batch(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """All valid (sample, position) entries of x as a (K, C) batch."""
    moved = np.moveaxis(x, 1, -1)  # (N, *spatial, C)
    return moved[mask]


@pytest.mark.parametrize("layout", ["NC", "NCL", "NCHW", "NCDHW"])
@pytest.mark.parametrize("options", [{}, {"convention": "keras"}, {"momentum": None}], ids=["torch", "keras", "cma"])
def test_masked_batch_norm_equals_batch_norm_on_valid_positions_alone(layout, options):
    rng = np.random.default_rng(7)
    shape = LAYOUTS[layout]
    masked_bn = create_norm("batch", C, **options).double()
    alone_bn = create_norm("batch", C, **options).double()
    for _ in range(3):
        x, mask = random_input(shape, rng), random_mask(shape, rng)
        y = masked_bn(to_torch(x), to_torch(mask)).detach().numpy()
        y_alone = alone_bn(to_torch(_compact_batch(x, mask))).detach().numpy()
        np.testing.assert_allclose(_compact_batch(y, mask), y_alone, atol=TOL, rtol=TOL)
        assert np.all(np.moveaxis(y, 1, -1)[~mask] == 0)
    torch.testing.assert_close(masked_bn.running_mean, alone_bn.running_mean, atol=TOL, rtol=TOL)
    torch.testing.assert_close(masked_bn.running_var, alone_bn.running_var, atol=TOL, rtol=TOL)


@pytest.mark.parametrize(
    "name,options",
    [("layer", {}), ("instance", {}), ("group", {"num_groups": 2}), ("rms", {}), ("layer", {"per_position": True})],
    ids=["layer", "instance", "group", "rms", "layer-per-position"],
)
@pytest.mark.parametrize("layout", ["NCL", "NCHW", "NCDHW"])
def test_per_sample_masked_equals_unmasked_on_valid_positions_alone(name, options, layout):
    rng = np.random.default_rng(11)
    shape = LAYOUTS[layout]
    module = create_norm(name, C, **options).double()
    randomize_affine(module, rng)
    x, mask = random_input(shape, rng), random_mask(shape, rng)
    y = module(to_torch(x), to_torch(mask)).detach().numpy()
    for i in range(shape[0]):
        valid = x[i].reshape(C, -1)[:, mask[i].reshape(-1)]  # (C, K): sample i's valid positions
        y_alone = module(to_torch(valid[None])).detach().numpy()[0]
        np.testing.assert_allclose(y[i].reshape(C, -1)[:, mask[i].reshape(-1)], y_alone, atol=TOL, rtol=TOL)


def test_batch_layer_masked_equals_unmasked_when_padding_is_whole_positions():
    """Padding every sample at the same positions = BLN (per position) on the other positions."""
    rng = np.random.default_rng(5)
    x = random_input((5, C, 9), rng)
    keep = np.array([1, 1, 0, 1, 0, 1, 1, 1, 0], dtype=bool)
    mask = np.tile(keep, (5, 1))
    masked, alone = create_norm("bln", C).double(), create_norm("bln", C).double()
    y = masked(to_torch(x), to_torch(mask)).detach().numpy()
    y_alone = alone(to_torch(x[:, :, keep])).detach().numpy()
    np.testing.assert_allclose(y[:, :, keep], y_alone, atol=TOL, rtol=TOL)
    assert np.all(y[:, :, ~keep] == 0)
