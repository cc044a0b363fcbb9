"""``digits``: scikit-learn's 8×8 handwritten digits (shipped with scikit-learn, no download).

1,797 grey-level images (values 0..16) of the digits 0-9 from the UCI "Optical Recognition of
Handwritten Digits" set, split into train/test by a stratified shuffle seeded by ``split_seed``
alone, then standardized per pixel with statistics of the training images only. ``validation: n``
(default 0) then moves the first n of a ``split_seed``-seeded shuffle of the training images into a
validation split (``x_val``/``y_val``), as the ``cifar10`` protocol does; the test split is unchanged.

``pixel_order`` (image | sequential | permuted | rows; ``normbench.data.pixel_order``) reads the
images as 64-step pixel sequences ``(N, 1, 64)`` or 8 steps of 8-pixel rows ``(N, 8, 8)``; the
permuted order's permutation is drawn from ``split_seed``, so one split seed fixes both the split
and the permutation.
"""

from __future__ import annotations

import functools

import numpy as np
import sklearn.datasets
import torch
from sklearn.model_selection import train_test_split

from normbench.data.dataset import Dataset
from normbench.data.pixel_order import apply_pixel_order, check_pixel_order
from normbench.data.validation_split import check_split_options, split_indices
from normbench.options import Owner, check_number, check_seed

NAME = "digits"
OWNER = Owner("dataset", NAME)
NUM_CLASSES = 10
INPUT_SHAPE = (1, 8, 8)

# Per-pixel standard deviations below one grey level (the data's quantisation step) are replaced
# by one grey level. Border pixels that are constant in the training set have std 0 (0/0 without a
# floor); near-constant ones (on in a handful of training images, std ≈ 0.02-0.9) would turn a
# single stroke in a test image into a 40-sigma input. With the floor such pixels are centred but
# not blown up; the other pixels get unit variance.
STD_FLOOR = 1.0


@functools.lru_cache(maxsize=1)
def _raw_digits() -> tuple[np.ndarray, np.ndarray]:
    """Images ``(1797, 8, 8)`` float64 and labels ``(1797,)`` int64, read once per process (read-only)."""
    bunch = sklearn.datasets.load_digits()
    images = np.asarray(bunch.images, dtype=np.float64)
    labels = np.asarray(bunch.target, dtype=np.int64)
    images.flags.writeable = False  # the cache hands out the same arrays; nobody may change them
    labels.flags.writeable = False
    return images, labels


def stratified_split(
    labels: np.ndarray, test_fraction: float, split_seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Train and test indices of a stratified shuffle split that depends on ``split_seed`` only."""
    indices = np.arange(len(labels))
    train_index, test_index = train_test_split(
        indices, test_size=test_fraction, stratify=labels, random_state=split_seed
    )
    return train_index, test_index


def standardize(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centre and scale both arrays per feature with the training mean and floored std (ddof 0)."""
    mean = train.mean(axis=0)
    std = np.maximum(train.std(axis=0), STD_FLOOR)
    return (train - mean) / std, (test - mean) / std


def load_digits_dataset(
    *, test_fraction: float = 0.25, split_seed: int = 0, validation: int = 0, pixel_order: str = "image"
) -> Dataset:
    """Load ``digits`` as ``(N, 1, 8, 8)`` (or pixel sequences, see ``pixel_order``), standardized with
    train statistics (with ``validation`` > 0, that many training images become the validation split)."""
    pixel_order = check_pixel_order(OWNER, pixel_order)
    test_fraction = check_number(OWNER, "test_fraction", test_fraction, low=0.0, high=1.0,
                                 low_open=True, high_open=True)
    split_seed = check_seed(OWNER, "split_seed", split_seed)
    images, labels = _raw_digits()
    try:
        train_index, test_index = stratified_split(labels, float(test_fraction), int(split_seed))
    except ValueError as error:  # e.g. a test set smaller than the number of classes
        raise ValueError(f"dataset {NAME!r}: option 'test_fraction' {test_fraction!r}: {error}") from error
    validation, _ = check_split_options(NAME, len(train_index), validation)
    x_train, x_test = standardize(images[train_index], images[test_index])
    val_part, train_part = split_indices(len(train_index), validation, int(split_seed))
    x_val, y_val = _images(x_train[val_part]), torch.from_numpy(labels[train_index][val_part].copy())
    x_train, train_index = x_train[train_part], train_index[train_part]
    n_train, n_test = len(train_index), len(test_index)
    dataset = Dataset(
        name=NAME,
        x_train=_images(x_train),
        y_train=torch.from_numpy(labels[train_index].copy()),
        x_test=_images(x_test),
        y_test=torch.from_numpy(labels[test_index].copy()),
        num_classes=NUM_CLASSES,
        input_shape=INPUT_SHAPE,
        description=(
            f"scikit-learn digits (UCI optical handwritten digits, 8x8, 10 classes): {n_train} train / "
            + (f"{validation} validation / " if validation else "")
            + f"{n_test} test, stratified split seed {int(split_seed)}, per-pixel standardized with "
            "train statistics"
        ),
        x_val=x_val if validation else None,
        y_val=y_val if validation else None,
    )
    return apply_pixel_order(dataset, pixel_order, int(split_seed))


def _images(x: np.ndarray) -> torch.Tensor:
    """Standardized ``(N, 8, 8)`` float64 images as float32 ``(N, 1, 8, 8)``."""
    return torch.from_numpy(x.astype(np.float32)).unsqueeze(1)
