"""Fixtures for the data tests: an isolated NORMBENCH_DATA and writers of small MNIST/CIFAR files.

The file writers are written from the format descriptions (LeCun et al.'s IDX layout, the CIFAR-10
python batch layout), independently of the loaders they test.
"""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

from normbench.data import DATA_DIR_ENV

MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


@pytest.fixture(autouse=True)
def no_data_dir_env(monkeypatch):
    """A developer's own NORMBENCH_DATA must not leak into the tests."""
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)


def idx_bytes(array: np.ndarray, type_code: int = 0x08) -> bytes:
    """IDX encoding of ``array``: 0, 0, type code, ndim, big-endian uint32 dims, big-endian data."""
    big_endian = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[type_code]
    header = bytes([0, 0, type_code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array, dtype=big_endian).tobytes()


def write_file(path: Path, content: bytes, gz: bool = False) -> Path:
    """Write ``content`` to ``path`` (gzipped to ``path.gz`` when ``gz``); return the path written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        path = path.with_name(path.name + ".gz")
        content = gzip.compress(content)
    path.write_bytes(content)
    return path


class MnistFiles:
    """Small random MNIST-like IDX files (uint8 images 28×28, labels 0-9) written into a directory."""

    def __init__(self, n_train: int = 30, n_test: int = 12, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.train_images = rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8)
        self.train_labels = rng.integers(0, 10, n_train).astype(np.uint8)
        self.test_images = rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8)
        self.test_labels = rng.integers(0, 10, n_test).astype(np.uint8)

    def write(self, directory: Path, gz: bool | dict[str, bool] = False, skip: tuple[str, ...] = ()) -> dict[str, Path]:
        """Write the four files (``gz`` per file key or for all); ``skip`` names keys not to write."""
        paths = {}
        for key, name in MNIST_FILES.items():
            if key in skip:
                continue
            zipped = gz.get(key, False) if isinstance(gz, dict) else gz
            paths[key] = write_file(directory / name, idx_bytes(getattr(self, key)), zipped)
        return paths


class CifarFiles:
    """Small random CIFAR-10-like python batches (uint8 rows of 3,072 values, labels 0-9)."""

    def __init__(self, per_batch: int = 6, n_test: int = 5, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.train = [
            (rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8), rng.integers(0, 10, per_batch).tolist())
            for _ in range(5)
        ]
        self.test = (rng.integers(0, 256, (n_test, 3072), dtype=np.uint8), rng.integers(0, 10, n_test).tolist())

    def write(self, directory: Path, protocol: int = 2, bytes_keys: bool = True, skip: tuple[str, ...] = ()) -> None:
        """Pickle the six batches as the official dicts (``b"data"``, ``b"labels"`` keys when ``bytes_keys``)."""
        directory.mkdir(parents=True, exist_ok=True)
        batches = {f"data_batch_{i + 1}": batch for i, batch in enumerate(self.train)}
        batches["test_batch"] = self.test
        for name, (data, labels) in batches.items():
            if name in skip:
                continue
            key = (lambda k: k.encode()) if bytes_keys else (lambda k: k)
            batch = {key("batch_label"): key(name), key("data"): data, key("labels"): labels,
                     key("filenames"): [key(f"img_{i}.png") for i in range(len(labels))]}
            (directory / name).write_bytes(pickle.dumps(batch, protocol=protocol))

    def train_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """All training images ``(N, 3, 32, 32)`` and labels in the official order."""
        data = np.concatenate([d for d, _ in self.train]).reshape(-1, 3, 32, 32)
        return data, np.concatenate([np.asarray(l) for _, l in self.train])


@pytest.fixture
def mnist_files():
    """A factory of :class:`MnistFiles`."""
    return MnistFiles


@pytest.fixture
def cifar_files():
    """A factory of :class:`CifarFiles`."""
    return CifarFiles


@pytest.fixture
def idx_encode():
    """:func:`idx_bytes`, for tests that write IDX files by hand."""
    return idx_bytes


@pytest.fixture
def write():
    """:func:`write_file`."""
    return write_file
