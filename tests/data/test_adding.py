"""adding: targets recomputed step by step, marker placement per half, padding masks, seeding, regression fields."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from normbench.data import load_dataset


def _small(**options):
    return load_dataset("adding", **{"n_train": 300, "n_test": 100, "min_length": 6, "max_length": 30, **options})


def test_shapes_dtypes_and_regression_convention():
    ds = load_dataset("adding")
    assert ds.name == "adding" and ds.task == "regression" and ds.num_classes == 1
    assert ds.x_train.shape == (10000, 2, 100) and ds.x_test.shape == (1000, 2, 100)
    assert ds.input_shape == (2, 100)
    assert ds.y_train.dtype == ds.y_test.dtype == torch.float32 and ds.y_train.shape == (10000,)
    assert ds.mask_train.shape == (10000, 100) and ds.mask_train.dtype == torch.bool
    assert "10000 train / 1000 test" in ds.description


@pytest.mark.parametrize("split", ["train", "test"])
def test_targets_are_the_sum_of_the_two_marked_values(split):
    ds = _small(split_seed=4)
    x, y, mask = (getattr(ds, f"{f}_{split}").numpy() for f in ("x", "y", "mask"))
    assert len(y) > 0
    for i in range(len(y)):
        length = int(mask[i].sum())
        values, markers = x[i, 0], x[i, 1]
        marked = [t for t in range(x.shape[2]) if markers[t] == 1.0]
        assert len(marked) == 2 and set(np.unique(markers)) <= {0.0, 1.0}
        first, second = marked
        assert 0 <= first < length // 2 <= second < length  # one marker in each half of the valid part
        assert y[i] == pytest.approx(values[first] + values[second], abs=1e-6)


def test_values_lengths_mask_and_padding():
    ds = _small(split_seed=1)
    for x, mask in ((ds.x_train, ds.mask_train), (ds.x_test, ds.mask_test)):
        lengths = mask.sum(dim=1)
        assert lengths.min() >= 6 and lengths.max() <= 30 and len(set(lengths.tolist())) > 15
        assert torch.equal(mask, torch.arange(30)[None, :] < lengths[:, None])
        assert (x.permute(0, 2, 1)[~mask] == 0).all()  # both channels zero on padded steps
        values = x[:, 0][mask]
        assert values.min() >= 0 and values.max() < 1 and 0.4 < values.mean() < 0.6


def test_constant_prediction_baseline_is_about_one_sixth():
    y = load_dataset("adding", n_train=20000, n_test=10, max_length=20, min_length=2).y_train
    assert ((y - 1) ** 2).mean().item() == pytest.approx(1 / 6, abs=0.01)


def test_fixed_length_when_min_equals_max():
    ds = _small(min_length=12, max_length=12)
    assert ds.mask_train.all() and ds.x_train.shape == (300, 2, 12)


def test_length_two_puts_one_marker_on_each_step():
    ds = _small(min_length=2, max_length=2)
    assert (ds.x_train[:, 1] == 1).all()
    assert torch.allclose(ds.y_train, ds.x_train[:, 0].sum(dim=1))


def test_split_depends_on_split_seed_and_test_set_not_on_n_train():
    a, b = _small(split_seed=3), _small(split_seed=3)
    for field in ("x_train", "y_train", "x_test", "y_test", "mask_train", "mask_test"):
        assert torch.equal(getattr(a, field), getattr(b, field)), field
    assert not torch.equal(a.x_train, _small(split_seed=4).x_train)
    more = _small(split_seed=3, n_train=500)
    assert torch.equal(a.x_test, more.x_test) and torch.equal(a.y_test, more.y_test)


def test_loading_does_not_touch_the_global_rngs():
    torch.manual_seed(0)
    np.random.seed(0)
    _small()
    after = torch.rand(1), np.random.rand()
    torch.manual_seed(0)
    np.random.seed(0)
    assert after == (torch.rand(1), np.random.rand())


@pytest.mark.parametrize(
    "options, message",
    [
        ({"min_length": 1}, r"option 'min_length' must be an integer >= 2; got 1"),
        ({"max_length": 1.5}, r"option 'max_length' must be an integer >= 2"),
        ({"min_length": 40, "max_length": 30}, r"option 'min_length' \(40\) must not exceed 'max_length' \(30\)"),
        ({"n_train": 0}, r"option 'n_train' must be an integer >= 1"),
        ({"n_test": "5"}, r"option 'n_test' must be an integer >= 1"),
        ({"split_seed": -3}, r"option 'split_seed' must be an integer in \[0, 2\*\*32\)"),
    ],
)
def test_bad_option_values(options, message):
    with pytest.raises(ValueError, match=r"dataset 'adding': " + message):
        load_dataset("adding", **options)
