"""Measuring specs end to end: outcomes (completed, skipped, undefined, failed) and what each records."""

from dataclasses import replace

import pytest
import torch
from conftest import FAST_TIMING

from normbench.norms import create_norm
from normbench.throughput import ThroughputSpec, layer_spec, run_throughput, run_throughput_spec


def tiny(norm="batch", shape=(4, 4, 3, 3), **changes) -> ThroughputSpec:
    return replace(layer_spec(norm, shape, threads=1, **FAST_TIMING), **changes)


def test_layer_forward_backward_completes_with_every_number():
    result = run_throughput_spec(tiny(operation="forward_backward"))
    assert result.outcome == "completed", result.reason
    assert len(result.samples) >= 3 and result.median_s > 0 and result.iqr_s >= 0
    assert result.noisy in (True, False)
    assert result.bytes_moved == 8 * 4 * 4 * 3 * 3 * 4  # (3 + 5) passes of 144 float32 values
    assert result.copy_bytes == 2 * 144 * 4 and result.copy_median_s > 0
    assert result.roofline_fraction == pytest.approx(result.achieved_gbps / result.copy_gbps)
    assert result.peak_memory_bytes > 0 and "profiler" in result.peak_memory_method
    assert result.device_name and result.started_at <= result.finished_at
    assert result.load_avg is None or result.load_avg >= 0  # recorded where the OS reports it


def test_layer_forward_changes_running_statistics_in_train_mode_only():
    # the timed call is the real layer: BN in train mode updates its running mean, in eval it does not
    calls = {}
    original = create_norm

    def spy(name, num_features, **options):
        calls["module"] = original(name, num_features, **options)
        return calls["module"]

    import normbench.throughput.subjects as subjects

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(subjects, "create_norm", spy)
        run_throughput_spec(tiny(mode="train", peak_memory=False))
        assert calls["module"].num_batches_tracked.item() > 0
        run_throughput_spec(tiny(mode="eval", peak_memory=False))
        assert calls["module"].num_batches_tracked.item() == 0


def test_bfloat16_on_cpu_and_channels_last():
    result = run_throughput_spec(tiny(dtype="bfloat16", memory_format="channels_last", peak_memory=False))
    assert result.outcome == "completed", result.reason
    assert result.bytes_moved == 3 * 144 * 2


def test_absent_device_is_skipped_with_the_reason():
    result = run_throughput_spec(tiny(device="cuda:97"))
    assert result.outcome == "skipped"
    assert "cuda:97 unavailable" in result.reason and ("CUDA" in result.reason or "does not exist" in result.reason)
    assert result.samples == [] and result.median_s is None


def test_undefined_norm_is_recorded_not_raised():
    result = run_throughput_spec(tiny("instance", shape=(4, 4)))  # IN has no spatial axis on (N, C)
    assert result.outcome == "undefined" and "instance" in result.reason.lower()


def test_unsupported_kernel_is_skipped_and_other_errors_fail(monkeypatch):
    def unsupported(spec):
        raise RuntimeError('"batch_norm" not implemented for \'Half\'\nmore lines')

    monkeypatch.setattr("normbench.throughput.subjects.build_subject", unsupported)
    result = run_throughput_spec(tiny(dtype="float16"))
    assert result.outcome == "skipped" and "not implemented for 'Half'" in result.reason
    assert "\n" not in result.reason

    def broken(spec):
        raise ValueError("shape mismatch in the subject")

    monkeypatch.setattr("normbench.throughput.subjects.build_subject", broken)
    result = run_throughput_spec(tiny())
    assert result.outcome == "failed"
    assert result.reason.startswith("ValueError: shape mismatch in the subject") and "Traceback" in result.reason


def test_interrupt_is_not_swallowed(monkeypatch):
    def interrupted(spec):
        raise KeyboardInterrupt

    monkeypatch.setattr("normbench.throughput.subjects.build_subject", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_throughput_spec(tiny())


def test_copy_bandwidth_is_measured_once_per_tensor(monkeypatch):
    import normbench.throughput.roofline as roofline

    calls = []

    original = roofline.copy_step
    monkeypatch.setattr(roofline, "copy_step", lambda *a, **k: calls.append(a) or original(*a, **k))
    specs = [tiny(peak_memory=False), tiny(mode="eval", peak_memory=False), tiny(shape=(4, 4, 5), peak_memory=False)]
    results = list(run_throughput(specs))
    assert [r.outcome for r in results] == ["completed"] * 3
    assert len(calls) == 2  # two distinct shapes
    assert results[0].copy_samples == results[1].copy_samples


def test_model_steps_and_conv_bn_variants(write_suite):
    from conftest import tiny_suite

    from normbench.throughput import expand_throughput, load_throughput_suite

    suite = tiny_suite(
        layers=None, timing=dict(FAST_TIMING, peak_memory=False),
        models={"subjects": [{"name": "mlp", "input_shape": [6], "options": {"widths": [5]}},
                             {"name": "transformer", "input_shape": [2, 5], "options": {"d_model": 8, "heads": 2}}],
                "norms": ["none", "batch"], "batch_sizes": [3]},
        fused_conv_bn={"cases": [{"input_shape": [2, 3, 5, 5], "out_channels": 4}], "memory_formats": ["contiguous", "channels_last"]},
    )
    specs = expand_throughput(load_throughput_suite(write_suite(suite))[0])
    results = list(run_throughput(specs))
    assert [r.outcome for r in results] == ["completed"] * len(specs), [r.reason for r in results]
    assert all(r.bytes_moved is None and r.copy_median_s is None for r in results)  # roofline is for layers
    assert {(r.spec.subject, r.spec.variant) for r in results} >= {("conv_bn", "folded"), ("conv_bn", "unfolded")}


def test_folded_conv_computes_what_the_unfolded_pair_does():
    from normbench.throughput.subjects import build_subject

    # The timed callables must do the same maths: compare outputs through the modules they close over.
    spec = ThroughputSpec(
        suite="t", subject="conv_bn", name="conv_bn", norm="batch", norm_label="batch", shape=(2, 3, 5, 5),
        dtype="float32", memory_format="contiguous", mode="eval", operation="inference", device="cpu", threads=1,
        method="blocked", min_run_time=0.01, max_run_time=0.1, min_samples=2, warmup=0, warmup_time=0.0, peak_memory=False,
        copy_bandwidth=False, variant="unfolded", options=(("kernel_size", 3), ("out_channels", 4), ("stride", 1)),
    )
    unfolded = build_subject(spec).step.__closure__
    folded = build_subject(replace(spec, variant="folded")).step.__closure__
    modules = {type(c.cell_contents).__name__: c.cell_contents for c in unfolded}
    fused = next(c.cell_contents for c in folded if isinstance(c.cell_contents, torch.nn.Conv2d))
    x = next(c.cell_contents for c in unfolded if isinstance(c.cell_contents, torch.Tensor))
    with torch.no_grad():
        expected = modules["BatchNorm"](modules["Conv2d"](x))
        assert torch.allclose(fused(x), expected, atol=1e-5)
        assert not torch.allclose(modules["Conv2d"](x), expected, atol=1e-3)  # BN really changed something
