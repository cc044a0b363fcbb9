"""Measuring specs: `run_throughput_spec` (one spec, never raises for its own error) and `run_throughput`.

Specs run one after another in the calling process: concurrent measurements on shared cores would
time each other. Unavailable devices, dtypes the device cannot run and compilation that cannot
work here (`throughput/compiled.py`) are `skipped` with the reason; a norm undefined for the input
(IN on (N, C), BN on one value per channel) is `undefined`; any other error is `failed` with its
text. A layer with a native twin (torch's own module, `throughput/native.py`) is timed in blocks
interleaved with the twin's; a twin that cannot run leaves the layer's timing alone and says why
in `native_note`.
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Iterable, Iterator

from normbench.checks import device_unavailable_reason
from normbench.env import now_iso
from normbench.spec import COMPLETED, SKIPPED, UNDEFINED
from normbench.throughput.spec import LAYER, ThroughputResult, ThroughputSpec

# Phrases torch uses when a kernel does not exist for a dtype/device/layout combination.
_UNSUPPORTED_PHRASES = ("not implemented for", "not supported", "unsupported", "does not support", "doesn't support")

CopyCache = dict[tuple, object]  # key → measure.Timing of the same-size copy


def run_throughput(specs: Iterable[ThroughputSpec]) -> Iterator[ThroughputResult]:
    """Measure `specs` in order, one at a time, yielding each result as soon as it exists.

    The copy bandwidth of each (device, shape, dtype, memory format, threads) is measured once per
    call of this function and shared by the specs that need it (the same run, the same device, a
    tensor of the same size).
    """
    copy_cache: CopyCache = {}
    for spec in specs:
        yield run_throughput_spec(spec, copy_cache=copy_cache)


def run_throughput_spec(spec: ThroughputSpec, *, copy_cache: CopyCache | None = None) -> ThroughputResult:
    """Measure one spec; never raises for the spec's own error (the outcome and reason say it)."""
    result = ThroughputResult(spec=spec, outcome=COMPLETED, started_at=now_iso(), load_avg=_load_average())
    started = time.perf_counter()
    reason = skip_reason(spec)
    if reason:
        result.outcome, result.reason = SKIPPED, reason
    else:
        _measure_guarded(spec, result, copy_cache if copy_cache is not None else {})
    result.wall_time_s = time.perf_counter() - started
    result.finished_at = now_iso()
    return result


def skip_reason(spec: ThroughputSpec) -> str | None:
    """Why `spec` cannot run on this machine (device absent, dtype unsupported, no compiler), or None."""
    from normbench.throughput.compiled import compile_unavailable_reason
    from normbench.throughput.device import dtype_unsupported_reason

    reason = device_unavailable_reason(spec.device)
    if reason is not None:
        return f"device {spec.device} unavailable: {reason}"
    reason = dtype_unsupported_reason(spec.device, spec.dtype)
    if reason is not None:
        return f"{spec.dtype} unsupported on {spec.device}: {reason}"
    reason = compile_unavailable_reason(spec.compile, spec.device)
    if reason is not None:
        return f"torch.compile ({spec.compile}) unavailable: {reason}"
    return None


def _measure_guarded(spec: ThroughputSpec, result: ThroughputResult, copy_cache: CopyCache) -> None:
    from normbench.run_errors import error_outcome
    from normbench.throughput.compiled import is_compiler_error

    try:
        _measure(spec, result, copy_cache)
    except Exception as exc:  # a measurement's error is a result to store, not a crash of the suite
        if spec.compile != "eager" and is_compiler_error(exc):
            reason = f"torch.compile ({spec.compile}) could not compile this subject: {_first_line(exc)}"
            result.outcome, result.reason = SKIPPED, reason
        elif _is_unsupported(exc):
            reason = f"{spec.dtype}/{spec.memory_format} unsupported on {spec.device}: {_first_line(exc)}"
            result.outcome, result.reason = SKIPPED, reason
        else:
            result.outcome, result.reason = error_outcome(exc)
        if result.outcome != UNDEFINED:  # a timing cut short by an error is no timing
            result.samples, result.sample_numbers, result.median_s, result.iqr_s = [], [], None, None
            result.native_samples, result.native_sample_numbers, result.native_median_s = [], [], None
    finally:
        _release(spec.device)


def _measure(spec: ThroughputSpec, result: ThroughputResult, copy_cache: CopyCache) -> None:
    from normbench.throughput.compiled import first_call_seconds
    from normbench.throughput.device import device_name, synchronize
    from normbench.throughput.measure import (
        is_noisy,
        peak_memory,
        set_allocator_policy,
        summarize,
        time_interleaved,
        torch_threads,
    )
    from normbench.throughput.roofline import copy_bytes, ideal_bytes
    from normbench.throughput.subjects import build_subject

    result.device_name = device_name(spec.device)
    result.allocator = set_allocator_policy(spec.allocator)
    subject = build_subject(spec)
    if spec.compile != "eager":
        with torch_threads(spec.threads):
            result.compile_time_s = first_call_seconds(subject.step, lambda: synchronize(spec.device))
    native_step = _usable_native(subject, spec, result)
    steps = [subject.step] if native_step is None else [subject.step, native_step]
    timings = time_interleaved(steps, label=spec.describe(), **_timing_kwargs(spec))
    result.samples, result.sample_numbers = timings[0].samples, timings[0].numbers
    result.median_s, result.iqr_s = summarize(timings[0].samples)
    result.noisy = is_noisy(result.median_s, result.iqr_s)
    if native_step is not None:
        result.native_samples, result.native_sample_numbers = timings[1].samples, timings[1].numbers
        result.native_median_s = summarize(timings[1].samples)[0]
    if spec.peak_memory:
        try:
            result.peak_memory_bytes, result.peak_memory_method = peak_memory(
                subject.step, spec.device, spec.threads, subject.prepare
            )
        except Exception as exc:  # the profiler's internals move between torch versions; keep the timing
            result.peak_memory_method = f"not measured: {type(exc).__name__}: {_first_line(exc)}"
    del subject
    result.bytes_moved, result.bytes_model = ideal_bytes(spec)
    if spec.subject == LAYER and spec.copy_bandwidth and result.bytes_moved:
        copy = _copy_timing(spec, copy_cache)
        result.copy_samples, result.copy_sample_numbers = copy.samples, copy.numbers
        result.copy_median_s = summarize(copy.samples)[0]
        result.copy_bytes = copy_bytes(spec.numel, spec.dtype)


def _usable_native(subject, spec: ThroughputSpec, result: ThroughputResult):
    """The twin's step after one trial call (which also compiles it), or None with the reason noted:
    torch's module may lack a kernel this layer has (a dtype, a layout); the layer is timed anyway."""
    from normbench.throughput.device import synchronize
    from normbench.throughput.measure import torch_threads

    if subject.native_step is None:
        result.native_note = subject.native
        return None
    try:
        with torch_threads(spec.threads):
            subject.native_step()
            synchronize(spec.device)
    except Exception as exc:  # the twin is a reference, not the subject: its failure is a note
        result.native_note = f"{subject.native} failed here: {type(exc).__name__}: {_first_line(exc)}"
        return None
    result.native_module = subject.native
    return subject.native_step


def _timing_kwargs(spec: ThroughputSpec) -> dict:
    return dict(
        device=spec.device, threads=spec.threads, method=spec.method, min_run_time=spec.min_run_time,
        max_run_time=spec.max_run_time, min_samples=spec.min_samples, warmup=spec.warmup,
        warmup_time=spec.warmup_time,
    )


def _copy_timing(spec: ThroughputSpec, copy_cache: CopyCache):
    from normbench.throughput.measure import time_callable
    from normbench.throughput.roofline import copy_step

    key = (spec.device, spec.shape, spec.dtype, spec.memory_format, spec.threads, spec.method,
           spec.min_run_time, spec.max_run_time, spec.min_samples, spec.allocator)
    if key not in copy_cache:
        step = copy_step(spec.shape, spec.dtype, spec.device, spec.memory_format, spec.seed)
        copy_cache[key] = time_callable(step, label=f"copy {spec.shape} {spec.dtype}", **_timing_kwargs(spec))
    return copy_cache[key]


def _load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):  # not available on this platform
        return None


def _is_unsupported(exc: Exception) -> bool:
    if isinstance(exc, NotImplementedError):
        return True
    text = str(exc).lower()
    return isinstance(exc, (RuntimeError, TypeError)) and any(p in text for p in _UNSUPPORTED_PHRASES)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _release(device: str) -> None:
    """On CUDA, return cached blocks so the next spec's memory starts clean.

    CPU tensors are freed by reference counting as the subject goes out of scope; a full
    gc.collect() per spec cost ~0.1 s with pandas and pydantic loaded, for nothing.
    """
    if device.startswith("cuda"):  # pragma: no cover - needs a GPU
        import torch

        gc.collect()  # closures over modules can sit in reference cycles holding GPU memory
        torch.cuda.empty_cache()
