"""``cifar10``: CIFAR-10, read from the python batches in the data directory (never downloaded here).

Source: Krizhevsky, "Learning Multiple Layers of Features from Tiny Images", 2009, and the
"CIFAR-10 python version" at https://www.cs.toronto.edu/~kriz/cifar.html: six pickled dicts,
``data_batch_1`` … ``data_batch_5`` (10,000 training images each) and ``test_batch`` (10,000), each
with ``data`` — a uint8 array ``(10000, 3072)`` holding the red, then green, then blue 32×32 plane
of an image in row-major order — and ``labels``, a list of 10,000 class indices 0-9.

Files and search: all six batches in ``DATA_DIR/cifar-10-batches-py`` (what extracting the
official ``cifar-10-python.tar.gz`` creates, as torchvision and ``normbench data fetch cifar10``
do) or in ``DATA_DIR`` itself, whichever holds all six; ``DATA_DIR`` itself is searched first.

Pickle safety: unpickling can run arbitrary code, and the batches come from a directory the user
names, so they are read with :class:`RestrictedUnpickler`, which builds nothing but plain
containers, strings, numbers and numpy arrays. A file that asks for anything else is refused with
an error; it is not the official batch. (This stops code execution, not resource exhaustion: a
hostile file can still ask for a huge array.)

Split: the official 50,000 / 10,000 split; ``n_train``/``n_test`` keep the first n images in the
official order (batches 1 to 5). Images become float32 ``(N, 3, 32, 32)``, standardized per
channel with the mean and std of the training images used.
"""

from __future__ import annotations

import builtins
import codecs
import io
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from normbench.data.cifar_protocol import check_protocol_options, prepare_cifar_splits
from normbench.data.datadir import DataFormatError, fetch_command, find_files, resolve_data_dir
from normbench.data.dataset import Dataset
from normbench.options import Owner, check_int, optional

NAME = "cifar10"
NUM_CLASSES = 10
INPUT_SHAPE = (3, 32, 32)
ROW_SIZE = 3 * 32 * 32
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCHES = ("test_batch",)
SUBDIRS = ("", "cifar-10-batches-py")
ARCHIVE = "cifar-10-python.tar.gz"


def _allowed_globals() -> dict[tuple[str, str], Any]:
    """The (module, name) pairs a CIFAR batch may reference, mapped to the objects they build."""
    # numpy pickles an array through a private reconstructor whose module moved in numpy 2
    # (numpy.core → numpy._core); ask numpy for the functions instead of importing private paths,
    # and accept both spellings so batches pickled by either numpy major version load.
    reconstruct = np.empty(0).__reduce__()[0]  # used by pickle protocols 0-4
    frombuffer = np.empty(1).__reduce_ex__(5)[0]  # used by pickle protocol 5 for contiguous arrays
    allowed: dict[tuple[str, str], Any] = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
    for package in ("numpy.core", "numpy._core"):
        allowed[(f"{package}.multiarray", "_reconstruct")] = reconstruct
        allowed[(f"{package}.numeric", "_frombuffer")] = frombuffer
    # Python 3 pickles bytes as _codecs.encode(text, "latin1") under protocols < 3.
    allowed[("_codecs", "encode")] = codecs.encode
    # Plain containers and scalars. An overridden find_class sees module names before the Python 2
    # → 3 renaming (fix_imports), so Python 2's ``__builtin__`` is listed next to ``builtins``.
    for name in ("dict", "list", "tuple", "set", "frozenset", "bytes", "bytearray", "str", "int", "float",
                 "complex", "bool"):
        for module in ("builtins", "__builtin__"):
            allowed[(module, name)] = getattr(builtins, name)
    return allowed


_ALLOWED_GLOBALS = _allowed_globals()


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the globals a CIFAR batch needs and refuses all others."""

    def find_class(self, module: str, name: str) -> Any:
        """The allowed object for ``module.name``; ``pickle.UnpicklingError`` for anything else."""
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refused to load global {module}.{name}: a CIFAR-10 batch holds only arrays, lists and strings"
            ) from None


def restricted_loads(data: bytes) -> Any:
    """Unpickle ``data`` with :class:`RestrictedUnpickler` (bytes-encoded Python 2 strings stay bytes)."""
    return RestrictedUnpickler(io.BytesIO(data), encoding="bytes").load()


def read_batch(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images ``(N, 3, 32, 32)`` and int64 labels ``(N,)`` from one CIFAR-10 batch file.

    Raises :class:`DataFormatError` naming the file when it is refused, unreadable or not shaped
    like a CIFAR-10 batch.
    """
    path = Path(path)
    with open(path, "rb") as handle:
        content = handle.read()
    try:
        batch = restricted_loads(content)
    except Exception as error:  # any failure to unpickle (refused global, truncation, bad opcode) means "not a batch"
        raise DataFormatError(f"{path}: not a CIFAR-10 python batch: {type(error).__name__}: {error}") from error
    if not isinstance(batch, dict):
        raise DataFormatError(f"{path}: not a CIFAR-10 python batch: holds a {type(batch).__name__}, not a dict")
    data, labels = _field(batch, "data", path), _field(batch, "labels", path)
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != ROW_SIZE:
        described = f"{data.dtype} array of shape {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DataFormatError(f"{path}: 'data' must be a uint8 array of shape (N, {ROW_SIZE}); got {described}")
    try:
        labels = np.asarray(labels)
    except Exception as error:
        raise DataFormatError(f"{path}: 'labels' is not a list of integers: {error}") from error
    if labels.ndim != 1 or (labels.size and not np.issubdtype(labels.dtype, np.integer)):
        raise DataFormatError(
            f"{path}: 'labels' must be a list of integers; got {labels.dtype} of shape {labels.shape}"
        )
    if len(labels) != len(data):
        raise DataFormatError(f"{path}: {len(labels)} labels for {len(data)} images")
    if labels.size and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise DataFormatError(f"{path}: labels must lie in 0-9; found {int(labels.min())}..{int(labels.max())}")
    return data.reshape(-1, *INPUT_SHAPE), labels.astype(np.int64)


def _field(batch: dict, key: str, path: Path) -> Any:
    """``batch[key]`` under its Python 2 (bytes) or Python 3 (str) spelling."""
    for spelling in (key.encode(), key):
        if spelling in batch:
            return batch[spelling]
    raise DataFormatError(f"{path}: not a CIFAR-10 python batch: no {key!r} entry (keys: {sorted(map(str, batch))})")


def _read_split(paths: dict[str, Path], names: tuple[str, ...], wanted: int | None, option: str):
    """Images and labels of ``names`` in order, the first ``wanted`` of them (all when None)."""
    images, labels = [], []
    for name in names:
        if wanted is not None and sum(map(len, labels)) >= wanted:
            break  # later batches are not needed for the first n images
        batch_images, batch_labels = read_batch(paths[name])
        images.append(batch_images)
        labels.append(batch_labels)
    x, y = np.concatenate(images), np.concatenate(labels)
    if wanted is not None:
        if wanted > len(y):
            raise ValueError(f"dataset {NAME!r}: option {option!r} is {wanted} but the batches hold {len(y)} images")
        x, y = x[:wanted], y[:wanted]
    if len(y) == 0:
        raise DataFormatError(f"dataset {NAME!r}: the batches {', '.join(names)} hold no images")
    return x, y


def load_cifar10_dataset(
    *, data_dir: str | None = None, n_train: int | None = None, n_test: int | None = None,
    standardize: str = "channel", validation: int = 0, train_subset: int | None = None, split_seed: int = 0,
) -> Dataset:
    """Load ``cifar10`` from the user's python batches as ``(N, 3, 32, 32)``, standardized per channel.

    ``data_dir`` defaults to ``$NORMBENCH_DATA``, else the per-user cache; ``n_train``/``n_test``
    (default all) keep the first n images in the official order. ``standardize``, ``validation``,
    ``train_subset`` and ``split_seed`` give the authors' BLN protocol (:mod:`~normbench.data.cifar_protocol`).
    """
    n_train = optional(check_int, Owner("dataset", NAME), "n_train", n_train, 1)
    n_test = optional(check_int, Owner("dataset", NAME), "n_test", n_test, 1)
    standardize, split_seed = check_protocol_options(NAME, standardize, split_seed)
    root, origin = resolve_data_dir(NAME, data_dir)
    hint = ""
    if (root / ARCHIVE).is_file():
        hint = (f"{root / ARCHIVE} exists: extract it (tar -xzf {ARCHIVE}) to create cifar-10-batches-py/, or "
                f"run `{fetch_command(NAME, root)}` (verifies and extracts it without downloading).")
    paths = find_files(NAME, root, origin, SUBDIRS, TRAIN_BATCHES + TEST_BATCHES, hint=hint)
    x_train, y_train = _read_split(paths, TRAIN_BATCHES, n_train, "n_train")
    x_test, y_test = _read_split(paths, TEST_BATCHES, n_test, "n_test")
    prepared = prepare_cifar_splits(NAME, x_train, y_train, x_test, standardize=standardize,
                                    validation=validation, train_subset=train_subset, split_seed=split_seed)
    return Dataset(
        name=NAME,
        x_train=prepared.x_train,
        y_train=prepared.y_train,
        x_test=prepared.x_test,
        y_test=torch.from_numpy(y_test),
        num_classes=NUM_CLASSES,
        input_shape=INPUT_SHAPE,
        x_val=prepared.x_val,
        y_val=prepared.y_val,
        description=(
            f"CIFAR-10 (Krizhevsky 2009, python batches from {paths[TEST_BATCHES[0]].parent}): "
            f"{len(prepared.y_train)} train / {len(y_test)} test, official split"
            f"{' (first n of each)' if n_train or n_test else ''}, {prepared.summary}"
        ),
    )
