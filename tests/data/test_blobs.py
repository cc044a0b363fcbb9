"""blobs: flat (N, F) features, stratified split, train-only per-feature standardization, seeding."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import make_blobs

from normbench.data import load_dataset
from normbench.data.digits import stratified_split


def test_default_shapes_and_fields():
    ds = load_dataset("blobs")
    assert ds.name == "blobs" and ds.task == "classification" and ds.num_classes == 10
    assert ds.x_train.shape == (1500, 16) and ds.x_test.shape == (500, 16) and ds.input_shape == (16,)
    assert ds.x_train.dtype == torch.float32 and ds.y_train.dtype == torch.int64
    assert np.array_equal(np.bincount(ds.y_train.numpy()), [150] * 10)
    assert "1500 train / 500 test" in ds.description


@pytest.mark.parametrize("n_features, num_classes", [(2, 3), (5, 2)])
def test_options_shape_the_data(n_features, num_classes):
    ds = load_dataset("blobs", n_samples=120, n_features=n_features, num_classes=num_classes)
    assert ds.input_shape == (n_features,) and ds.x_test.shape == (30, n_features)
    assert set(ds.y_train.tolist()) == set(range(num_classes))


def test_standardized_with_train_statistics_of_make_blobs_data():
    ds = load_dataset("blobs", n_samples=400, n_features=3, num_classes=4, cluster_std=2.0, split_seed=9)
    x, y = make_blobs(n_samples=400, n_features=3, centers=4, cluster_std=2.0, random_state=9)
    train_index, test_index = stratified_split(y, 0.25, 9)
    mean, std = x[train_index].mean(axis=0), x[train_index].std(axis=0)
    assert np.allclose(ds.x_train.numpy(), (x[train_index] - mean) / std, atol=1e-5)
    assert np.allclose(ds.x_test.numpy(), (x[test_index] - mean) / std, atol=1e-5)
    assert np.array_equal(ds.y_test.numpy(), y[test_index])


def test_seeded_by_split_seed():
    a, b, c = (load_dataset("blobs", n_samples=200, split_seed=s) for s in (1, 1, 2))
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)
    assert not torch.equal(a.x_train, c.x_train)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"n_features": 0}, r"option 'n_features' must be an integer >= 1; got 0"),
        ({"num_classes": 1}, r"option 'num_classes' must be an integer >= 2"),
        ({"cluster_std": 0}, r"option 'cluster_std' must be a positive number; got 0"),
        ({"cluster_std": float("nan")}, r"option 'cluster_std' must be a positive number"),
        ({"test_fraction": 1.0}, r"option 'test_fraction' must be a number in \(0, 1\)"),
        ({"n_samples": 10, "num_classes": 10}, r"options n_samples=10, num_classes=10, test_fraction=0.25: "),
    ],
)
def test_bad_option_values(options, message):
    with pytest.raises(ValueError, match=r"dataset 'blobs': " + message):
        load_dataset("blobs", **options)
