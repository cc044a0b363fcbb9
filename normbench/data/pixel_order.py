"""Images read pixel by pixel: the sequential and permuted pixel tasks of recurrent-network papers.

Le, Jaitly & Hinton 2015 ("A Simple Way to Initialize Recurrent Networks of Rectified Linear
Units") introduced sequential MNIST - a 28×28 image fed to a recurrent net one pixel per step, in
scan-line order, 784 steps - and its permuted variant, in which one fixed random permutation is
applied to the pixel order of every image, so that neighbouring pixels are no longer neighbouring
steps. Cooijmans et al. 2016 (BN-LSTM) and others report results on both. The image loaders that
take the option ``pixel_order`` (``digits``, ``mnist``) read it here:

* ``image`` (default): the image as it is, ``(N, C, H, W)``;
* ``sequential``: row-major scan line order, ``(N, C, H·W)``: step ``t`` is pixel ``(t // W, t % W)``;
* ``permuted``: the sequential order under one fixed permutation, drawn from
  ``numpy.random.default_rng(seed)`` (``pixel_permutation``); every image of both splits gets
  the same one, so the task is the same function of the pixels, only harder for a recurrent net;
* ``rows``: one image row per step, its pixels the step's features, ``(N, C·W, H)``: the
  row-by-row reading of RNN tutorials (28 steps of 28 pixels on MNIST), H times fewer steps than
  ``sequential``, hence far cheaper for a recurrent net on a CPU.

The conversion happens after the loader's standardization, so a pixel's value is the same in
all three orders; only its position changes.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from normbench.data.dataset import Dataset
from normbench.options import Owner, check_choice

PIXEL_ORDERS = ("image", "sequential", "permuted", "rows")


def check_pixel_order(owner: Owner, value: object) -> str:
    """``value`` if it is one of :data:`PIXEL_ORDERS` (a ``ValueError`` naming the option otherwise)."""
    return check_choice(owner, "pixel_order", value, PIXEL_ORDERS)


def pixel_permutation(n_pixels: int, seed: int) -> np.ndarray:
    """The fixed permutation of ``n_pixels`` positions that ``permuted`` uses for ``seed`` (int64)."""
    return np.random.default_rng(seed).permutation(n_pixels)


def apply_pixel_order(dataset: Dataset, order: str, seed: int) -> Dataset:
    """``dataset`` (images ``(N, C, H, W)``) read in ``order``; unchanged for ``image``.

    ``seed`` chooses the permutation of ``permuted`` (the loader's split seed, or its own option).
    """
    if order == "image":
        return dataset
    channels, height, width = dataset.input_shape
    if order == "rows":
        return _by_rows(dataset)
    length = height * width
    index = torch.arange(length) if order == "sequential" else torch.from_numpy(pixel_permutation(length, seed))

    def reorder(x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], channels, length)[:, :, index].contiguous()

    what = "in scan-line order" if order == "sequential" else f"in a fixed permuted order (seed {seed})"
    return dataclasses.replace(
        dataset,
        x_train=reorder(dataset.x_train),
        x_test=reorder(dataset.x_test),
        x_val=None if dataset.x_val is None else reorder(dataset.x_val),
        input_shape=(channels, length),
        description=f"{dataset.description}; read pixel by pixel {what}, {length} steps",
    )


def _by_rows(dataset: Dataset) -> Dataset:
    """``dataset`` read one row per step: ``(N, C, H, W)`` → ``(N, C·W, H)``, channel c's column w
    the feature c·W + w."""
    channels, height, width = dataset.input_shape

    def reorder(x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, 1, 3, 2).reshape(x.shape[0], channels * width, height).contiguous()

    return dataclasses.replace(
        dataset,
        x_train=reorder(dataset.x_train),
        x_test=reorder(dataset.x_test),
        x_val=None if dataset.x_val is None else reorder(dataset.x_val),
        input_shape=(channels * width, height),
        description=f"{dataset.description}; read row by row, {height} steps of {channels * width} pixels",
    )
