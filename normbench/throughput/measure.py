"""Timing callables with torch.utils.benchmark Timers in normbench's own block loop; summaries; memory.

* Warm-up: untimed calls until at least ``warmup`` calls (and at least one) and ``warmup_time``
  seconds are done -- the first passes grow the heap and fault in fresh pages, which a handful of
  sub-millisecond calls does not finish; the last call estimates the time per call.
* Blocks: ``Timer(stmt="step()", num_threads=threads).timeit(number)`` times one block of
  ``number`` calls (torch runs max(number // 100, 2) untimed calls first, re-warming the caches).
  The block size spreads the run time over ``min_samples`` blocks: ``number = per-call time /
  (run time / min_samples)`` calls, at least one, with run time = min(max(min_run_time,
  min_samples x per-call x 1.1), max_run_time). Blocks are taken until every series has at least
  ``min_samples`` of them -- always, whatever the load or the torch version (torch's own
  ``blocked_autorange`` sizes blocks itself and may return fewer) -- and ``blocked``: its timed
  total reaches the run time; ``adaptive``: also its IQR/median is at most 10 %; either way
  ``max_run_time`` (per series) ends the loop once the minimum count is there.
* Interleaving: ``time_interleaved`` times several callables (a layer and torch's own module for
  it) in rounds, one block of each per round, so that a change in machine load hits every series
  alike and sample i of each series comes from the same round (paired ratios).
* Threads: the Timer's ``num_threads`` (it sets and restores ``torch.set_num_threads``); the
  warm-up and the memory pass run under the same count.
* Accelerators: torch.utils.benchmark's default timer calls ``torch.accelerator.synchronize()``
  before reading the clock whenever an accelerator is present, so CUDA/MPS blocks are timed to the
  end of their kernels; our warm-up synchronizes explicitly.
* Summaries: median and interquartile range (numpy percentiles, linear interpolation) of the raw
  samples, each a block's time divided by its number of calls; noisy when IQR/median > 10 %.
* CPU allocator (``allocator: retain``, the default): glibc returns large freed blocks to the OS
  (``munmap`` / heap trimming), so a benchmark loop that allocates an 8 MB output per call takes
  ~1000 page faults per call and its median swings by 2x with the heap's history; the timing then
  measures glibc's policy rather than the kernel. ``retain`` sets ``mallopt(M_MMAP_MAX, 0)`` and
  ``mallopt(M_TRIM_THRESHOLD, 2**31 - 1)`` in this process (once; it cannot be undone), so freed
  blocks are reused, as PyTorch's CPU tuning guide gets from jemalloc/tcmalloc. ``system`` leaves
  the allocator alone. Not glibc (macOS, musl): nothing to set, recorded as such.
* Peak memory of one step, above what was allocated when it started: CUDA through
  ``torch.cuda.max_memory_allocated``; CPU through ``torch.profiler`` with ``profile_memory=True``
  (the running sum of the CPU allocator's allocation and free events, in time order, maximised);
  MPS has no peak counter and records none.
"""

from __future__ import annotations

import ctypes
import os
import platform
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
import torch.utils.benchmark as benchmark

from normbench.throughput.device import synchronize
from normbench.throughput.spec import NOISE_THRESHOLD

CUDA_PEAK_METHOD = "torch.cuda.max_memory_allocated during one step, minus the allocation at its start"
CPU_PEAK_METHOD = (
    "torch.profiler(profile_memory=True): maximum running sum of CPU allocator alloc/free events during one step"
)
NO_PEAK_METHOD = "not measured: {device} has no peak-memory counter"


@dataclass
class Timing:
    """Raw samples (seconds per call, one per timed block) and the calls in each sample's block."""

    samples: list[float]
    numbers: list[int]

    @property
    def number_per_run(self) -> int:
        """Calls per block (the last block's; normbench's loop keeps one block size per series)."""
        return self.numbers[-1] if self.numbers else 0


def summarize(samples: list[float]) -> tuple[float, float]:
    """(median, interquartile range) of `samples`, numpy's default linear-interpolated percentiles."""
    values = np.asarray(samples, dtype=float)
    if values.size == 0:
        raise ValueError("no samples to summarize")
    q1, median, q3 = np.percentile(values, [25, 50, 75])
    return float(median), float(q3 - q1)


def is_noisy(median: float, iqr: float, threshold: float = NOISE_THRESHOLD) -> bool:
    """True when IQR/median exceeds `threshold` (10 % by default): the median is not trustworthy."""
    return median <= 0 or iqr / median > threshold


M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4  # glibc <malloc.h> parameter numbers
_retained = False


def set_allocator_policy(policy: str) -> str:
    """Apply a CPU allocator policy (`retain` or `system`) to this process; returns what is in effect."""
    global _retained
    if policy == "system":
        return "system (glibc defaults)" if not _retained else "retain (set earlier in this process)"
    if policy != "retain":
        raise ValueError(f"unknown allocator policy {policy!r}; allowed: retain, system")
    if _retained:
        return "retain"
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return f"system (no glibc mallopt on {platform.system()})"
    libc = ctypes.CDLL(None)
    if not (libc.mallopt(M_MMAP_MAX, 0) and libc.mallopt(M_TRIM_THRESHOLD, 2**31 - 1)):
        return "system (mallopt refused the settings)"
    _retained = True
    return "retain"


@contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run with `threads` intra-op threads, restoring the previous count afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def warm_up(step: Callable[[], object], device: str, calls: int, seconds: float = 0.0) -> float:
    """Run `step` untimed until max(calls, 1) calls and `seconds` have passed; returns the last call's time."""
    began = time.perf_counter()
    done, elapsed = 0, 0.0
    while done < max(calls, 1) or time.perf_counter() - began < seconds:
        start = time.perf_counter()
        step()
        synchronize(device)
        elapsed = time.perf_counter() - start
        done += 1
    return elapsed


METHODS = ("blocked", "adaptive")


@dataclass
class _Series:
    """One callable's timer, block size and run time, and the samples taken so far."""

    timer: benchmark.Timer
    number: int
    run_time: float
    timing: Timing
    timed: float = 0.0  # seconds inside timed blocks

    def take_block(self) -> None:
        measurement = self.timer.timeit(self.number)
        block = float(measurement.raw_times[0])
        self.timing.samples.append(block / self.number)
        self.timing.numbers.append(self.number)
        self.timed += block

    def satisfied(self, method: str, min_samples: int) -> bool:
        if len(self.timing.samples) < min_samples or self.timed < self.run_time:
            return False
        return method == "blocked" or not is_noisy(*summarize(self.timing.samples))


def block_plan(per_call: float, min_run_time: float, max_run_time: float, min_samples: int) -> tuple[int, float]:
    """(calls per block, run time) for a callable taking ``per_call`` seconds: the run is stretched
    to ``min_samples`` slow calls (10 % margin) within ``max_run_time`` and spread over
    ``min_samples`` blocks."""
    run_time = min(max(min_run_time, min_samples * per_call * 1.1), max_run_time)
    return max(1, round(run_time / min_samples / max(per_call, 1e-9))), run_time


def time_interleaved(
    steps: list[Callable[[], object]],
    *,
    device: str,
    threads: int,
    method: str = "blocked",
    min_run_time: float = 0.2,
    max_run_time: float = 2.0,
    min_samples: int = 10,
    warmup: int = 3,
    warmup_time: float = 0.0,
    label: str = "",
) -> list[Timing]:
    """Time every callable of ``steps`` in rounds of one ``Timer.timeit`` block each (see the
    module docstring); every returned Timing has the same number of samples, at least
    ``min_samples``."""
    if method not in METHODS:
        raise ValueError(f"unknown timing method {method!r}; allowed: {', '.join(METHODS)}")
    with torch_threads(threads):
        per_call = [warm_up(step, device, warmup, warmup_time) for step in steps]
    series = []
    for step, estimate in zip(steps, per_call):
        number, run_time = block_plan(estimate, min_run_time, max_run_time, min_samples)
        timer = benchmark.Timer(stmt="step()", globals={"step": step}, num_threads=threads, label=label)
        series.append(_Series(timer, number, run_time, Timing(samples=[], numbers=[])))
    began = time.perf_counter()
    while True:
        for one in series:
            one.take_block()
        if len(series[0].timing.samples) < min_samples:
            continue  # the guaranteed minimum comes before any time limit
        if all(one.satisfied(method, min_samples) for one in series):
            break
        if time.perf_counter() - began >= max_run_time * len(series):
            break
    return [one.timing for one in series]


def time_callable(step: Callable[[], object], **options) -> Timing:
    """Time one callable (``time_interleaved`` with a single series; same options)."""
    return time_interleaved([step], **options)[0]


def peak_memory(
    step: Callable[[], object], device: str, threads: int, prepare: Callable[[], None] | None = None
) -> tuple[int | None, str]:
    """Peak bytes allocated by one `step()` above the allocation at its start, and how it was measured.

    `prepare` runs first, outside the measurement (e.g. dropping gradients the step would free, so
    that frees of blocks allocated before the measurement do not enter it).
    """
    kind = device.split(":")[0]
    with torch_threads(threads):
        if prepare is not None:
            prepare()
        synchronize(device)
        if kind == "cuda":  # pragma: no cover - needs a GPU
            torch.cuda.reset_peak_memory_stats(device)
            base = torch.cuda.memory_allocated(device)
            step()
            synchronize(device)
            return int(torch.cuda.max_memory_allocated(device) - base), CUDA_PEAK_METHOD
        if kind == "cpu":
            return _cpu_peak(step), CPU_PEAK_METHOD
    return None, NO_PEAK_METHOD.format(device=device)


def _cpu_peak(step: Callable[[], object]) -> int | None:
    # Kineto prints a line to stderr on every profiler start/stop unless its log level is raised;
    # it reads the variable when the profiler first starts. A user's own setting wins.
    os.environ.setdefault("KINETO_LOG_LEVEL", "6")
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    events = prof.profiler.kineto_results.events()
    memory = sorted(
        (e for e in events if e.name() == "[memory]" and "CPU" in str(e.device_type())), key=lambda e: e.start_ns()
    )
    live = peak = 0
    for event in memory:
        live += event.nbytes()
        peak = max(peak, live)
    return int(peak)
