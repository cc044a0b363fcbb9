"""``imdb``: the IMDB movie-review sentiment set, read from Keras' ``imdb.npz`` in the data directory.

Source: Maas et al., "Learning Word Vectors for Sentiment Analysis", ACL 2011, as Keras ships it
(https://storage.googleapis.com/tensorflow/tf-keras-datasets/imdb.npz, its sha256 in :mod:`normbench.data.sources`):
an ``np.savez`` archive of ``x_train``, ``x_test`` (object arrays of 25,000 reviews each, every
review a list of word ranks, 1 = most frequent word) and ``y_train``, ``y_test`` (0 = negative,
1 = positive). ``normbench data fetch imdb`` puts it in the data directory; the loader never
downloads.

Preprocessing, as ``keras.datasets.imdb.load_data(num_words=...)`` followed by
``pad_sequences(maxlen=...)`` (what Ziaee & Çano ran):

* both sets shuffled with ``numpy.random.RandomState(113)`` (Keras' ``seed``), train first;
* every review starts with ``start_char`` 1 and every rank is shifted by ``index_from`` 3, so 0
  stays free for padding and 2 is ``oov_char``; ids ``>= num_words`` become 2;
* padded and truncated at the start to ``maxlen`` (:mod:`~normbench.data.token_sequences`), with a
  mask of the real tokens; stored as float32 ``(N, 1, maxlen)`` ids, ``input_shape (1, maxlen)``.

Validation: the (Keras-ordered) training set is shuffled once with ``split_seed`` and its first
``validation`` reviews are the validation split (:mod:`~normbench.data.validation_split`); the
test set is all 25,000 test reviews. Two classes (see ``stacked_lstm`` on two logits vs one).

Why no ``allow_pickle``: the reviews are object arrays, which NumPy stores as pickles, and
``np.load(allow_pickle=True)`` (what Keras does) would run any code a tampered file carries. The
archive is read member by member instead: plain arrays with ``allow_pickle=False``, the object
arrays with the restricted unpickler of :mod:`~normbench.data.cifar`, which builds nothing but
arrays, lists and numbers.
"""

from __future__ import annotations

import io
import itertools
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from normbench.data.cifar import RestrictedUnpickler
from normbench.data.datadir import DataFormatError, find_files, resolve_data_dir
from normbench.data.dataset import Dataset, dataset_from_splits
from normbench.data.token_sequences import pad_pre, token_tensor
from normbench.data.validation_split import check_split_options, split_indices
from normbench.options import Owner, check_int, check_seed

NAME = "imdb"
OWNER = Owner("dataset", NAME)
FILE = "imdb.npz"
SUBDIRS = ("", "imdb")
ARRAYS = ("x_train", "y_train", "x_test", "y_test")
KERAS_SEED, START_CHAR, OOV_CHAR, INDEX_FROM = 113, 1, 2, 3


class _ReviewUnpickler(RestrictedUnpickler):
    """The CIFAR loader's allow-list (arrays, lists, numbers), with a message about imdb.npz."""

    def find_class(self, module: str, name: str) -> Any:
        """The allowed object for ``module.name``; ``pickle.UnpicklingError`` for anything else."""
        try:
            return super().find_class(module, name)
        except pickle.UnpicklingError:
            raise pickle.UnpicklingError(
                f"refused to load global {module}.{name}: imdb.npz holds only arrays of integer lists"
            ) from None


def read_npz_member(archive: zipfile.ZipFile, name: str, path: Path) -> np.ndarray:
    """Array ``name`` of an ``np.savez`` archive; object arrays through the restricted unpickler."""
    try:
        with archive.open(f"{name}.npy") as handle:
            version = np.lib.format.read_magic(handle)
            shape, fortran, dtype = (np.lib.format.read_array_header_1_0(handle) if version == (1, 0)
                                     else np.lib.format.read_array_header_2_0(handle))
            if not dtype.hasobject:
                handle.seek(0)
                return np.lib.format.read_array(handle, allow_pickle=False)
            array = _ReviewUnpickler(io.BytesIO(handle.read()), encoding="bytes").load()
    except KeyError:
        raise DataFormatError(f"{path}: no array {name!r} (a Keras imdb.npz holds {', '.join(ARRAYS)})") from None
    except Exception as error:  # refused global, truncation, bad header: not the Keras file
        raise DataFormatError(f"{path}: array {name!r} is unreadable: {type(error).__name__}: {error}") from error
    if not isinstance(array, np.ndarray) or array.shape != shape:
        raise DataFormatError(f"{path}: array {name!r} does not match its header shape {shape}")
    return array


def read_imdb_npz(path: Path) -> dict[str, np.ndarray]:
    """``x_train``/``x_test`` (object arrays of int lists) and ``y_train``/``y_test`` (int64) from ``path``."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise DataFormatError(f"{path}: not an np.savez archive: {error}") from error
    with archive:
        arrays = {name: read_npz_member(archive, name, path) for name in ARRAYS}
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.ndim != 1 or y.ndim != 1 or len(x) != len(y) or len(x) == 0:
            raise DataFormatError(f"{path}: x_{split} and y_{split} must be non-empty 1-D arrays of equal length")
        if not np.issubdtype(y.dtype, np.integer) or not np.isin(y, (0, 1)).all():
            raise DataFormatError(f"{path}: y_{split} must hold the labels 0 and 1")
        arrays[f"y_{split}"] = y.astype(np.int64)
    return arrays


def keras_token_ids(reviews: np.ndarray, num_words: int, maxlen: int, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Keras' ids (start char, index_from shift, OOV at ``num_words``), pre-padded to ``maxlen``, and the mask."""
    try:
        lengths = np.fromiter((len(r) for r in reviews), dtype=np.int64, count=len(reviews))
        words = np.fromiter(itertools.chain.from_iterable(reviews), dtype=np.int64, count=int(lengths.sum()))
    except (TypeError, ValueError) as error:
        raise DataFormatError(f"{path}: a review is not a list of integers: {error}") from error
    if words.size and words.min() < 0:
        raise DataFormatError(f"{path}: negative word rank {int(words.min())}")
    ids = words + INDEX_FROM
    ids[ids >= num_words] = OOV_CHAR
    starts = np.cumsum(lengths) - lengths
    ids = np.insert(ids, starts, START_CHAR)  # one start char before each review
    return pad_pre(ids, lengths + 1, maxlen)


def _find_file(data_dir: str | None) -> Path:
    """Path of ``imdb.npz``; ``DataNotFoundError`` naming the place and the fetch command."""
    root, origin = resolve_data_dir(NAME, data_dir)
    return find_files(NAME, root, origin, SUBDIRS, [FILE])[FILE]


def load_imdb_dataset(
    *,
    data_dir: str | None = None,
    num_words: int = 20000,
    maxlen: int = 80,
    validation: int = 5000,
    split_seed: int = 0,
) -> Dataset:
    """Load ``imdb`` from Keras' ``imdb.npz``: pre-padded token ids ``(N, 1, maxlen)``, masks, a validation split."""
    num_words = check_int(OWNER, "num_words", num_words, INDEX_FROM + 1)
    maxlen = check_int(OWNER, "maxlen", maxlen, 1)
    seed = check_seed(OWNER, "split_seed", split_seed)
    path = _find_file(data_dir)
    arrays = read_imdb_npz(path)
    # Keras' load_data order: one RandomState(113) shuffles the training set, then the test set
    keras_rng = np.random.RandomState(KERAS_SEED)
    splits = {}
    for split in ("train", "test"):
        order = np.arange(len(arrays[f"y_{split}"]))
        keras_rng.shuffle(order)
        ids, mask = keras_token_ids(arrays[f"x_{split}"][order], num_words, maxlen, path)
        splits[split] = (ids, mask, arrays[f"y_{split}"][order])
    ids, mask, labels = splits["train"]
    validation, _ = check_split_options(NAME, len(labels), validation)
    val_idx, train_idx = split_indices(len(labels), validation, seed)
    test_ids, test_mask, test_labels = splits["test"]
    parts = {"train": (token_tensor(ids[train_idx]), labels[train_idx], mask[train_idx]),
             "test": (token_tensor(test_ids), test_labels, test_mask)}
    if validation:
        parts["val"] = (token_tensor(ids[val_idx]), labels[val_idx], mask[val_idx])
    return dataset_from_splits(
        NAME,
        parts,
        num_classes=2,
        input_shape=(1, maxlen),
        description=(
            f"IMDB reviews (Maas et al. 2011, Keras {FILE} from {path.parent}): {len(train_idx)} train / "
            f"{validation} validation / {len(test_labels)} test, {num_words} words, pre-padded to {maxlen}"
        ),
    )
