"""cifar10: python batches pickled by the tests, per-channel standardization, and refusal of hostile pickles."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch

from normbench.data import DATA_DIR_ENV, DataFormatError, DataNotFoundError, load_dataset
from normbench.data.cifar import RestrictedUnpickler, read_batch, restricted_loads

BATCHES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
@pytest.mark.parametrize("bytes_keys", [True, False])
def test_load_cifar10(tmp_path, cifar_files, protocol, bytes_keys):
    files = cifar_files()
    files.write(tmp_path / "cifar-10-batches-py", protocol=protocol, bytes_keys=bytes_keys)
    ds = load_dataset("cifar10", data_dir=str(tmp_path))
    assert ds.name == "cifar10" and ds.num_classes == 10 and ds.input_shape == (3, 32, 32)
    assert ds.x_train.shape == (30, 3, 32, 32) and ds.x_test.shape == (5, 3, 32, 32)
    assert ds.x_train.dtype == torch.float32 and ds.y_train.dtype == torch.int64
    train, labels = files.train_arrays()
    assert np.array_equal(ds.y_train.numpy(), labels)
    assert np.array_equal(ds.y_test.numpy(), files.test[1])
    # channel c of an image is the c-th block of 1,024 values in its row (red, green, blue planes)
    raw = train.astype(np.float64)
    assert np.array_equal(train[3, 1].ravel(), files.train[0][0][3, 1024:2048])
    mean, std = raw.mean(axis=(0, 2, 3), keepdims=True), raw.std(axis=(0, 2, 3), keepdims=True)
    assert np.allclose(ds.x_train.numpy(), (raw - mean) / std, atol=1e-5)
    test = files.test[0].reshape(-1, 3, 32, 32).astype(np.float64)
    assert np.allclose(ds.x_test.numpy(), (test - mean) / std, atol=1e-5)
    assert "30 train / 5 test" in ds.description


def test_batches_directly_in_data_dir_via_environment(tmp_path, cifar_files, monkeypatch):
    cifar_files().write(tmp_path)
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))
    assert load_dataset("cifar10").n_train == 30


def test_first_n_reads_the_official_order(tmp_path, cifar_files):
    files = cifar_files()
    files.write(tmp_path)
    ds = load_dataset("cifar10", data_dir=str(tmp_path), n_train=8, n_test=2)
    train, labels = files.train_arrays()
    assert np.array_equal(ds.y_train.numpy(), labels[:8]) and ds.n_test == 2
    head = train[:8].astype(np.float64)
    mean, std = head.mean(axis=(0, 2, 3), keepdims=True), head.std(axis=(0, 2, 3), keepdims=True)
    assert np.allclose(ds.x_train.numpy(), (head - mean) / std, atol=1e-5)
    with pytest.raises(ValueError, match=r"option 'n_train' is 31 but the batches hold 30 images"):
        load_dataset("cifar10", data_dir=str(tmp_path), n_train=31)


def test_missing_batches_are_listed(tmp_path, cifar_files):
    cifar_files().write(tmp_path / "cifar-10-batches-py", skip=("data_batch_3",))
    with pytest.raises(DataNotFoundError) as info:
        load_dataset("cifar10", data_dir=str(tmp_path))
    message = str(info.value)
    for name in BATCHES:
        assert f"  {name}\n" in message
    assert f"  {tmp_path}: missing {', '.join(BATCHES)}\n" in message
    assert f"  {tmp_path / 'cifar-10-batches-py'}: missing data_batch_3\n" in message
    assert "--data-dir" in message and "NORMBENCH_DATA" in message


def test_unextracted_archive_gets_a_hint(tmp_path):
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(b"not really")
    with pytest.raises(DataNotFoundError, match=r"cifar-10-python.tar.gz exists: extract it"):
        load_dataset("cifar10", data_dir=str(tmp_path))


def test_no_data_dir_means_the_cache_and_names_the_fetch_command():
    with pytest.raises(DataNotFoundError, match=r"dataset 'cifar10': .*per-user cache directory.*"
                       r"`normbench data fetch cifar10`.*--data-dir.*NORMBENCH_DATA"):
        load_dataset("cifar10")


class _RunsCommand:
    """Unpickling this calls os.system: what a hostile 'batch' would do."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


class _CallsEval:
    def __reduce__(self):
        return eval, ("1 + 1",)


def test_malicious_pickle_is_refused_and_not_run(tmp_path, cifar_files):
    cifar_files().write(tmp_path)
    marker = tmp_path / "pwned"
    payload = {b"data": _RunsCommand(f"touch {marker}"), b"labels": [0]}
    (tmp_path / "data_batch_2").write_bytes(pickle.dumps(payload, protocol=2))
    with pytest.raises(DataFormatError, match=r"data_batch_2: not a CIFAR-10 python batch: UnpicklingError: "
                       r"refused to load global (posix|nt)\.system"):
        load_dataset("cifar10", data_dir=str(tmp_path))
    assert not marker.exists()


@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
def test_restricted_unpickler_refuses_builtins_that_run_code(protocol):
    with pytest.raises(pickle.UnpicklingError, match=r"refused to load global (builtins|__builtin__)\.eval"):
        restricted_loads(pickle.dumps(_CallsEval(), protocol=protocol))


def test_restricted_unpickler_refuses_other_numpy_functions():
    # numpy exposes functions that evaluate strings; only the array reconstructors are allowed
    class _NumpyGadget:
        def __reduce__(self):
            return np.load, ("/etc/passwd",)

    with pytest.raises(pickle.UnpicklingError, match=r"refused to load global numpy\.load"):
        restricted_loads(pickle.dumps(_NumpyGadget()))


@pytest.mark.parametrize("protocol", [0, 1, 2, 3, 4, 5])
def test_restricted_unpickler_loads_plain_data_and_arrays(protocol):
    value = {b"data": np.arange(12, dtype=np.uint8).reshape(3, 4), "labels": [1, 2, 3], "t": (1.5, True, None),
             b"strided": np.arange(10, dtype=np.uint8)[::2]}
    loaded = restricted_loads(pickle.dumps(value, protocol=protocol))
    assert np.array_equal(loaded[b"data"], value[b"data"]) and loaded["labels"] == [1, 2, 3]
    assert np.array_equal(loaded[b"strided"], [0, 2, 4, 6, 8]) and loaded["t"] == (1.5, True, None)


def test_unpickler_is_a_pickle_unpickler():
    assert issubclass(RestrictedUnpickler, pickle.Unpickler)


@pytest.mark.parametrize(
    "batch, message",
    [
        ([1, 2], r"holds a list, not a dict"),
        ({b"labels": [0]}, r"no 'data' entry"),
        ({b"data": np.zeros((2, 3072), np.uint8)}, r"no 'labels' entry"),
        ({b"data": np.zeros((2, 3071), np.uint8), b"labels": [0, 1]},
         r"'data' must be a uint8 array of shape \(N, 3072\)"),
        ({b"data": np.zeros((2, 3072), np.float32), b"labels": [0, 1]}, r"got float32 array"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}, r"1 labels for 2 images"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]}, r"labels must lie in 0-9; found 0..10"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": ["a", "b"]}, r"'labels' must be a list of integers"),
    ],
)
def test_malformed_batches_name_the_file(tmp_path, batch, message):
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps(batch))
    with pytest.raises(DataFormatError, match=message) as info:
        read_batch(path)
    assert str(path) in str(info.value)


def test_truncated_pickle(tmp_path, cifar_files):
    cifar_files().write(tmp_path)
    path = tmp_path / "test_batch"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(DataFormatError, match=r"test_batch: not a CIFAR-10 python batch"):
        load_dataset("cifar10", data_dir=str(tmp_path))


def test_numpy_1_module_names_are_accepted():
    # The official batches (and numpy < 2) name numpy.core.multiarray; numpy 2 writes numpy._core.
    pickled = pickle.dumps({b"data": np.arange(6, dtype=np.uint8)}, protocol=2)
    legacy = pickled.replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")
    assert b"cnumpy.core.multiarray\n_reconstruct\n" in legacy
    assert np.array_equal(restricted_loads(legacy)[b"data"], np.arange(6))
