"""tokens: generated pre-padded token sequences — layout, class signal, seeded splits, and the LSTM path."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from normbench.data import load_dataset
from normbench.models import create_model
from normbench.norms import create_norm

SMALL = {"n_train": 300, "n_val": 50, "n_test": 200, "vocab_size": 60, "signal_tokens": 5, "min_length": 4,
         "max_length": 12}


def test_layout_masks_and_lengths():
    ds = load_dataset("tokens", **SMALL)
    assert ds.input_shape == (1, 12) and ds.num_classes == 2
    assert ds.x_train.shape == (300, 1, 12) and ds.x_val.shape == (50, 1, 12) and ds.x_test.shape == (200, 1, 12)
    for x, mask in ((ds.x_train, ds.mask_train), (ds.x_val, ds.mask_val), (ds.x_test, ds.mask_test)):
        ids = x[:, 0].long()
        assert torch.equal(ids != 0, mask)  # 0 is padding only
        lengths = mask.sum(1)
        assert lengths.min() >= 4 and lengths.max() <= 12
        # pre-padded: real tokens are a suffix, and each starts with the start token 1
        assert torch.equal(mask, torch.arange(12) >= (12 - lengths)[:, None])
        assert torch.all(ids[torch.arange(len(ids)), 12 - lengths] == 1)
        assert not torch.any(ids == 2)  # Keras' OOV id is never drawn
        assert int(ids.max()) < 60


def test_signal_tokens_belong_to_their_class_and_carry_it():
    ds = load_dataset("tokens", **{**SMALL, "n_test": 2000})
    ids, labels = ds.x_test[:, 0].long().numpy(), ds.y_test.numpy()
    signal_class = np.full(60, -1)
    signal_class[3:8], signal_class[8:13] = 0, 1  # classes own ids 3-7 and 8-12
    seen = signal_class[ids]
    for k in (0, 1):
        assert not np.any(seen[labels == k] == 1 - k)  # no sequence holds the other class's signal
    # counting signal tokens per class recovers the label far above chance
    votes = np.stack([(seen == k).sum(1) for k in (0, 1)], axis=1)
    decided = votes[:, 0] != votes[:, 1]
    assert np.mean(votes[decided].argmax(1) == labels[decided]) == 1.0
    assert 0.4 < labels.mean() < 0.6 and decided.mean() > 0.4


def test_splits_are_seeded_and_independent_of_each_other():
    a = load_dataset("tokens", **SMALL)
    b = load_dataset("tokens", **{**SMALL, "n_train": 100, "n_val": 0})
    assert torch.equal(a.x_test, b.x_test) and b.x_val is None
    c = load_dataset("tokens", **{**SMALL, "split_seed": 1})
    assert not torch.equal(a.x_test, c.x_test)
    assert torch.equal(load_dataset("tokens", **SMALL).x_val, a.x_val)


@pytest.mark.parametrize(
    "options, fragment",
    [
        ({"vocab_size": 13}, "option 'vocab_size' must be an integer >= 14"),
        ({"min_length": 12, "max_length": 5}, "option 'max_length' must be an integer >= 12"),
        ({"signal_rate": 1.0}, "option 'signal_rate' must be a number in (0, 1)"),
        ({"num_classes": 1}, "option 'num_classes' must be an integer >= 2"),
    ],
)
def test_bad_options_are_named(options, fragment):
    with pytest.raises(ValueError, match="dataset 'tokens'") as err:
        load_dataset("tokens", **{**SMALL, **options})
    assert fragment in str(err.value)


def test_embedding_and_stacked_lstm_path_runs_on_it():
    ds = load_dataset("tokens", **SMALL)
    torch.manual_seed(0)
    model = create_model("stacked_lstm", norm=functools.partial(create_norm, "batch_layer"),
                         input_shape=ds.input_shape, num_classes=ds.num_classes, vocab_size=60, embedding_dim=8,
                         hidden_sizes=[8, 4], dense_width=4)
    loss = torch.nn.functional.cross_entropy(model(ds.x_train[:16], ds.mask_train[:16]), ds.y_train[:16])
    loss.backward()
    assert torch.isfinite(loss) and model.embed.weight.grad is not None
