"""The ideal-bytes model, GB/s arithmetic and the roofline fraction, checked against hand counts."""

from dataclasses import replace

import pytest

from normbench.throughput import ThroughputResult, layer_spec
from normbench.throughput.roofline import copy_bytes, gigabytes_per_second, ideal_bytes, ideal_passes

SHAPE = (2, 3, 4, 5)  # 120 elements


def spec(norm="batch", **changes):
    return replace(layer_spec(norm, SHAPE, threads=1), **changes)


@pytest.mark.parametrize(
    "norm, mode, operation, expected",
    [
        # read x for statistics + read x to normalize + write y = 3 passes of 120 float32 values
        ("batch", "train", "forward", 3 * 120 * 4),
        # eval BN uses the running estimates: read x, write y
        ("batch", "eval", "forward", 2 * 120 * 4),
        # + backward with batch statistics: 2 reads (dy, x) for the reductions, 2 reads + 1 write for dx
        ("batch", "train", "forward_backward", (3 + 5) * 120 * 4),
        # + backward with fixed statistics: read dy and x once, write dx
        ("batch", "eval", "forward_backward", (2 + 3) * 120 * 4),
        ("batch_renorm", "eval", "forward", 2 * 120 * 4),
        # LN, GN, RMS and BLN compute statistics from the input in eval mode too
        ("layer", "eval", "forward", 3 * 120 * 4),
        ("group", "eval", "forward_backward", 8 * 120 * 4),
        ("batch_layer", "eval", "forward", 3 * 120 * 4),
        ("rms", "train", "forward", 3 * 120 * 4),
    ],
)
def test_bytes_by_hand(norm, mode, operation, expected):
    nbytes, text = ideal_bytes(spec(norm, mode=mode, operation=operation))
    assert nbytes == expected
    assert text  # the model is stated with every number


def test_element_size_follows_the_dtype():
    assert ideal_bytes(spec(dtype="bfloat16"))[0] == 3 * 120 * 2
    assert ideal_bytes(spec(dtype="float64"))[0] == 3 * 120 * 8


def test_options_that_change_the_statistics():
    assert ideal_passes("batch", "eval", "forward", {"track_running_stats": False})[0] == 3  # batch stats in eval
    assert ideal_passes("instance", "eval", "forward", {"track_running_stats": True})[0] == 2
    assert ideal_passes("instance", "eval", "forward", {})[0] == 3


def test_identity_and_non_layer_subjects_have_no_bytes():
    assert ideal_bytes(spec("none"))[0] is None
    assert ideal_bytes(spec(subject="model", operation="train_step")) == (None, "")


def test_gbps_and_roofline_arithmetic():
    s = spec()  # 3 × 480 = 1440 bytes per call
    result = ThroughputResult(spec=s, outcome="completed", median_s=2e-6, bytes_moved=1440,
                              copy_bytes=copy_bytes(s.numel, s.dtype), copy_median_s=0.5e-6)
    assert result.achieved_gbps == pytest.approx(1440 / 2e-6 / 1e9)  # 0.72 GB/s
    assert result.copy_gbps == pytest.approx(2 * 480 / 0.5e-6 / 1e9)  # 1.92 GB/s
    assert result.roofline_fraction == pytest.approx(0.72 / 1.92)
    assert result.items_per_s == pytest.approx(2 / 2e-6)  # batch of 2
    assert gigabytes_per_second(3e9, 1.5) == pytest.approx(2.0)
    with pytest.raises(ValueError):
        gigabytes_per_second(1.0, 0.0)


def test_missing_numbers_give_none_not_errors():
    result = ThroughputResult(spec=spec(), outcome="skipped")
    assert result.achieved_gbps is None and result.copy_gbps is None and result.roofline_fraction is None
    assert result.iqr_over_median is None and result.items_per_s is None
