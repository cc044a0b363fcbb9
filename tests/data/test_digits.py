"""digits: sizes, stratification, train-only standardization, and a split that depends on split_seed only."""

from __future__ import annotations

import numpy as np
import pytest
import sklearn.datasets
import torch

from normbench.data import load_dataset
from normbench.data.digits import STD_FLOOR, stratified_split


def test_sizes_shapes_and_dtypes():
    ds = load_dataset("digits")
    assert ds.name == "digits"
    assert ds.n_train + ds.n_test == 1797
    assert (ds.n_train, ds.n_test) == (1347, 450)
    assert ds.x_train.shape == (1347, 1, 8, 8) and ds.x_test.shape == (450, 1, 8, 8)
    assert ds.x_train.dtype == ds.x_test.dtype == torch.float32
    assert ds.y_train.dtype == ds.y_test.dtype == torch.int64
    assert ds.num_classes == 10 and ds.input_shape == (1, 8, 8)
    assert ds.mask_train is None and ds.mask_test is None
    assert set(ds.y_train.tolist()) == set(range(10))
    assert "scikit-learn digits" in ds.description and "1347 train / 450 test" in ds.description
    assert "\n" not in ds.description


@pytest.mark.parametrize("test_fraction, split_seed", [(0.25, 0), (0.25, 11), (0.5, 3), (0.1, 0)])
def test_split_is_stratified(test_fraction, split_seed):
    ds = load_dataset("digits", test_fraction=test_fraction, split_seed=split_seed)
    totals = np.bincount(sklearn.datasets.load_digits().target, minlength=10)
    train_counts = np.bincount(ds.y_train.numpy(), minlength=10)
    test_counts = np.bincount(ds.y_test.numpy(), minlength=10)
    assert np.array_equal(train_counts + test_counts, totals)
    assert np.all(np.abs(test_counts - totals * test_fraction) <= 1)
    assert np.all(np.abs(train_counts - totals * (1 - test_fraction)) <= 1)


def test_train_set_is_standardized_per_pixel():
    x = load_dataset("digits").x_train.double().numpy().reshape(-1, 64)
    assert np.allclose(x.mean(axis=0), 0.0, atol=1e-6)
    std = x.std(axis=0)
    # unit variance except where the training std fell below the floor (scaled by the floor instead)
    raw_std = _raw_train_images(0.25, 0).reshape(-1, 64).std(axis=0)
    floored = raw_std < STD_FLOOR
    assert floored.any() and not floored.all()
    assert np.allclose(std[~floored], 1.0, atol=1e-5)
    assert np.allclose(std[floored], raw_std[floored] / STD_FLOOR, atol=1e-5)
    assert np.isfinite(x).all()


def _raw_train_images(test_fraction, split_seed):
    bunch = sklearn.datasets.load_digits()
    train_index, _ = stratified_split(bunch.target, test_fraction, split_seed)
    return bunch.images[train_index]


@pytest.mark.parametrize("split_seed", [0, 5])
def test_both_splits_use_train_statistics_only(split_seed):
    ds = load_dataset("digits", split_seed=split_seed)
    bunch = sklearn.datasets.load_digits()
    train_index, test_index = stratified_split(bunch.target, 0.25, split_seed)
    train, test = bunch.images[train_index], bunch.images[test_index]
    mean = train.mean(axis=0)
    std = np.maximum(train.std(axis=0), STD_FLOOR)
    assert np.allclose(ds.x_train[:, 0].numpy(), (train - mean) / std, atol=1e-5)
    assert np.allclose(ds.x_test[:, 0].numpy(), (test - mean) / std, atol=1e-5)
    assert np.array_equal(ds.y_train.numpy(), bunch.target[train_index])
    assert np.array_equal(ds.y_test.numpy(), bunch.target[test_index])
    # the test set's own statistics were not used: its per-pixel mean is not exactly zero
    assert np.abs(ds.x_test.double().numpy().reshape(-1, 64).mean(axis=0)).max() > 1e-3


def test_split_depends_on_split_seed_only():
    torch.manual_seed(0)
    np.random.seed(0)
    a = load_dataset("digits", split_seed=3)
    torch.manual_seed(99)
    np.random.seed(99)
    torch.rand(10)
    np.random.rand(10)
    b = load_dataset("digits", split_seed=3)
    for field in ("x_train", "y_train", "x_test", "y_test"):
        assert torch.equal(getattr(a, field), getattr(b, field)), field
    c = load_dataset("digits", split_seed=4)
    assert not torch.equal(a.y_train, c.y_train)


def test_loading_does_not_touch_the_global_rngs():
    torch.manual_seed(0)
    np.random.seed(0)
    load_dataset("digits", split_seed=7)
    after_torch, after_numpy = torch.rand(1), np.random.rand()
    torch.manual_seed(0)
    np.random.seed(0)
    assert torch.equal(torch.rand(1), after_torch) and np.random.rand() == after_numpy


def test_each_call_returns_fresh_tensors():
    a = load_dataset("digits")
    a.x_train.zero_()
    a.y_test.fill_(-1)
    b = load_dataset("digits")
    assert b.x_train.abs().sum() > 0 and (b.y_test >= 0).all()


@pytest.mark.parametrize(
    "options, message",
    [
        ({"test_fraction": 0}, r"option 'test_fraction' must be a number in \(0, 1\); got 0"),
        ({"test_fraction": 1.0}, r"option 'test_fraction' must be a number in \(0, 1\)"),
        ({"test_fraction": "0.2"}, r"option 'test_fraction' must be a number in \(0, 1\)"),
        ({"test_fraction": 0.001}, r"option 'test_fraction' 0.001: .*number of classes"),
        ({"split_seed": -1}, r"option 'split_seed' must be an integer in \[0, 2\*\*32\)"),
        ({"split_seed": 1.5}, r"option 'split_seed' must be an integer"),
        ({"split_seed": True}, r"option 'split_seed' must be an integer"),
    ],
)
def test_bad_option_values_name_the_option(options, message):
    with pytest.raises(ValueError, match=r"dataset 'digits': " + message):
        load_dataset("digits", **options)
