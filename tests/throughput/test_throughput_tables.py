"""Derived tables: a norm's step cost relative to `none`, and the conv+BN folding speedup."""

import pandas as pd
import pytest

from normbench.frames import THROUGHPUT_COLUMNS
from normbench.throughput.tables import folding_speedup, norm_step_cost


def row(**values):
    base = {c: None for c in THROUGHPUT_COLUMNS}
    base.update(suite="s", shape="[64, 784]", dtype="float32", memory_format="contiguous", device="cpu", threads=2,
                outcome="completed", noisy=False, variant="")
    base.update(values)
    return base


def test_norm_step_cost_by_hand():
    frame = pd.DataFrame([
        row(subject="model", label="mlp", norm="none", norm_label="none", operation="train_step", median_s=1.0),
        row(subject="model", label="mlp", norm="batch", norm_label="batch", operation="train_step", median_s=1.5,
            noisy=True),
        row(subject="model", label="mlp", norm="batch", norm_label="batch", operation="inference", median_s=0.4),
        row(subject="model", label="cnn", norm="batch", norm_label="batch", operation="train_step", median_s=9.0,
            outcome="failed"),
    ])
    table = norm_step_cost(frame)
    # the inference row has no `none` partner and the failed row is not a measurement
    assert table[["norm_label", "ratio", "extra_s", "noisy"]].values.tolist() == [
        ["none", 1.0, 0.0, False], ["batch", 1.5, 0.5, True],
    ]


def test_folding_speedup_by_hand():
    frame = pd.DataFrame([
        row(subject="conv_bn", label="c", variant="unfolded", median_s=3.0),
        row(subject="conv_bn", label="c", variant="folded", median_s=2.0),
        row(subject="conv_bn", label="d", variant="unfolded", median_s=3.0),
        row(subject="conv_bn", label="d", variant="folded", median_s=1.0, outcome="skipped"),
    ])
    table = folding_speedup(frame)
    assert table["label"].tolist() == ["c"] and table["speedup"].iloc[0] == pytest.approx(1.5)
    assert folding_speedup(pd.DataFrame(columns=THROUGHPUT_COLUMNS)).empty
