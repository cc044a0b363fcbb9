"""Pixel-by-pixel reading (sequential and permuted digits / MNIST): shapes, the scan-line order,
one fixed permutation per seed, and that the permuted task is a permutation of the sequential one."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from normbench.data import load_dataset
from normbench.data.pixel_order import pixel_permutation


def test_digits_sequential_is_the_image_in_scan_line_order():
    image = load_dataset("digits")
    sequence = load_dataset("digits", pixel_order="sequential")
    assert sequence.input_shape == (1, 64)
    assert sequence.x_train.shape == (1347, 1, 64) and sequence.x_test.shape == (450, 1, 64)
    assert sequence.mask_train is None
    # step t is pixel (t // 8, t % 8), written out by hand for three steps
    for t, (row, col) in {0: (0, 0), 9: (1, 1), 63: (7, 7)}.items():
        assert torch.equal(sequence.x_train[:, 0, t], image.x_train[:, 0, row, col])
        assert torch.equal(sequence.x_test[:, 0, t], image.x_test[:, 0, row, col])
    assert torch.equal(sequence.y_train, image.y_train) and torch.equal(sequence.y_test, image.y_test)
    assert "pixel by pixel" in sequence.description and "64 steps" in sequence.description


def test_permuted_digits_is_one_fixed_permutation_of_the_sequential_task():
    sequential = load_dataset("digits", pixel_order="sequential")
    permuted = load_dataset("digits", pixel_order="permuted")
    seq, perm = sequential.x_train[:, 0].numpy(), permuted.x_train[:, 0].numpy()
    # the same multiset of pixel columns (a permutation of positions, nothing dropped or repeated) ...
    assert sorted(map(tuple, seq.T)) == sorted(map(tuple, perm.T))
    # ... in the order of numpy's permutation for the split seed (0), for both splits alike
    order = np.random.default_rng(0).permutation(64)
    assert np.array_equal(perm, seq[:, order])
    assert np.array_equal(permuted.x_test[:, 0].numpy(), sequential.x_test[:, 0].numpy()[:, order])
    assert not np.array_equal(perm, seq)  # not the identity
    assert torch.equal(permuted.y_train, sequential.y_train)


def test_digits_rows_are_one_row_per_step():
    image = load_dataset("digits")
    rows = load_dataset("digits", pixel_order="rows")
    assert rows.input_shape == (8, 8) and rows.x_test.shape == (450, 8, 8)
    # step t holds row t; feature w is the pixel of column w
    for t, w in ((0, 0), (3, 5), (7, 2)):
        assert torch.equal(rows.x_train[:, w, t], image.x_train[:, 0, t, w])
    assert "row by row, 8 steps of 8 pixels" in rows.description


def test_the_permutation_is_determined_by_the_split_seed():
    first = load_dataset("digits", pixel_order="permuted", split_seed=3)
    again = load_dataset("digits", pixel_order="permuted", split_seed=3)
    assert torch.equal(first.x_train, again.x_train)
    expected = pixel_permutation(64, 3)
    assert np.array_equal(expected, np.random.default_rng(3).permutation(64))
    sequential = load_dataset("digits", pixel_order="sequential", split_seed=3)
    assert torch.equal(first.x_train, sequential.x_train[:, :, torch.from_numpy(expected)])
    assert not np.array_equal(pixel_permutation(64, 3), pixel_permutation(64, 4))


def test_mnist_pixel_orders(tmp_path, mnist_files):
    files = mnist_files()
    files.write(tmp_path)
    image = load_dataset("mnist", data_dir=str(tmp_path))
    sequence = load_dataset("mnist", data_dir=str(tmp_path), pixel_order="sequential")
    permuted = load_dataset("mnist", data_dir=str(tmp_path), pixel_order="permuted", permutation_seed=7)
    assert sequence.input_shape == permuted.input_shape == (1, 784)
    assert sequence.x_train.shape == (30, 1, 784) and permuted.x_test.shape == (12, 1, 784)
    assert torch.equal(sequence.x_train[:, 0, 28 * 5 + 3], image.x_train[:, 0, 5, 3])
    order = torch.from_numpy(np.random.default_rng(7).permutation(784))
    assert torch.equal(permuted.x_test, sequence.x_test[:, :, order])
    default_seed = load_dataset("mnist", data_dir=str(tmp_path), pixel_order="permuted")
    assert not torch.equal(default_seed.x_train, permuted.x_train)


@pytest.mark.parametrize("name, options, message", [
    ("digits", {"pixel_order": "columns"}, "option 'pixel_order' must be one of image, sequential, permuted, rows"),
    ("mnist", {"pixel_order": 1}, "option 'pixel_order' must be one of image, sequential, permuted, rows"),
    ("mnist", {"permutation_seed": -1}, "option 'permutation_seed'"),
])
def test_bad_pixel_order_options_name_the_option(name, options, message):
    with pytest.raises(ValueError, match=message):
        load_dataset(name, **options)
