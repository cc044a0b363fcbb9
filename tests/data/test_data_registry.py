"""load_dataset / available_datasets / Dataset: names, option checking and the dataclass contract."""

from __future__ import annotations

import pytest
import torch

from normbench.data import Dataset, available_datasets, dataset_options, load_dataset


def test_available_datasets():
    assert available_datasets() == [
        "adding", "blobs", "cifar10", "digits", "fashion_mnist", "imdb", "mnist", "mnist1d", "mnist1d_varlen", "tokens",
    ]
    assert available_datasets() == sorted(available_datasets())


def test_dataset_options_lists_names_and_defaults():
    assert dataset_options("digits") == {"test_fraction": 0.25, "split_seed": 0, "validation": 0, "pixel_order": "image"}
    assert dataset_options("mnist1d") == {"split_seed": 42, "num_samples": 5000}
    assert dataset_options("mnist1d_varlen") == {"min_length": 20, "split_seed": 42, "num_samples": 5000}
    assert dataset_options("adding") == {
        "n_train": 10000, "n_test": 1000, "min_length": 50, "max_length": 100, "split_seed": 0,
    }
    assert dataset_options("blobs") == {
        "n_samples": 2000, "n_features": 16, "num_classes": 10, "cluster_std": 8.0, "test_fraction": 0.25,
        "split_seed": 0,
    }
    assert dataset_options("mnist") == {"data_dir": None, "n_train": None, "n_test": None, "pixel_order": "image",
                                        "permutation_seed": 0}
    assert dataset_options("fashion_mnist") == {"data_dir": None, "n_train": None, "n_test": None}
    assert dataset_options("cifar10") == {
        "data_dir": None, "n_train": None, "n_test": None, "standardize": "channel", "validation": 0,
        "train_subset": None, "split_seed": 0,
    }
    assert dataset_options("imdb") == {
        "data_dir": None, "num_words": 20000, "maxlen": 80, "validation": 5000, "split_seed": 0,
    }


def test_unknown_dataset_lists_available_names():
    with pytest.raises(
        ValueError,
        match=r"unknown dataset 'mnist2'; available datasets: adding, blobs, cifar10, digits, fashion_mnist, imdb, mnist, "
        r"mnist1d, mnist1d_varlen, tokens",
    ):
        load_dataset("mnist2")


def test_unknown_option_lists_allowed_options():
    with pytest.raises(
        ValueError,
        match=r"dataset 'digits': unknown option 'test_size'; allowed options: pixel_order, split_seed, test_fraction, validation",
    ):
        load_dataset("digits", test_size=0.2)


def _tensors(n_train=4, n_test=2, shape=(1, 3, 3)):
    return dict(
        x_train=torch.zeros(n_train, *shape), y_train=torch.zeros(n_train, dtype=torch.int64),
        x_test=torch.zeros(n_test, *shape), y_test=torch.zeros(n_test, dtype=torch.int64),
    )


def test_dataset_dataclass_fields_and_sizes():
    ds = Dataset(name="toy", num_classes=2, input_shape=(1, 3, 3), description="toy: 4 train / 2 test",
                 **_tensors())
    assert (ds.n_train, ds.n_test) == (4, 2)
    assert ds.mask_train is None and ds.mask_test is None


@pytest.mark.parametrize(
    "change, message",
    [
        ({"x_train": torch.zeros(4, 1, 3, 3, dtype=torch.float64)}, "must be float32"),
        ({"y_test": torch.zeros(3, dtype=torch.int64)}, "differ in length"),
        ({"input_shape": (1, 9)}, "input_shape says"),
        ({"mask_train": torch.ones(4, 3, 3)}, "mask_train must be bool"),
        ({"mask_test": torch.ones(2, 3, dtype=torch.bool)}, "mask_test must be bool"),
    ],
)
def test_dataset_rejects_inconsistent_tensors(change, message):
    fields = dict(name="toy", num_classes=2, input_shape=(1, 3, 3), **_tensors())
    fields.update(change)
    with pytest.raises(ValueError, match=message):
        Dataset(**fields)


def test_dataset_accepts_matching_masks():
    ds = Dataset(name="toy", num_classes=2, input_shape=(1, 3, 3),
                 mask_train=torch.ones(4, 3, 3, dtype=torch.bool),
                 mask_test=torch.ones(2, 3, 3, dtype=torch.bool), **_tensors())
    assert ds.mask_train.shape == (4, 3, 3)


def test_task_defaults_to_classification_and_is_validated():
    ds = Dataset(name="toy", num_classes=2, input_shape=(1, 3, 3), **_tensors())
    assert ds.task == "classification"
    with pytest.raises(ValueError, match=r"task must be one of classification, regression; got 'ranking'"):
        Dataset(name="toy", num_classes=2, input_shape=(1, 3, 3), task="ranking", **_tensors())


def _regression_tensors(n_train=4, n_test=2):
    return dict(x_train=torch.zeros(n_train, 2, 5), y_train=torch.zeros(n_train),
                x_test=torch.zeros(n_test, 2, 5), y_test=torch.zeros(n_test))


def test_regression_dataset_has_float_targets_and_one_output():
    ds = Dataset(name="reg", num_classes=1, input_shape=(2, 5), task="regression", **_regression_tensors())
    assert ds.y_train.dtype == torch.float32
    with pytest.raises(ValueError, match=r"a regression dataset has num_classes 1 \(the output dimension\); got 3"):
        Dataset(name="reg", num_classes=3, input_shape=(2, 5), task="regression", **_regression_tensors())
    with pytest.raises(ValueError, match=r"y_train float32 for a regression task"):
        Dataset(name="reg", num_classes=1, input_shape=(2, 5), task="regression",
                **{**_regression_tensors(), "y_train": torch.zeros(4, dtype=torch.int64)})
    with pytest.raises(ValueError, match=r"y_train int64 for a classification task"):
        Dataset(name="cls", num_classes=2, input_shape=(2, 5), **_regression_tensors())


def test_validation_split_is_optional_and_checked_like_the_others():
    ds = Dataset(name="toy", num_classes=2, input_shape=(1, 3, 3), **_tensors())
    assert ds.x_val is None and ds.y_val is None and ds.mask_val is None and ds.n_val == 0
    val = dict(x_val=torch.zeros(3, 1, 3, 3), y_val=torch.zeros(3, dtype=torch.int64),
               mask_val=torch.ones(3, 3, 3, dtype=torch.bool))
    assert Dataset(name="toy", num_classes=2, input_shape=(1, 3, 3), **_tensors(), **val).n_val == 3
    for change, message in [
        ({"y_val": None}, "x_val and y_val come together"),
        ({"x_val": torch.zeros(3, 1, 3, 4)}, r"x_val samples have shape \(1, 3, 4\)"),
        ({"y_val": torch.zeros(2, dtype=torch.int64)}, "x_val and y_val differ in length"),
        ({"mask_val": torch.ones(3, 3, dtype=torch.bool)}, "mask_val must be bool"),
    ]:
        with pytest.raises(ValueError, match=message):
            Dataset(name="toy", num_classes=2, input_shape=(1, 3, 3), **_tensors(), **{**val, **change})


def test_dataset_from_splits_takes_arrays_over_and_leaves_missing_masks_out():
    import numpy as np

    from normbench.data.dataset import dataset_from_splits

    x = np.arange(24, dtype=np.float32).reshape(4, 1, 6)
    y = np.array([0, 1, 1, 0], dtype=np.int64)
    mask = np.arange(6)[None, :] < np.array([6, 5, 4, 3])[:, None]
    ds = dataset_from_splits("toy", {"train": (x, y, mask), "test": (torch.zeros(2, 1, 6), y[:2], mask[:2]),
                                     "val": (x[:1], y[:1], None)},
                             num_classes=2, input_shape=(1, 6), description="toy sequences")
    assert ds.x_train.data_ptr() == x.ctypes.data  # no copy, as torch.from_numpy
    assert torch.equal(ds.mask_train, torch.from_numpy(mask)) and ds.mask_train.dtype == torch.bool
    assert ds.y_test.tolist() == [0, 1] and ds.n_val == 1 and ds.mask_val is None
    assert (ds.name, ds.description, ds.task) == ("toy", "toy sequences", "classification")
    with pytest.raises(ValueError, match=r"x_train samples have shape \(1, 6\), input_shape says \(6,\)"):
        dataset_from_splits("toy", {"train": (x, y, None), "test": (x, y, None)}, num_classes=2, input_shape=(6,),
                            description="")
