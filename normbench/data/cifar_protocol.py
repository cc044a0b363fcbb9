"""CIFAR-10 as Ziaee & Çano prepared it, as options of the ``cifar10`` loader: standardization, splits.

The authors (protocol in ``normbench/reference/bln2022.yaml``) flattened the images, standardized
every pixel with scikit-learn's ``StandardScaler`` fit on the 50,000 training images, shuffled the
training set once, took the first 5,000 as validation and trained on a fixed subset (the same
first 9,000 images, in the same order, every epoch). Options of ``cifar10``:

* ``standardize`` channel (default: one mean/std per colour channel, the loader's behaviour
  before these options) or pixel (one mean/std per pixel and channel, the authors'; a zero std
  counts as 1, as in ``StandardScaler``). Either is fit on all training images read, before the
  validation split, as the authors fit theirs;
* ``validation`` 0: the first n of the seeded shuffle of the training images become ``x_val``;
* ``train_subset`` None: keep only the first K of the shuffled training images that remain;
* ``split_seed`` 0: the shuffle's seed (:mod:`~normbench.data.validation_split`).

With ``validation: 0`` and no ``train_subset`` nothing is shuffled: the official order is kept.
Keeping the same batches in the same order every epoch is the training loop's business, not the
dataset's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from normbench.data.standardize import standardize_uint8, uint8_moments
from normbench.data.validation_split import check_split_options, split_indices
from normbench.options import Owner, check_choice, check_seed

STANDARDIZATIONS = ("channel", "pixel")


@dataclass(frozen=True)
class PreparedCifar:
    """Standardized float32 splits (``x_val``/``y_val`` None without a validation split) and a summary."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    x_val: torch.Tensor | None
    y_val: torch.Tensor | None
    summary: str


def check_protocol_options(dataset: str, standardize: object, split_seed: object) -> tuple[str, int]:
    """``standardize`` (channel | pixel) and ``split_seed``, checked; ``ValueError`` naming the option."""
    owner = Owner("dataset", dataset)
    return check_choice(owner, "standardize", standardize, STANDARDIZATIONS), check_seed(owner, "split_seed", split_seed)


def _standardize(train: np.ndarray, test: np.ndarray, per_pixel: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 ``(N, 3, 32, 32)`` → float32 with training statistics per channel or per pixel."""
    if not per_pixel:
        mean, std = uint8_moments(train, channel_axis=1)
        return standardize_uint8(train, mean, std, channel_axis=1), standardize_uint8(test, mean, std, channel_axis=1)
    # a flat (N, 3072) view: one statistic per column, as StandardScaler on flattened images
    flat_train, flat_test = train.reshape(len(train), -1), test.reshape(len(test), -1)
    mean, std = uint8_moments(flat_train, channel_axis=1)
    scaled = (standardize_uint8(a, mean, std, channel_axis=1).reshape(a.shape[0], *train.shape[1:])
              for a in (flat_train, flat_test))
    return tuple(scaled)


def prepare_cifar_splits(
    dataset: str, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, *,
    standardize: str = "channel", validation: object = 0, train_subset: object = None, split_seed: int = 0,
) -> PreparedCifar:
    """Standardize with training statistics, then split off validation and the training subset."""
    validation, train_subset = check_split_options(dataset, len(y_train), validation, train_subset)
    train, test = _standardize(x_train, x_test, standardize == "pixel")
    summary = f"standardized per {standardize} with train statistics"
    if validation == 0 and train_subset is None:
        return PreparedCifar(train, torch.from_numpy(y_train), test, None, None, summary)
    val_idx, train_idx = split_indices(len(y_train), validation, split_seed, train_subset)
    val_x = torch.from_numpy(val_idx)
    keep = torch.from_numpy(train_idx)
    labels = torch.from_numpy(y_train)
    summary += (f"; shuffled (split_seed {split_seed}): first {validation} validation, then "
                f"{'the first ' + str(train_subset) if train_subset else 'the remaining ' + str(len(train_idx))} "
                "for training")
    has_val = validation > 0
    return PreparedCifar(
        train[keep], labels[keep], test,
        train[val_x] if has_val else None, labels[val_x] if has_val else None, summary,
    )
