"""The registry of fetchable datasets, the data directory they share, and ``fashion_mnist``'s reader."""

from __future__ import annotations

import re

import numpy as np
import pytest

from normbench.data import DATA_DIR_ENV, DataNotFoundError, available_datasets, load_dataset
from normbench.data.datadir import data_root, fetch_command
from normbench.data.sources import MIRROR_ENV, SOURCES, UnknownDatasetError, file_urls, get_source, known_datasets

HEX_LENGTH = {"md5": 32, "sha256": 64}


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_every_hash_is_a_published_digest_and_covers_every_file(name):
    source = SOURCES[name]
    for known in [f.hash for f in source.files] + list(source.payload_hashes.values()):
        algorithm, digest = known.split(":")
        assert re.fullmatch(f"[0-9a-f]{{{HEX_LENGTH[algorithm]}}}", digest), known
    spellings = {n + s for n in source.payload for s in source.suffixes}
    assert set(source.payload_hashes) <= spellings
    assert all(any(n + s in source.payload_hashes for s in source.suffixes) for n in source.payload)
    assert all(f.size > 0 for f in source.files)


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_a_fetch_leaves_the_files_where_the_reader_looks(name):
    source = SOURCES[name]
    assert source.payload_dir in source.search_dirs


def test_published_hashes_of_the_official_files():
    # Spot checks against the maintainers' pages (docs/data.md cites each one).
    assert get_source("mnist").files[0].hash == "md5:f68b3c2dcbeaaa9fbdd348bbdeb94873"
    assert get_source("fashion_mnist").files[0].hash == "md5:8d4fb7e6c68d591d4c3dfef9ec88bf0d"
    assert get_source("cifar10").files[0].hash == "md5:c58f30108f718f92721af3b95e74349a"
    assert get_source("imdb").files[0].hash == (
        "sha256:69664113be75683a8fe16e3ed0ab59fda8886cb3cd7ada244f7d9544e4676b9f"
    )


def test_layouts_are_torchvision_and_keras():
    assert [get_source(n).payload_dir for n in ("mnist", "fashion_mnist", "cifar10", "imdb")] == [
        "MNIST/raw", "FashionMNIST/raw", "cifar-10-batches-py", "",
    ]


def test_unknown_dataset_lists_the_known_ones():
    assert known_datasets() == ["cifar10", "fashion_mnist", "imdb", "mnist"]
    with pytest.raises(UnknownDatasetError, match=r"unknown dataset 'mnst'; normbench data knows: cifar10, "
                                                  r"fashion_mnist, imdb, mnist"):
        get_source("mnst")


def test_fetchable_datasets_are_registered_datasets():
    assert set(known_datasets()) <= set(available_datasets())


def test_mirror_replaces_every_base_url_with_a_folder_per_dataset(monkeypatch):
    mnist = get_source("mnist")
    first = mnist.files[0]
    assert file_urls(mnist, first) == [base + first.name for base in mnist.base_urls]
    assert len(mnist.base_urls) == 2  # LeCun's page is often down: torchvision's S3 copy is tried too
    assert file_urls(mnist, first, "http://m.example/data/") == [f"http://m.example/data/mnist/{first.name}"]
    monkeypatch.setenv(MIRROR_ENV, "http://env.example")
    assert file_urls(mnist, first) == [f"http://env.example/mnist/{first.name}"]
    assert file_urls(mnist, first, "http://flag.example") == [f"http://flag.example/mnist/{first.name}"]


def test_one_resolver_for_the_data_directory(tmp_path, monkeypatch, no_data_dir_env):
    assert data_root(None) == (no_data_dir_env, "the per-user cache directory")
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "env"))
    assert data_root(None) == (tmp_path / "env", "environment variable NORMBENCH_DATA")
    assert data_root(tmp_path / "opt") == (tmp_path / "opt", "option data_dir")
    assert data_root("") == (tmp_path / "env", "environment variable NORMBENCH_DATA")


def test_fetch_command_names_the_directory_unless_it_is_the_cache(tmp_path, no_data_dir_env):
    assert fetch_command("mnist", no_data_dir_env) == "normbench data fetch mnist"
    assert fetch_command("mnist", tmp_path / "my data") == f"normbench data fetch mnist --data-dir '{tmp_path}/my data'"


def test_fashion_mnist_reads_torchvision_layout(tmp_path, mnist_files):
    files = mnist_files(n_train=20, n_test=6, seed=5)
    files.write(tmp_path / "FashionMNIST" / "raw", gz=True)
    ds = load_dataset("fashion_mnist", data_dir=str(tmp_path), n_train=15)
    assert ds.name == "fashion_mnist" and ds.n_train == 15 and ds.x_test.shape == (6, 1, 28, 28)
    assert np.array_equal(ds.y_train.numpy(), files.train_labels[:15])
    head = files.train_images[:15].astype(np.float64)
    assert np.allclose(ds.x_train[:, 0].numpy(), (head - head.mean()) / head.std(), atol=1e-5)
    assert ds.description.startswith("Fashion-MNIST (Xiao et al. 2017, IDX files from")


def test_fashion_mnist_never_reads_mnist_files_in_the_data_directory_itself(tmp_path, mnist_files):
    mnist_files().write(tmp_path)  # MNIST's files, indistinguishable by name and format
    assert load_dataset("mnist", data_dir=str(tmp_path)).n_train == 30
    with pytest.raises(DataNotFoundError) as info:
        load_dataset("fashion_mnist", data_dir=str(tmp_path))
    message = str(info.value)
    assert f"  {tmp_path / 'fashion_mnist'}: no such directory" in message
    assert f"  {tmp_path / 'FashionMNIST' / 'raw'}: no such directory" in message
    assert f"`normbench data fetch fashion_mnist --data-dir {tmp_path}`" in message
