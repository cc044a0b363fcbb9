"""imdb: Keras' imdb.npz written by the tests in its real format, Keras' preprocessing, splits, refusals."""

from __future__ import annotations

import io
import os
import zipfile

import numpy as np
import pytest
import torch

from normbench.data import DataFormatError, DataNotFoundError, load_dataset
from normbench.data.token_sequences import pad_pre


def _reviews(lists: list[list[int]]) -> np.ndarray:
    """An object array of int lists, as Keras' imdb.npz holds its reviews."""
    array = np.empty(len(lists), dtype=object)
    array[:] = [list(r) for r in lists]
    return array


def write_imdb(directory, train, y_train, test, y_test, name="imdb.npz"):
    """np.savez of x_train, y_train, x_test, y_test, the layout Keras downloads."""
    directory.mkdir(parents=True, exist_ok=True)
    np.savez(directory / name, x_train=_reviews(train), y_train=np.asarray(y_train, dtype=np.int64),
             x_test=_reviews(test), y_test=np.asarray(y_test, dtype=np.int64))
    return directory / name


def keras_reference(train, y_train, test, y_test, num_words, maxlen):
    """Keras' load_data + pad_sequences written out naively from their documentation."""
    rng = np.random.RandomState(113)
    out = []
    for reviews, labels in ((train, y_train), (test, y_test)):
        order = np.arange(len(reviews))
        rng.shuffle(order)
        rows, masks = [], []
        for i in order:
            ids = [1] + [w + 3 for w in reviews[i]]
            ids = [w if w < num_words else 2 for w in ids]
            kept = ids[-maxlen:]
            rows.append([0] * (maxlen - len(kept)) + kept)
            masks.append([False] * (maxlen - len(kept)) + [True] * len(kept))
        out.append((np.array(rows), np.array(masks), np.asarray(labels)[order]))
    return out


def _random_reviews(rng, n, longest=12):
    return [rng.integers(1, 30, size=rng.integers(0, longest)).tolist() for _ in range(n)]


def test_hand_computed_example(tmp_path):
    write_imdb(tmp_path, [[1, 5, 20, 2], [1, 2, 3, 4, 5, 6, 7, 8]], [0, 1], [[4]], [1])
    ds = load_dataset("imdb", data_dir=str(tmp_path), num_words=10, maxlen=6, validation=0)
    assert ds.input_shape == (1, 6) and ds.num_classes == 2 and ds.x_val is None
    rows = {int(y): x[0].long().tolist() for x, y in zip(ds.x_train, ds.y_train)}
    # ranks + 3 behind start char 1; ids >= 10 become 2 (OOV); pre-padding with 0
    assert rows[0] == [0, 1, 4, 8, 2, 5]
    # 9 ids, the first three truncated away (pre-truncation)
    assert rows[1] == [6, 7, 8, 9, 2, 2]
    masks = {int(y): m.tolist() for m, y in zip(ds.mask_train, ds.y_train)}
    assert masks[0] == [False] + [True] * 5 and masks[1] == [True] * 6
    assert ds.x_test[0, 0].tolist() == [0, 0, 0, 0, 1, 7] and ds.mask_test[0].sum() == 2


@pytest.mark.parametrize("num_words, maxlen", [(10, 5), (40, 14)])
def test_matches_keras_preprocessing_in_keras_order(tmp_path, num_words, maxlen):
    rng = np.random.default_rng(0)
    train, test = _random_reviews(rng, 23), _random_reviews(rng, 9)
    y_train, y_test = rng.integers(0, 2, 23), rng.integers(0, 2, 9)
    write_imdb(tmp_path, train, y_train, test, y_test)
    ds = load_dataset("imdb", data_dir=str(tmp_path), num_words=num_words, maxlen=maxlen, validation=0)
    (tr_x, tr_m, tr_y), (te_x, te_m, te_y) = keras_reference(train, y_train, test, y_test, num_words, maxlen)
    assert ds.x_train.dtype == torch.float32 and ds.x_train.shape == (23, 1, maxlen)
    assert np.array_equal(ds.x_train[:, 0].numpy(), tr_x) and np.array_equal(ds.mask_train.numpy(), tr_m)
    assert np.array_equal(ds.y_train.numpy(), tr_y)
    assert np.array_equal(ds.x_test[:, 0].numpy(), te_x) and np.array_equal(ds.mask_test.numpy(), te_m)
    assert np.array_equal(ds.y_test.numpy(), te_y)


def test_validation_split_is_a_seeded_part_of_the_training_set(tmp_path):
    rng = np.random.default_rng(1)
    train, y_train = _random_reviews(rng, 20), rng.integers(0, 2, 20)
    write_imdb(tmp_path, train, y_train, [[1]], [0])
    whole = load_dataset("imdb", data_dir=str(tmp_path), validation=0)
    ds = load_dataset("imdb", data_dir=str(tmp_path), validation=6, split_seed=4)
    assert (ds.n_train, ds.n_val) == (14, 6) and ds.mask_val.shape == (6, 80)
    order = np.random.default_rng(4).permutation(20)
    assert torch.equal(ds.x_val, whole.x_train[order[:6]]) and torch.equal(ds.y_val, whole.y_train[order[:6]])
    assert torch.equal(ds.x_train, whole.x_train[order[6:]])
    assert torch.equal(ds.mask_train, whole.mask_train[order[6:]])
    other = load_dataset("imdb", data_dir=str(tmp_path), validation=6, split_seed=5)
    assert not torch.equal(other.x_val, ds.x_val)
    assert "14 train / 6 validation / 1 test" in ds.description


def test_found_in_the_imdb_subdirectory_via_the_environment(tmp_path, monkeypatch):
    write_imdb(tmp_path / "imdb", [[1, 2]] * 3, [0, 1, 0], [[3]], [1])
    monkeypatch.setenv("NORMBENCH_DATA", str(tmp_path))
    assert load_dataset("imdb", validation=1).n_train == 2


def test_missing_file_names_the_place_and_the_fetch_command(tmp_path):
    with pytest.raises(DataNotFoundError) as err:
        load_dataset("imdb", data_dir=str(tmp_path))
    assert "imdb.npz" in str(err.value) and str(tmp_path) in str(err.value)
    assert "normbench data fetch imdb" in str(err.value)
    with pytest.raises(DataNotFoundError, match="does not exist(.|\n)*normbench data fetch imdb"):
        load_dataset("imdb")


def _npz_with(directory, members: dict[str, bytes]):
    path = directory / "imdb.npz"
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in members.items():
            archive.writestr(f"{name}.npy", content)
    return path


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


class _Payload:
    """Unpickling this would create a directory: the loader must refuse it before."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_a_pickle_that_calls_code_is_refused_and_never_run(tmp_path):
    marker = tmp_path / "pwned"
    hostile = np.empty(1, dtype=object)
    hostile[0] = _Payload(marker)
    good = _reviews([[1, 2]])
    labels = _npy(np.array([1]))
    _npz_with(tmp_path, {"x_train": _npy(hostile), "y_train": labels, "x_test": _npy(good), "y_test": labels})
    with pytest.raises(DataFormatError, match=r"array 'x_train' is unreadable.*refused to load global .*mkdir"):
        load_dataset("imdb", data_dir=str(tmp_path), validation=0)
    assert not marker.exists()


@pytest.mark.parametrize(
    "members, fragment",
    [
        ({"x_train": _npy(_reviews([[1]]))}, "no array 'y_train'"),
        ({"x_train": _npy(_reviews([[1], [2]])), "y_train": _npy(np.array([0, 3])), "x_test": _npy(_reviews([[1]])),
          "y_test": _npy(np.array([1]))}, "y_train must hold the labels 0 and 1"),
        ({"x_train": _npy(_reviews([[1], [2]])), "y_train": _npy(np.array([0])), "x_test": _npy(_reviews([[1]])),
          "y_test": _npy(np.array([1]))}, "equal length"),
        ({"x_train": _npy(_reviews([["a"]])), "y_train": _npy(np.array([0])), "x_test": _npy(_reviews([[1]])),
          "y_test": _npy(np.array([1]))}, "a review is not a list of integers"),
    ],
)
def test_malformed_archives_are_named(tmp_path, members, fragment):
    _npz_with(tmp_path, members)
    with pytest.raises(DataFormatError, match=fragment):
        load_dataset("imdb", data_dir=str(tmp_path), validation=0)


def test_not_a_zip_is_a_format_error(tmp_path):
    (tmp_path / "imdb.npz").write_bytes(b"not a zip")
    with pytest.raises(DataFormatError, match="not an np.savez archive"):
        load_dataset("imdb", data_dir=str(tmp_path))


@pytest.mark.parametrize(
    "options, fragment",
    [
        ({"num_words": 3}, "option 'num_words' must be an integer >= 4"),
        ({"maxlen": 0}, "option 'maxlen' must be an integer >= 1"),
        ({"validation": 3}, "option 'validation' is 3 but the training data holds 3 samples"),
        ({"split_seed": -1}, "option 'split_seed'"),
    ],
)
def test_bad_options_are_named(tmp_path, options, fragment):
    write_imdb(tmp_path, [[1]] * 3, [0, 1, 0], [[1]], [0])
    with pytest.raises(ValueError, match="dataset 'imdb'") as err:
        load_dataset("imdb", data_dir=str(tmp_path), **options)
    assert fragment in str(err.value)


def test_pad_pre_matches_keras_pad_sequences_defaults():
    rng = np.random.default_rng(2)
    seqs = [rng.integers(1, 9, size=n).tolist() for n in (0, 1, 4, 7, 3)]
    ids, mask = pad_pre(np.array(sum(seqs, []), dtype=np.int64), np.array([len(s) for s in seqs]), 4)
    for row, m, seq in zip(ids, mask, seqs):
        kept = seq[-4:]
        assert row.tolist() == [0] * (4 - len(kept)) + kept
        assert m.tolist() == [False] * (4 - len(kept)) + [True] * len(kept)
