"""cifar10 with the BLN authors' protocol options: per-pixel standardization, validation split, fixed subset."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from normbench.data import load_dataset


def _per_pixel(train: np.ndarray, other: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """StandardScaler on flattened images, written out: (x - mean) / std per column, std 0 -> 1."""
    flat = train.reshape(len(train), -1).astype(np.float64)
    mean, std = flat.mean(0), flat.std(0)
    std = np.where(std > 0, std, 1.0)

    def scale(images: np.ndarray) -> np.ndarray:
        return ((images.reshape(len(images), -1).astype(np.float64) - mean) / std).reshape(images.shape)

    return scale(train), scale(other)


def test_pixel_standardization_fit_on_all_training_images(tmp_path, cifar_files):
    files = cifar_files()
    files.train[0][0][:, 5] = 17  # one constant pixel value: std 0 counts as 1
    files.write(tmp_path)
    ds = load_dataset("cifar10", data_dir=str(tmp_path), standardize="pixel")
    train, _ = files.train_arrays()
    test = files.test[0].reshape(-1, 3, 32, 32)
    want_train, want_test = _per_pixel(train, test)
    np.testing.assert_allclose(ds.x_train.numpy(), want_train, atol=1e-5)
    np.testing.assert_allclose(ds.x_test.numpy(), want_test, atol=1e-5)
    assert ds.x_val is None and "standardized per pixel" in ds.description


def test_validation_and_training_subset_follow_one_seeded_shuffle(tmp_path, cifar_files):
    files = cifar_files()
    files.write(tmp_path)
    ds = load_dataset("cifar10", data_dir=str(tmp_path), standardize="pixel", validation=6, train_subset=10,
                      split_seed=3)
    train, labels = files.train_arrays()
    scaled, _ = _per_pixel(train, train[:1])  # statistics of all 30 training images, before the split
    order = np.random.default_rng(3).permutation(30)
    np.testing.assert_allclose(ds.x_val.numpy(), scaled[order[:6]], atol=1e-5)
    np.testing.assert_allclose(ds.x_train.numpy(), scaled[order[6:16]], atol=1e-5)
    assert np.array_equal(ds.y_val.numpy(), labels[order[:6]])
    assert np.array_equal(ds.y_train.numpy(), labels[order[6:16]])
    assert ds.n_test == 5 and "first 6 validation, then the first 10 for training" in ds.description


def test_subset_without_validation_and_channel_default(tmp_path, cifar_files):
    files = cifar_files()
    files.write(tmp_path)
    plain = load_dataset("cifar10", data_dir=str(tmp_path))
    ds = load_dataset("cifar10", data_dir=str(tmp_path), train_subset=4, split_seed=1)
    order = np.random.default_rng(1).permutation(30)
    assert ds.x_val is None
    torch.testing.assert_close(ds.x_train, plain.x_train[torch.from_numpy(order[:4])])
    torch.testing.assert_close(ds.x_test, plain.x_test)


@pytest.mark.parametrize(
    "options, fragment",
    [
        ({"standardize": "image"}, "option 'standardize' must be one of channel, pixel; got 'image'"),
        ({"validation": 30}, "option 'validation' is 30 but the training data holds 30 samples"),
        ({"validation": 25, "train_subset": 6}, "option 'train_subset' is 6 but only 5 training samples remain"),
        ({"train_subset": 0}, "option 'train_subset' must be an integer >= 1"),
        ({"validation": -1}, "option 'validation' must be an integer >= 0"),
    ],
)
def test_bad_protocol_options_are_named(tmp_path, cifar_files, options, fragment):
    cifar_files().write(tmp_path)
    with pytest.raises(ValueError, match="dataset 'cifar10'") as err:
        load_dataset("cifar10", data_dir=str(tmp_path), **options)
    assert fragment in str(err.value)
