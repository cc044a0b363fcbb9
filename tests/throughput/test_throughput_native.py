"""The native column: torch's own module for a layer, equal to it, timed beside it, ratio stored."""

from dataclasses import replace

import pytest
import torch
from conftest import FAST_TIMING

from normbench.norms import create_norm
from normbench.throughput import layer_spec, run_throughput_spec
from normbench.throughput.native import NO_EQUIVALENT, native_twin

TWINS = [
    ("none", {}, (5, 4), "Identity"),
    ("batch", {}, (6, 4), "BatchNorm1d"),
    ("batch", {"momentum": None}, (6, 4, 5), "BatchNorm1d"),
    ("batch", {"track_running_stats": False}, (4, 4, 3, 3), "BatchNorm2d"),
    ("batch", {}, (3, 4, 2, 2, 2), "BatchNorm3d"),
    ("layer", {}, (5, 4), "LayerNorm"),
    ("layer", {"eps": 1e-3}, (5, 4, 3, 3), "GroupNorm"),
    ("group", {"num_groups": 2}, (5, 4, 6), "GroupNorm"),
    ("instance", {}, (5, 4, 6), "InstanceNorm1d"),
    ("instance", {"track_running_stats": True}, (5, 4, 3, 3), "InstanceNorm2d"),
    ("rms", {}, (5, 4), "RMSNorm"),
]


@pytest.mark.parametrize("name,options,shape,cls", TWINS)
def test_twin_computes_the_layer_exactly(name, options, shape, cls):
    """Same outputs, gradients and running estimates, in train and then in eval mode: the twin
    is the same layer, so the ratio measures the wrapper alone."""
    ours = create_norm(name, shape[1], **options).double()
    with torch.no_grad():  # non-trivial affine parameters, copied into the twin
        for p in ours.parameters():
            p.copy_(torch.linspace(0.5, 1.5, p.numel(), dtype=torch.float64))
    twin, description = native_twin(ours, shape)
    assert type(twin).__name__ == cls and description.startswith(f"torch.nn.{cls}(")
    twin = twin.double()
    gen = torch.Generator().manual_seed(0)
    for mode in ("train", "train", "eval"):
        ours.train(mode == "train"), twin.train(mode == "train")
        x = (torch.randn(shape, generator=gen, dtype=torch.float64) * 2 + 1).requires_grad_(True)
        x2 = x.detach().clone().requires_grad_(True)
        dy = torch.randn(shape, generator=gen, dtype=torch.float64)
        y, y2 = ours(x), twin(x2)
        torch.testing.assert_close(y, y2)
        y.backward(dy), y2.backward(dy)
        torch.testing.assert_close(x.grad, x2.grad)
    for (key, a), (_, b) in zip(ours.named_buffers(), twin.named_buffers()):
        torch.testing.assert_close(a, b, msg=key)


@pytest.mark.parametrize("name,options,shape,fragment", [
    ("batch_layer", {}, (4, 4, 3), NO_EQUIVALENT),
    ("batch_renorm", {}, (4, 4, 3), NO_EQUIVALENT),
    ("batch", {"convention": "keras"}, (4, 4), "keras convention"),
    ("batch", {"ghost_batch_size": 2}, (4, 4), "ghost batches"),
    ("layer", {"per_position": True}, (4, 4, 3), "per-position"),
    ("instance", {}, (4, 4), "undefined on (N, C)"),
    ("rms", {"bias": True}, (4, 4), "no bias"),
    ("rms", {}, (4, 4, 3), "last axis"),
])
def test_no_twin_says_why(name, options, shape, fragment):
    twin, why = native_twin(create_norm(name, shape[1], **options), shape)
    assert twin is None and fragment in why


def test_layer_is_timed_with_its_twin_in_paired_blocks():
    spec = layer_spec("group", (4, 4, 3, 3), threads=1, operation="forward_backward", norm_options={"num_groups": 2},
                      peak_memory=False, copy_bandwidth=False, **FAST_TIMING)
    result = run_throughput_spec(spec)
    assert result.outcome == "completed", result.reason
    assert result.native_module.startswith("torch.nn.GroupNorm(2, 4") and result.native_note == ""
    assert len(result.native_samples) == len(result.samples) >= FAST_TIMING["min_samples"]
    assert result.native_ratio == pytest.approx(result.median_s / result.native_median_s)


def test_without_twin_or_with_native_off_only_the_layer_is_timed():
    bln = run_throughput_spec(layer_spec("batch_layer", (4, 4, 3), threads=1, peak_memory=False,
                                         copy_bandwidth=False, **FAST_TIMING))
    assert bln.outcome == "completed" and bln.native_ratio is None and bln.native_samples == []
    assert bln.native_note == NO_EQUIVALENT
    off = replace(layer_spec("batch", (4, 4), threads=1, peak_memory=False, copy_bandwidth=False, **FAST_TIMING),
                  native=False)
    result = run_throughput_spec(off)
    assert result.native_module == result.native_note == "" and result.native_ratio is None


def test_a_twin_that_fails_leaves_a_note_and_the_layer_timing(monkeypatch):
    import normbench.throughput.subjects as subjects

    class Broken(torch.nn.Module):
        def forward(self, x):
            raise RuntimeError("no kernel for this\nsecond line")

    monkeypatch.setattr(subjects, "native_twin", lambda layer, shape: (Broken(), "torch.nn.Broken()"))
    result = run_throughput_spec(layer_spec("batch", (4, 4), threads=1, peak_memory=False, copy_bandwidth=False,
                                            **FAST_TIMING))
    assert result.outcome == "completed" and result.median_s > 0
    assert result.native_note == "torch.nn.Broken() failed here: RuntimeError: no kernel for this"
    assert result.native_module == "" and result.native_ratio is None
