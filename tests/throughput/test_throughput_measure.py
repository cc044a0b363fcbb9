"""Timing mechanics: summaries against numpy, the noise flag, sample counts, threads, peak memory."""

import numpy as np
import pytest
import torch

from normbench.throughput.measure import (
    CPU_PEAK_METHOD,
    block_plan,
    is_noisy,
    peak_memory,
    summarize,
    time_callable,
    time_interleaved,
    torch_threads,
)


@pytest.mark.parametrize("n", [1, 2, 7, 50])
def test_summary_matches_numpy(n):
    samples = np.random.default_rng(n).lognormal(mean=-7, sigma=0.3, size=n).tolist()
    median, iqr = summarize(samples)
    assert median == pytest.approx(np.median(samples), rel=1e-12)
    assert iqr == pytest.approx(np.quantile(samples, 0.75) - np.quantile(samples, 0.25), rel=1e-12, abs=0)


def test_summary_of_a_hand_example():
    # sorted 1..5: median 3; linear quartiles at positions 1 and 3 of 0..4 → 2 and 4
    assert summarize([5.0, 1.0, 4.0, 2.0, 3.0]) == (3.0, 2.0)
    with pytest.raises(ValueError):
        summarize([])


def test_noise_flag_is_iqr_over_median_above_ten_percent():
    rng = np.random.default_rng(0)
    for _ in range(200):
        samples = rng.normal(1.0, rng.uniform(0.01, 0.3), size=20).clip(0.01).tolist()
        q1, q3 = np.quantile(samples, [0.25, 0.75])
        expected = (q3 - q1) / np.median(samples) > 0.10
        assert is_noisy(*summarize(samples)) == expected
    assert not is_noisy(1.0, 0.10) and is_noisy(1.0, 0.1001)  # the boundary itself is not noisy


def test_blocked_timing_takes_at_least_min_samples_and_restores_threads():
    x = torch.randn(64, 64)
    before = torch.get_num_threads()
    timing = time_callable(lambda: x @ x, device="cpu", threads=1, min_run_time=0.002, max_run_time=0.5,
                           min_samples=8, warmup=1)
    assert len(timing.samples) >= 8
    assert len(timing.numbers) == len(timing.samples) and timing.number_per_run >= 1
    assert all(t > 0 for t in timing.samples)
    assert torch.get_num_threads() == before


def test_timer_runs_with_the_requested_threads():
    seen = []
    time_callable(lambda: seen.append(torch.get_num_threads()), device="cpu", threads=1, min_run_time=0.001,
                  max_run_time=0.05, min_samples=2, warmup=1)
    assert set(seen) == {1}


def test_adaptive_method_and_unknown_method():
    timing = time_callable(lambda: torch.ones(8).sum(), device="cpu", threads=1, method="adaptive",
                           min_run_time=0.002, max_run_time=0.2, warmup=0)
    assert len(timing.samples) >= 3
    with pytest.raises(ValueError, match="allowed: blocked, adaptive"):
        time_callable(lambda: None, device="cpu", threads=1, method="fast")


def test_block_plan_spreads_the_run_time_over_min_samples_blocks():
    # 10 us calls, 0.2 s, 10 samples: blocks of 0.02 s = 2000 calls
    assert block_plan(1e-5, 0.2, 2.0, 10) == (2000, 0.2)
    # 50 ms calls: stretched to 10 x 50 ms x 1.1 = 0.55 s, one call per block
    number, run_time = block_plan(0.05, 0.2, 2.0, 10)
    assert number == 1 and run_time == pytest.approx(0.55)
    # 1 s calls: capped at max_run_time, still one call per block (the loop guarantees the count)
    assert block_plan(1.0, 0.2, 2.0, 10) == (1, 2.0)


def test_min_samples_are_taken_even_when_every_limit_has_run_out():
    """A load spike (here: calls 20x slower than the warm-up saw) must not cut the sample count:
    the loop stops on time only once min_samples blocks exist."""
    import time

    calls = []

    def step():
        calls.append(1)
        time.sleep(0.0002 if len(calls) <= 3 else 0.004)  # the warm-up sees fast calls

    timing = time_callable(step, device="cpu", threads=1, min_run_time=0.001, max_run_time=0.002,
                           min_samples=6, warmup=3)
    assert len(timing.samples) == 6
    assert all(n >= 1 for n in timing.numbers) and min(timing.samples) >= 0.004


def test_interleaved_series_alternate_block_by_block_with_paired_counts():
    order = []
    fast = lambda: order.append("a")  # noqa: E731
    slow = lambda: order.append("b") or sum(range(2000))  # noqa: E731
    timings = time_interleaved([fast, slow], device="cpu", threads=1, min_run_time=0.002, max_run_time=0.1,
                               min_samples=5, warmup=1)
    assert len(timings[0].samples) == len(timings[1].samples) >= 5
    assert timings[0].number_per_run > timings[1].number_per_run  # each series keeps its own block size
    # after the warm-up, runs of a's and b's alternate: one block of each per round
    runs = [k for i, k in enumerate(order[2:]) if i == 0 or order[2:][i - 1] != k]
    assert runs[:4] == ["a", "b", "a", "b"] and len(runs) >= 2 * len(timings[0].samples)


def test_cpu_peak_memory_of_a_known_allocation():
    n = 1_000_000  # 4 MB of float32, allocated twice at once, then freed

    def step():
        a = torch.empty(n)
        b = torch.empty(n)
        del a, b

    peak, method = peak_memory(step, "cpu", threads=1)
    assert method == CPU_PEAK_METHOD
    assert 2 * 4 * n <= peak <= 2 * 4 * n + 4096  # both blocks live at once; allocator rounding at most a page


def test_peak_memory_counts_only_the_step():
    held = torch.empty(2_000_000)  # allocated before: not part of the step

    def step():
        return torch.empty(250_000) + 0  # one 1 MB temporary and one 1 MB result

    peak, _ = peak_memory(step, "cpu", threads=1)
    assert 2 * 1_000_000 <= peak <= 2 * 1_000_000 + 4096
    del held


def test_retain_policy_stops_page_faults_per_call():
    import platform
    import resource

    from normbench.norms import create_norm
    from normbench.throughput.measure import set_allocator_policy

    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        assert set_allocator_policy("retain").startswith("system (")
        return
    assert set_allocator_policy("retain") == "retain"  # process-wide from here on, as in a suite run
    assert set_allocator_policy("system") == "retain (set earlier in this process)"
    # GN forward+backward on 2 MB tensors: with glibc's defaults this pattern takes ~990 page faults
    # every other call (measured), because freed blocks go back to the OS; retained, they are reused.
    gn = create_norm("group", 16, num_groups=4)
    x = torch.randn(8, 16, 64, 64, requires_grad=True)
    grad = torch.randn_like(x)

    def step():
        x.grad = None
        gn(x).backward(grad)

    with torch_threads(1):
        for _ in range(10):  # the heap grows to its working size first
            step()
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(20):
            step()
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    assert faults < 2048  # glibc defaults: ~9900 here (10 x 990); retained: 0 to ~500 (heap settling)
    with pytest.raises(ValueError, match="allowed: retain, system"):
        set_allocator_policy("jemalloc")


def test_warm_up_runs_for_calls_and_for_time():
    from normbench.throughput.measure import warm_up

    calls = []
    warm_up(lambda: calls.append(1), "cpu", calls=4)
    assert len(calls) == 4
    calls.clear()
    warm_up(lambda: calls.append(1), "cpu", calls=0, seconds=0.0)
    assert len(calls) == 1  # at least one call, which estimates the time per call
    calls.clear()
    import time

    began = time.perf_counter()
    warm_up(lambda: calls.append(time.sleep(0.002)), "cpu", calls=1, seconds=0.02)
    assert time.perf_counter() - began >= 0.02 and len(calls) >= 5
