"""A synthetic image dataset following normbench's dataset-loader protocol: ``load(**options) -> Dataset``.

Class k shows colour stripes at angle k·π/num_classes with a random frequency, phase and colour,
plus Gaussian noise: images ``(channels, size, size)`` that a small CNN learns in a few hundred
steps, generated from ``split_seed`` alone (no download), so every run of a suite sees the same
split and runs pair by seed.
"""

from __future__ import annotations

import numpy as np
import torch

from normbench.data import Dataset
from normbench.options import Owner, check_int, check_positive_number, check_seed

OWNER = Owner("dataset", "example_stripes")


def load_stripes(*, n_train: int = 1024, n_test: int = 512, size: int = 16, channels: int = 3,
                 num_classes: int = 4, noise: float = 0.5, split_seed: int = 0) -> Dataset:
    """Striped images; the keyword-only parameters are the options a suite may give."""
    n_train = check_int(OWNER, "n_train", n_train, 1)
    n_test = check_int(OWNER, "n_test", n_test, 1)
    size = check_int(OWNER, "size", size, 4)
    channels = check_int(OWNER, "channels", channels, 1)
    num_classes = check_int(OWNER, "num_classes", num_classes, 2)
    noise = check_positive_number(OWNER, "noise", noise)
    rng = np.random.default_rng(check_seed(OWNER, "split_seed", split_seed))
    images, labels = _stripes(rng, n_train + n_test, size, channels, num_classes, noise)
    mean = images[:n_train].mean(axis=(0, 2, 3), keepdims=True)
    std = images[:n_train].std(axis=(0, 2, 3), keepdims=True)
    images = ((images - mean) / std).astype(np.float32)
    return Dataset(
        name="example_stripes",
        x_train=torch.from_numpy(images[:n_train]), y_train=torch.from_numpy(labels[:n_train]),
        x_test=torch.from_numpy(images[n_train:]), y_test=torch.from_numpy(labels[n_train:]),
        num_classes=num_classes, input_shape=(channels, size, size),
        description=f"synthetic stripes, {num_classes} orientations, {n_train} train / {n_test} test, seed {split_seed}",
    )


def _stripes(rng: np.random.Generator, count: int, size: int, channels: int, num_classes: int,
             noise: float) -> tuple[np.ndarray, np.ndarray]:
    labels = rng.integers(0, num_classes, count)
    angle = labels * np.pi / num_classes
    frequency = rng.uniform(0.3, 0.9, count)
    phase = rng.uniform(0, 2 * np.pi, count)
    colour = rng.uniform(0.5, 1.5, (count, channels))
    ys, xs = np.mgrid[0:size, 0:size]
    along = xs[None] * np.cos(angle)[:, None, None] + ys[None] * np.sin(angle)[:, None, None]
    wave = np.sin(frequency[:, None, None] * along + phase[:, None, None])
    images = colour[:, :, None, None] * wave[:, None] + noise * rng.standard_normal((count, channels, size, size))
    return images, labels.astype(np.int64)
