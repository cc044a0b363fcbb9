"""mnist: the IDX reader and the MNIST loader on small files the tests write (plain, gzipped, corrupt)."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
import torch

from normbench.data import DATA_DIR_ENV, DataFormatError, DataNotFoundError, load_dataset
from normbench.data.idx import read_idx

NAMES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]


@pytest.mark.parametrize(
    "type_code, dtype", [(0x08, np.uint8), (0x09, np.int8), (0x0B, np.int16), (0x0C, np.int32),
                         (0x0D, np.float32), (0x0E, np.float64)]
)
@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_round_trips_every_type(tmp_path, idx_encode, write, type_code, dtype, gz):
    array = (np.arange(2 * 3 * 4).reshape(2, 3, 4) - 5).astype(dtype)
    if dtype == np.uint8:
        array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4) * 10
    path = write(tmp_path / "a-idx", idx_encode(array, type_code), gz)
    read = read_idx(path)
    assert read.dtype == np.dtype(dtype) and read.dtype.isnative
    assert np.array_equal(read, array)


def test_read_idx_detects_gzip_by_content_not_name(tmp_path, idx_encode):
    array = np.arange(6, dtype=np.uint8).reshape(2, 3)
    path = tmp_path / "named-plain-but-gzipped"
    path.write_bytes(gzip.compress(idx_encode(array)))
    assert np.array_equal(read_idx(path), array)


def test_read_idx_is_big_endian(tmp_path):
    # one int32 value 0x01020304 stored big-endian, written byte by byte
    path = tmp_path / "one-int"
    path.write_bytes(bytes([0, 0, 0x0C, 1, 0, 0, 0, 1, 1, 2, 3, 4]))
    assert read_idx(path).tolist() == [0x01020304]


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", r"not an IDX file: magic number \(empty file\)"),
        (bytes([1, 0, 8, 1, 0, 0, 0, 0]), r"not an IDX file: magic number 01000801"),
        (bytes([0, 0, 0x07, 1, 0, 0, 0, 0]), r"unknown IDX type code 0x07"),
        (bytes([0, 0, 8, 3, 0, 0, 0, 2]), r"truncated IDX header: 3 dimensions need 16 header bytes"),
        (bytes([0, 0, 8, 1, 0, 0, 0, 5, 1, 2, 3]), r"IDX data truncated: dimensions \(5,\) of 1-byte values need 5"),
        (bytes([0, 0, 8, 1, 0, 0, 0, 1, 1, 2]), r"IDX data has trailing bytes"),
        (bytes([0, 0, 0x0C, 1, 0, 0, 0, 2]) + bytes(7), r"dimensions \(2,\) of 4-byte values need 8 bytes"),
    ],
)
def test_read_idx_rejects_malformed_files_naming_them(tmp_path, content, message):
    path = tmp_path / "bad-idx"
    path.write_bytes(content)
    with pytest.raises(DataFormatError, match=message) as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_read_idx_rejects_corrupt_gzip(tmp_path, idx_encode):
    path = tmp_path / "broken.gz"
    path.write_bytes(gzip.compress(idx_encode(np.zeros((10, 10), np.uint8)))[:-12])
    with pytest.raises(DataFormatError, match=r"broken.gz: corrupt gzip data"):
        read_idx(path)


@pytest.mark.parametrize("gz", [False, True, {"train_images": True, "test_labels": True}])
def test_load_mnist_from_data_dir_option(tmp_path, mnist_files, gz):
    files = mnist_files()
    files.write(tmp_path, gz=gz)
    ds = load_dataset("mnist", data_dir=str(tmp_path))
    assert ds.name == "mnist" and ds.num_classes == 10 and ds.input_shape == (1, 28, 28)
    assert ds.x_train.shape == (30, 1, 28, 28) and ds.x_test.shape == (12, 1, 28, 28)
    assert ds.x_train.dtype == torch.float32 and ds.y_train.dtype == torch.int64
    assert np.array_equal(ds.y_train.numpy(), files.train_labels)
    assert np.array_equal(ds.y_test.numpy(), files.test_labels)
    # one scalar mean and std over every training pixel, applied to both splits
    mean, std = files.train_images.astype(np.float64).mean(), files.train_images.astype(np.float64).std()
    assert np.allclose(ds.x_train[:, 0].numpy(), (files.train_images - mean) / std, atol=1e-5)
    assert np.allclose(ds.x_test[:, 0].numpy(), (files.test_images - mean) / std, atol=1e-5)
    assert "30 train / 12 test" in ds.description and "\n" not in ds.description


def test_load_mnist_from_environment_only(tmp_path, mnist_files, monkeypatch):
    mnist_files().write(tmp_path / "mnist", gz=True)
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))
    ds = load_dataset("mnist")
    assert ds.n_train == 30 and ds.n_test == 12


def test_option_overrides_environment(tmp_path, mnist_files, monkeypatch):
    mnist_files(n_train=30).write(tmp_path / "a")
    mnist_files(n_train=20).write(tmp_path / "b")
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "a"))
    assert load_dataset("mnist", data_dir=str(tmp_path / "b")).n_train == 20


def test_search_order_and_torchvision_layout(tmp_path, mnist_files):
    mnist_files(n_train=20).write(tmp_path / "MNIST" / "raw", gz=True)
    assert load_dataset("mnist", data_dir=str(tmp_path)).n_train == 20
    mnist_files(n_train=25).write(tmp_path / "mnist")
    assert load_dataset("mnist", data_dir=str(tmp_path)).n_train == 25  # data_dir/mnist before MNIST/raw
    mnist_files(n_train=22).write(tmp_path)
    assert load_dataset("mnist", data_dir=str(tmp_path)).n_train == 22  # data_dir itself first


def test_plain_file_preferred_over_gz(tmp_path, mnist_files, write, idx_encode):
    mnist_files(n_train=30).write(tmp_path)
    # a stale, different .gz next to the plain file is ignored
    write(tmp_path / "train-images-idx3-ubyte", idx_encode(np.zeros((3, 28, 28), np.uint8)), gz=True)
    assert load_dataset("mnist", data_dir=str(tmp_path)).n_train == 30


def test_first_n_subset_uses_its_own_statistics(tmp_path, mnist_files):
    files = mnist_files()
    files.write(tmp_path)
    ds = load_dataset("mnist", data_dir=str(tmp_path), n_train=10, n_test=4)
    assert (ds.n_train, ds.n_test) == (10, 4)
    assert np.array_equal(ds.y_train.numpy(), files.train_labels[:10])
    head = files.train_images[:10].astype(np.float64)
    assert np.allclose(ds.x_train[:, 0].numpy(), (head - head.mean()) / head.std(), atol=1e-5)
    with pytest.raises(ValueError, match=r"option 'n_train' is 31 but .*train-images-idx3-ubyte holds 30 images"):
        load_dataset("mnist", data_dir=str(tmp_path), n_train=31)


def test_without_a_data_dir_the_cache_is_used_and_its_absence_names_the_fetch_command(no_data_dir_env):
    with pytest.raises(DataNotFoundError) as info:
        load_dataset("mnist")
    assert str(info.value) == (
        f"dataset 'mnist': data directory {str(no_data_dir_env)!r} (from the per-user cache directory) does not "
        "exist or is not a directory; fetch the dataset with `normbench data fetch mnist`, or name a directory "
        "that holds it: pass --data-dir DIR to normbench (or the dataset option data_dir), or set NORMBENCH_DATA=DIR"
    )


def test_missing_directory_names_it_and_its_origin(tmp_path, monkeypatch):
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError,
                       match=r"nowhere' \(from environment variable NORMBENCH_DATA\) does not exist"):
        load_dataset("mnist")


def test_missing_files_are_listed_with_where_they_were_expected(tmp_path, mnist_files):
    mnist_files().write(tmp_path, skip=("test_labels",))
    (tmp_path / "mnist").mkdir()
    with pytest.raises(DataNotFoundError) as info:
        load_dataset("mnist", data_dir=str(tmp_path))
    message = str(info.value)
    for name in NAMES:
        assert f"  {name}\n" in message
    assert "(each may also end in .gz)" in message
    assert f"  {tmp_path}: missing t10k-labels-idx1-ubyte\n" in message
    assert f"  {tmp_path / 'mnist'}: missing {', '.join(NAMES)}\n" in message
    assert f"  {tmp_path / 'MNIST' / 'raw'}: no such directory" in message
    assert "(from option data_dir)" in message and "--data-dir" in message
    assert f"Fetch the dataset with `normbench data fetch mnist --data-dir {tmp_path}`" in message


def test_files_split_across_directories_are_not_combined(tmp_path, mnist_files):
    paths = mnist_files().write(tmp_path)
    (tmp_path / "mnist").mkdir()
    paths["test_labels"].rename(tmp_path / "mnist" / paths["test_labels"].name)
    with pytest.raises(DataNotFoundError, match="missing t10k-labels-idx1-ubyte"):
        load_dataset("mnist", data_dir=str(tmp_path))


@pytest.mark.parametrize("gz", [False, True])
def test_swapped_files_report_their_magic_number(tmp_path, mnist_files, gz):
    paths = mnist_files().write(tmp_path, gz=gz)
    images, labels = paths["train_images"], paths["train_labels"]
    images.rename(tmp_path / "tmp")
    labels.rename(images)
    (tmp_path / "tmp").rename(labels)
    with pytest.raises(DataFormatError, match=r"train-images-idx3-ubyte(\.gz)?: magic number 0x00000801 is not "
                       r"that of an MNIST images file \(expected 0x00000803\)"):
        load_dataset("mnist", data_dir=str(tmp_path))


@pytest.mark.parametrize(
    "key, array, message",
    [
        ("train_images", np.zeros((30, 27, 28), np.uint8), r"train-images-idx3-ubyte: images of shape \(27, 28\)"),
        ("test_labels", np.zeros(11, np.uint8), r"t10k-labels-idx1-ubyte: 11 labels for 12 images"),
        ("train_labels", np.full(30, 10, np.uint8), r"train-labels-idx1-ubyte: label 10 outside 0-9"),
    ],
)
def test_wrong_dimensions_counts_and_labels_name_the_file(
    tmp_path, mnist_files, write, idx_encode, key, array, message
):
    files = mnist_files()
    files.write(tmp_path)
    write(tmp_path / dict(train_images="train-images-idx3-ubyte", test_labels="t10k-labels-idx1-ubyte",
                          train_labels="train-labels-idx1-ubyte")[key], idx_encode(array))
    with pytest.raises(DataFormatError, match=message):
        load_dataset("mnist", data_dir=str(tmp_path))


def test_corrupt_magic_in_gzipped_images(tmp_path, mnist_files, write):
    mnist_files().write(tmp_path, gz=True)
    write(tmp_path / "t10k-images-idx3-ubyte", b"\x00\x00\x08\x02" + bytes(8), gz=True)
    with pytest.raises(DataFormatError, match=r"t10k-images-idx3-ubyte.gz: magic number 0x00000802"):
        load_dataset("mnist", data_dir=str(tmp_path))


def test_truncated_images_file(tmp_path, mnist_files, write, idx_encode):
    mnist_files().write(tmp_path)
    write(tmp_path / "train-images-idx3-ubyte", idx_encode(np.zeros((30, 28, 28), np.uint8))[:-100])
    with pytest.raises(DataFormatError, match=r"train-images-idx3-ubyte: IDX data truncated"):
        load_dataset("mnist", data_dir=str(tmp_path))


@pytest.mark.parametrize(
    "options, message",
    [
        ({"n_train": 0}, r"option 'n_train' must be an integer >= 1; got 0"),
        ({"n_test": 2.5}, r"option 'n_test' must be an integer >= 1"),
        ({"data_dir": 3}, r"option 'data_dir' must be a path"),
    ],
)
def test_bad_option_values(options, message):
    with pytest.raises(ValueError, match=r"dataset 'mnist': " + message):
        load_dataset("mnist", **options)
