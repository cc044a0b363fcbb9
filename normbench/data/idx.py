"""``mnist`` and ``fashion_mnist``: 28×28 grayscale images read from IDX files (never downloaded here).

The IDX format (LeCun, Cortes & Burges, "The MNIST database of handwritten digits",
http://yann.lecun.com/exdb/mnist/): a 4-byte magic number — two zero bytes, a type code
(0x08 unsigned byte, 0x09 signed byte, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64) and the
number of dimensions — then each dimension as a big-endian uint32, then the values in C order,
big-endian. MNIST's image files have magic 0x00000803 (ubyte, 3 dims: N × 28 × 28), its label
files 0x00000801 (ubyte, 1 dim: N, values 0-9).

Files and search: the four files ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``, each uncompressed or gzipped with a
``.gz`` suffix (the uncompressed one is used when both exist), all four in one of
``DATA_DIR``, ``DATA_DIR/mnist`` or ``DATA_DIR/MNIST/raw`` (torchvision's layout), searched in that
order. Whether a file is gzipped is decided by its content (the gzip magic bytes), not its name.

Fashion-MNIST (Xiao, Rasul & Vollgraf 2017, https://github.com/zalandoresearch/fashion-mnist)
ships under the same four names in the same format and cannot be told apart from MNIST by its
files, so ``fashion_mnist`` searches only its own sub-directories, ``DATA_DIR/fashion_mnist`` and
``DATA_DIR/FashionMNIST/raw`` (torchvision's layout), never ``DATA_DIR`` itself.
``normbench data fetch`` stores the gzipped files in torchvision's layout (``MNIST/raw``,
``FashionMNIST/raw``).

Split: the official 60,000 / 10,000 train/test split (no seed involved); ``n_train``/``n_test``
keep the first n images of each file in the official order. Images become float32
``(N, 1, 28, 28)``, standardized with one mean and std over every pixel of the training images
used. ``pixel_order`` (image | sequential | permuted | rows; ``normbench.data.pixel_order``) reads
them as 784-step pixel sequences ``(N, 1, 784)`` (or 28 rows, ``(N, 28, 28)``): sequential and permuted MNIST (Le et al. 2015,
Cooijmans et al. 2016); the permutation is drawn from ``permutation_seed`` (default 0), since the
official split has no seed.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path

import numpy as np
import torch

from normbench.data.datadir import DataFormatError, find_files, resolve_data_dir
from normbench.data.dataset import Dataset
from normbench.data.pixel_order import apply_pixel_order, check_pixel_order
from normbench.data.standardize import standardize_uint8, uint8_moments
from normbench.options import Owner, check_int, check_seed, optional

NAME = "mnist"
FASHION_NAME = "fashion_mnist"
NUM_CLASSES = 10
IMAGE_SIZE = (28, 28)
INPUT_SHAPE = (1, *IMAGE_SIZE)
# torchvision's layout, searched last; ``normbench data fetch`` stores the gzipped files there too.
TORCHVISION_DIRS = {NAME: os.path.join("MNIST", "raw"), FASHION_NAME: os.path.join("FashionMNIST", "raw")}
SUBDIRS = ("", "mnist", TORCHVISION_DIRS[NAME])
FASHION_SUBDIRS = ("fashion_mnist", TORCHVISION_DIRS[FASHION_NAME])
SUFFIXES = ("", ".gz")
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

# IDX type code → big-endian numpy dtype.
IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801
GZIP_MAGIC = b"\x1f\x8b"


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """The array stored in IDX file ``path`` (gzipped or not), in native byte order.

    Raises :class:`DataFormatError` naming the file when the magic number, the header or the
    amount of data does not match the format.
    """
    path = Path(path)
    return _parse_idx(_read_bytes(path), path)


def _parse_idx(content: bytes, path: Path) -> np.ndarray:
    """The array encoded by the IDX bytes ``content`` read from ``path`` (named in errors)."""
    if len(content) < 4 or content[0] != 0 or content[1] != 0:
        raise DataFormatError(
            f"{path}: not an IDX file: magic number {content[:4].hex() or '(empty file)'} does not start "
            "with two zero bytes"
        )
    type_code, ndim = content[2], content[3]
    if type_code not in IDX_DTYPES:
        known = ", ".join(f"0x{code:02X}" for code in IDX_DTYPES)
        raise DataFormatError(f"{path}: unknown IDX type code 0x{type_code:02X} (known: {known})")
    header_size = 4 + 4 * ndim
    if len(content) < header_size:
        raise DataFormatError(
            f"{path}: truncated IDX header: {ndim} dimensions need {header_size} header bytes, file has "
            f"{len(content)}"
        )
    dims = tuple(int(d) for d in np.frombuffer(content, dtype=">u4", count=ndim, offset=4))
    dtype = IDX_DTYPES[type_code]
    expected = math.prod(dims) * dtype.itemsize  # Python ints: a forged header cannot overflow
    actual = len(content) - header_size
    if actual != expected:
        problem = "truncated" if actual < expected else "has trailing bytes"
        raise DataFormatError(
            f"{path}: IDX data {problem}: dimensions {dims} of {dtype.itemsize}-byte values need {expected} "
            f"bytes after the header, file has {actual}"
        )
    array = np.frombuffer(content, dtype=dtype, offset=header_size).reshape(dims)
    # A copy in native byte order: frombuffer's view of ``content`` is read-only, and callers (and
    # torch.from_numpy) expect an ordinary array.
    return array.astype(dtype.newbyteorder("="))


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, decompressed when they start with the gzip magic number."""
    with open(path, "rb") as handle:
        content = handle.read()
    if content[:2] != GZIP_MAGIC:
        return content
    try:
        return gzip.decompress(content)
    except (OSError, EOFError, zlib.error) as error:
        raise DataFormatError(f"{path}: corrupt gzip data: {error}") from error


def read_mnist_pair(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images ``(N, 28, 28)`` and int64 labels ``(N,)`` from one MNIST images/labels file pair."""
    # The magic numbers are checked first so that swapped or foreign files get a message saying
    # what they are, before any dimension check.
    arrays = []
    for path, magic, kind in ((images_path, IMAGES_MAGIC, "images"), (labels_path, LABELS_MAGIC, "labels")):
        content = _read_bytes(path)
        found = int.from_bytes(content[:4].ljust(4, b"\0"), "big")
        if found != magic:
            raise DataFormatError(
                f"{path}: magic number 0x{found:08X} is not that of an MNIST {kind} file (expected 0x{magic:08X})"
            )
        arrays.append(_parse_idx(content, path))
    images, labels = arrays
    if images.ndim != 3 or images.shape[1:] != IMAGE_SIZE:
        raise DataFormatError(f"{images_path}: images of shape {images.shape[1:]}; MNIST images are 28x28")
    if labels.shape[0] != images.shape[0]:
        raise DataFormatError(
            f"{labels_path}: {labels.shape[0]} labels for {images.shape[0]} images in {images_path}"
        )
    if labels.size and labels.max() >= NUM_CLASSES:
        raise DataFormatError(f"{labels_path}: label {int(labels.max())} outside 0-9")
    return images, labels.astype(np.int64)


def load_mnist_dataset(
    *, data_dir: str | None = None, n_train: int | None = None, n_test: int | None = None,
    pixel_order: str = "image", permutation_seed: int = 0,
) -> Dataset:
    """Load ``mnist`` from the user's IDX files as ``(N, 1, 28, 28)``, standardized with train statistics.

    ``data_dir`` defaults to ``$NORMBENCH_DATA``, else the per-user cache; ``n_train``/``n_test``
    (default all) keep the first n images of the official files; ``pixel_order`` sequential or
    permuted gives ``(N, 1, 784)`` pixel sequences (the permutation drawn from ``permutation_seed``).
    """
    owner = Owner("dataset", NAME)
    n_train = optional(check_int, owner, "n_train", n_train, 1)
    n_test = optional(check_int, owner, "n_test", n_test, 1)
    pixel_order = check_pixel_order(owner, pixel_order)
    seed = check_seed(owner, "permutation_seed", permutation_seed)
    images = _load_idx_images(NAME, "MNIST (LeCun et al.", SUBDIRS, data_dir, n_train, n_test)
    return apply_pixel_order(images, pixel_order, seed)


def load_fashion_mnist_dataset(
    *, data_dir: str | None = None, n_train: int | None = None, n_test: int | None = None
) -> Dataset:
    """Load ``fashion_mnist`` from its IDX files as ``(N, 1, 28, 28)``, standardized with train statistics.

    Options as for ``mnist``; the files are searched in ``fashion_mnist/`` and ``FashionMNIST/raw/``.
    """
    n_train = optional(check_int, Owner("dataset", FASHION_NAME), "n_train", n_train, 1)
    n_test = optional(check_int, Owner("dataset", FASHION_NAME), "n_test", n_test, 1)
    return _load_idx_images(
        FASHION_NAME, "Fashion-MNIST (Xiao et al. 2017", FASHION_SUBDIRS, data_dir, n_train, n_test
    )


def _load_idx_images(
    name: str, title: str, subdirs: tuple[str, ...], data_dir: str | None, n_train: int | None, n_test: int | None
) -> Dataset:
    """The dataset ``name`` from the four MNIST-format files found under ``subdirs`` of the data directory."""
    root, origin = resolve_data_dir(name, data_dir)
    names = [file_name for pair in FILES.values() for file_name in pair]
    paths = find_files(name, root, origin, subdirs, names, suffixes=SUFFIXES)
    splits = {}
    for split, wanted in (("train", n_train), ("test", n_test)):
        images_name, labels_name = FILES[split]
        images, labels = read_mnist_pair(paths[images_name], paths[labels_name])
        if wanted is not None:
            if wanted > len(labels):
                raise ValueError(
                    f"dataset {name!r}: option 'n_{split}' is {wanted} but {paths[images_name]} holds "
                    f"{len(labels)} images"
                )
            images, labels = images[:wanted], labels[:wanted]
        if len(labels) == 0:
            raise DataFormatError(f"{paths[images_name]}: holds no images")
        splits[split] = (images, labels)
    mean, std = uint8_moments(splits["train"][0])
    x_train, x_test = (standardize_uint8(splits[s][0], mean, std).unsqueeze(1) for s in ("train", "test"))
    y_train, y_test = splits["train"][1], splits["test"][1]
    return Dataset(
        name=name,
        x_train=x_train,
        y_train=torch.from_numpy(np.ascontiguousarray(y_train)),
        x_test=x_test,
        y_test=torch.from_numpy(np.ascontiguousarray(y_test)),
        num_classes=NUM_CLASSES,
        input_shape=INPUT_SHAPE,
        description=(
            f"{title}, IDX files from {paths[FILES['train'][0]].parent}): {len(y_train)} train / "
            f"{len(y_test)} test, official split{' (first n of each)' if n_train or n_test else ''}, "
            f"standardized with the train mean {float(mean):.2f} and std {float(std):.2f} (pixel values 0-255)"
        ),
    )
