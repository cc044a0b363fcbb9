"""mnist1d and mnist1d_varlen: sizes, agreement with the package's generator, seeding, masks, no network.

Generating the default 5,000 samples takes ~1.5 s (plus ~1.5 s to import the package) and is
cached per process, so only the first test that asks for the defaults pays for it; tests that need
fresh generation use a few hundred samples.
"""

from __future__ import annotations

import random
import socket
import urllib.request

import numpy as np
import pytest
import torch

from normbench.data import load_dataset
from normbench.data.mnist1d import generate_mnist1d


def _package_dataset(seed: int, num_samples: int) -> dict:
    """The package's own output for these arguments, generated here without normbench."""
    import mnist1d.data

    args = mnist1d.data.get_dataset_args()
    args.seed, args.num_samples = seed, num_samples
    state = np.random.get_state(), random.getstate()
    try:
        return mnist1d.data.make_dataset(args)
    finally:
        np.random.set_state(state[0])
        random.setstate(state[1])


@pytest.mark.slow
def test_default_sizes_shapes_and_dtypes():
    ds = load_dataset("mnist1d")
    assert ds.name == "mnist1d" and ds.num_classes == 10 and ds.input_shape == (1, 40)
    assert ds.x_train.shape == (4000, 1, 40) and ds.x_test.shape == (1000, 1, 40)
    assert ds.x_train.dtype == torch.float32 and ds.y_train.dtype == torch.int64
    assert ds.task == "classification" and ds.mask_train is None
    assert set(ds.y_train.tolist()) == set(range(10)) and set(ds.y_test.tolist()) == set(range(10))
    assert "4000 train / 1000 test" in ds.description and "seed 42" in ds.description


def test_train_set_is_standardized():
    x = load_dataset("mnist1d").x_train.double()
    assert abs(x.mean().item()) < 1e-6 and abs(x.std(unbiased=False).item() - 1) < 1e-6


@pytest.mark.parametrize("seed", [42, 7])
def test_matches_the_package_generator_standardized_with_train_statistics(seed):
    ds = load_dataset("mnist1d", split_seed=seed, num_samples=300)
    reference = _package_dataset(seed, 300)
    mean, std = reference["x"].mean(), reference["x"].std()
    assert np.allclose(ds.x_train[:, 0].numpy(), (reference["x"] - mean) / std, atol=1e-5)
    assert np.allclose(ds.x_test[:, 0].numpy(), (reference["x_test"] - mean) / std, atol=1e-5)
    assert np.array_equal(ds.y_train.numpy(), reference["y"])
    assert np.array_equal(ds.y_test.numpy(), reference["y_test"])
    assert (ds.n_train, ds.n_test) == (240, 60)


def test_generation_never_touches_the_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    import requests

    monkeypatch.setattr(requests, "get", refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    # options no other test uses, so the arrays are generated under the patches, not taken from the cache
    ds = load_dataset("mnist1d", split_seed=3, num_samples=110)
    assert ds.n_train == 88


def test_split_depends_on_split_seed_only():
    torch.manual_seed(0)
    np.random.seed(0)
    a = generate_mnist1d.__wrapped__(5, 200)  # bypass the cache: two real generations
    torch.manual_seed(1)
    np.random.seed(1)
    random.seed(1)
    b = generate_mnist1d.__wrapped__(5, 200)
    for x, y in zip(a, b):
        assert np.array_equal(x, y)
    c = generate_mnist1d.__wrapped__(6, 200)
    assert not np.array_equal(a[0], c[0])
    first = load_dataset("mnist1d", split_seed=5, num_samples=200)
    again = load_dataset("mnist1d", split_seed=5, num_samples=200)
    assert torch.equal(first.x_train, again.x_train) and torch.equal(first.y_test, again.y_test)


def test_generation_restores_the_global_rngs():
    torch.manual_seed(0)
    np.random.seed(0)
    random.seed(0)
    generate_mnist1d.__wrapped__(11, 100)  # a real generation, not a cache hit
    after = torch.rand(1), np.random.rand(), random.random()
    torch.manual_seed(0)
    np.random.seed(0)
    random.seed(0)
    assert after == (torch.rand(1), np.random.rand(), random.random())


def test_each_call_returns_fresh_tensors():
    a = load_dataset("mnist1d", num_samples=100)
    a.x_train.zero_()
    a.y_train.fill_(-1)
    b = load_dataset("mnist1d", num_samples=100)
    assert b.x_train.abs().sum() > 0 and (b.y_train >= 0).all()


def test_varlen_masks_lengths_and_padding():
    ds = load_dataset("mnist1d_varlen", min_length=20)
    full = load_dataset("mnist1d")
    assert ds.name == "mnist1d_varlen" and ds.input_shape == (1, 40) and ds.num_classes == 10
    assert torch.equal(ds.y_train, full.y_train) and torch.equal(ds.y_test, full.y_test)
    for x, mask in ((ds.x_train, ds.mask_train), (ds.x_test, ds.mask_test)):
        assert mask.dtype == torch.bool and mask.shape == (x.shape[0], 40)
        lengths = mask.sum(dim=1)
        assert lengths.min() >= 20 and lengths.max() <= 40
        assert len(set(lengths.tolist())) > 15  # drawn over the range, not a constant
        # the valid positions are a prefix: the mask equals arange(40) < length
        assert torch.equal(mask, torch.arange(40)[None, :] < lengths[:, None])
        assert (x[:, 0][~mask] == 0).all()


def test_varlen_values_are_the_sequence_start_standardized_over_valid_train_positions():
    ds = load_dataset("mnist1d_varlen", min_length=10, split_seed=42, num_samples=300)
    reference = _package_dataset(42, 300)
    mask = ds.mask_train.numpy()
    valid = reference["x"][mask]
    mean, std = valid.mean(), valid.std()
    assert np.allclose(ds.x_train[:, 0].numpy(), np.where(mask, (reference["x"] - mean) / std, 0), atol=1e-5)
    test_mask = ds.mask_test.numpy()
    assert np.allclose(ds.x_test[:, 0].numpy(), np.where(test_mask, (reference["x_test"] - mean) / std, 0), atol=1e-5)


def test_varlen_lengths_are_seeded_by_split_seed():
    a = load_dataset("mnist1d_varlen", split_seed=1, num_samples=200)
    b = load_dataset("mnist1d_varlen", split_seed=1, num_samples=200)
    c = load_dataset("mnist1d_varlen", split_seed=2, num_samples=200)
    assert torch.equal(a.mask_train, b.mask_train) and torch.equal(a.mask_test, b.mask_test)
    assert not torch.equal(a.mask_train, c.mask_train)


def test_varlen_min_length_40_keeps_every_sequence_whole():
    ds = load_dataset("mnist1d_varlen", min_length=40, num_samples=100)
    assert ds.mask_train.all() and ds.mask_test.all()


@pytest.mark.parametrize(
    "name, options, message",
    [
        ("mnist1d", {"split_seed": -1}, r"option 'split_seed' must be an integer in \[0, 2\*\*32\)"),
        ("mnist1d", {"split_seed": 2**32}, r"option 'split_seed' must be an integer"),
        ("mnist1d", {"num_samples": 19}, r"option 'num_samples' must be an integer >= 20; got 19"),
        ("mnist1d", {"num_samples": True}, r"option 'num_samples' must be an integer"),
        ("mnist1d_varlen", {"min_length": 0}, r"option 'min_length' must be an integer \[1, 40\]; got 0"),
        ("mnist1d_varlen", {"min_length": 41}, r"option 'min_length' must be an integer \[1, 40\]"),
    ],
)
def test_bad_option_values(name, options, message):
    with pytest.raises(ValueError, match=rf"dataset '{name}': " + message):
        load_dataset(name, **options)
