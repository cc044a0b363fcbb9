"""Does normbench's throughput timing report what a plain torch.utils.benchmark.Timer measures?

Run: ``python tests/benchmarks/bench_fidelity.py [--rounds R] [--repeats K] [--threads N] [--strict]``

Two checks (issue 6, "Trustworthy"):

1. Fidelity: for ``batch`` on (32, 64, 32, 32) float32 CPU, train mode, forward and
   forward+backward, normbench's reported median (``run_throughput_spec``) against a plain
   ``torch.utils.benchmark.Timer(..., num_threads=N).blocked_autorange()`` of the same call on the same module and
   tensors' twins, in the same process. Both are measured alternately, ``R`` rounds; the ratio is
   taken per round so that drifts in machine load hit both sides. Target: median ratio within
   1 ± 0.05.
2. Repeatability: the float32 layer specs of suites/throughput.yaml on the CNN shape (every norm,
   both passes; eval mode for the batch-statistic norms) at ``--threads``, measured by ``K``
   separate suite runs (``normbench run suites/throughput.yaml --fresh``, each a fresh process, as
   repeated ``normbench run``s are), with the suite's timing settings. Per spec, the coefficient of variation (sample std / mean) of its K medians.
   Target: < 5 % (the median over specs is the headline; the worst spec is printed too). For
   comparison, between the suite runs a fresh process times every one of the same calls with a
   plain Timer (same warm-up count, same allocator policy): the machine's own run-to-run
   variation per spec, which no harness can go below.

Other processes on the machine inflate both numbers: check ``uptime`` first. Not collected by
pytest (the file name does not start with ``test_``).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.utils.benchmark as benchmark

from normbench.norms import create_norm
from normbench.store import Store
from normbench.throughput import (
    expand_throughput,
    layer_spec,
    load_throughput_suite,
    run_throughput_spec,
    throughput_frame,
)

SHAPE = (32, 64, 32, 32)
SUITE = Path(__file__).resolve().parents[2] / "suites" / "throughput.yaml"
REPEAT_OVERRIDES = [
    "models=null", "fused_conv_bn=null", "layers.dtypes=[float32]", "layers.memory_formats=[contiguous]",
    "layers.shapes=[[32,64,32,32]]",
]
PLAIN_STATEMENTS = {
    "forward": "with torch.no_grad():\n    bn(x)",
    "forward_backward": "x.grad = None\nbn(x).backward(g)",
}


def plain_timer_median(operation: str, threads: int, min_run_time: float) -> float:
    """The same call timed the textbook way: a Timer over a statement, blocked_autorange."""
    bn = create_norm("batch", SHAPE[1]).train()
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(SHAPE, generator=generator)
    g = torch.randn(SHAPE, generator=generator)
    if operation == "forward_backward":
        x.requires_grad_(True)
    timer = benchmark.Timer(stmt=PLAIN_STATEMENTS[operation], globals={"bn": bn, "x": x, "g": g, "torch": torch},
                            num_threads=threads)
    timer.timeit(3)  # warm-up, as normbench does before measuring
    return timer.blocked_autorange(min_run_time=min_run_time).median


def fidelity(operation: str, rounds: int, threads: int, min_run_time: float) -> dict:
    spec = layer_spec("batch", SHAPE, operation=operation, threads=threads, min_run_time=min_run_time,
                      peak_memory=False, copy_bandwidth=False)
    ours, plain, ratios = [], [], []
    for r in range(rounds):
        # Alternate which side goes first, so a warm cache or a load change does not favour one.
        if r % 2 == 0:
            a = run_throughput_spec(spec).median_s
            b = plain_timer_median(operation, threads, min_run_time)
        else:
            b = plain_timer_median(operation, threads, min_run_time)
            a = run_throughput_spec(spec).median_s
        ours.append(a), plain.append(b), ratios.append(a / b)
    q1, q3 = np.percentile(ratios, [25, 75])
    return {"normbench_ms": statistics.median(ours) * 1e3, "plain_ms": statistics.median(plain) * 1e3,
            "ratio": statistics.median(ratios), "ratio_q1": q1, "ratio_q3": q3}


def plain_worker(threads: int, min_run_time: float) -> None:
    """Print (JSON) a plain Timer median for every repeat spec: the floor, timed without normbench.

    Same calls as the suite's specs (create_norm + the statement), same warm-up count and the same
    CPU allocator policy as the suite (`retain`: glibc keeps freed blocks), in a fresh process.
    """
    import ctypes
    import json

    libc = ctypes.CDLL(None)
    libc.mallopt(-4, 0), libc.mallopt(-1, 2**31 - 1)  # M_MMAP_MAX = 0, M_TRIM_THRESHOLD = max
    suite, _ = load_throughput_suite(SUITE, [*REPEAT_OVERRIDES, f"threads=[{threads}]"])
    medians = {}
    for spec in expand_throughput(suite):
        module = create_norm(spec.norm, spec.shape[1], **spec.norm_kwargs).train(spec.mode == "train")
        generator = torch.Generator().manual_seed(0)
        x = torch.randn(spec.shape, generator=generator)
        g = torch.randn(spec.shape, generator=generator)
        x.requires_grad_(spec.operation == "forward_backward")
        stmt = PLAIN_STATEMENTS[spec.operation].replace("bn(", "m(")
        timer = benchmark.Timer(stmt=stmt, globals={"m": module, "x": x, "g": g, "torch": torch}, num_threads=threads)
        timer.timeit(3)
        medians[spec.spec_id] = timer.blocked_autorange(min_run_time=min_run_time).median
    print(json.dumps(medians))


def repeatability(repeats: int, threads: int) -> dict:
    """K separate suite runs (fresh processes, as `normbench run` would be), CV of each spec's median.

    Between suite runs, a fresh process times the same calls with plain Timers: the machine's own
    run-to-run variation for each spec, which no harness can go below.
    """
    import json

    overrides = [*REPEAT_OVERRIDES, f"threads=[{threads}]"]
    suite, _ = load_throughput_suite(SUITE, overrides)
    medians: dict[str, list[float]] = {}
    plain: dict[str, list[float]] = {}
    labels: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(repeats):
            out = Path(tmp) / f"run{k}"
            command = [sys.executable, "-m", "normbench", "run", str(SUITE), "--out", str(out), "--fresh", "--no-report"]
            command += [arg for o in overrides for arg in ("--set", o)]
            subprocess.run(command, check=True, capture_output=True, text=True)
            with Store(out / "results.sqlite") as store:
                frame = throughput_frame(store.conn)
            for row in frame.itertuples():
                medians.setdefault(row.spec_id, []).append(row.median_s)
                labels[row.spec_id] = f"{row.norm_label} {row.shape} {row.mode} {row.operation} {row.threads} thread(s)"
            worker = [sys.executable, __file__, "--plain-worker", "--threads", str(threads),
                      "--min-run-time", str(suite.timing.min_run_time)]
            floor = json.loads(subprocess.run(worker, check=True, capture_output=True, text=True).stdout)
            for spec_id, value in floor.items():
                plain.setdefault(spec_id, []).append(value)
    cvs = {k: statistics.stdev(v) / statistics.mean(v) for k, v in medians.items()}
    plain_cvs = {k: statistics.stdev(v) / statistics.mean(v) for k, v in plain.items()}
    worst = max(cvs, key=cvs.get)
    return {"specs": len(cvs), "median_cv": statistics.median(cvs.values()), "worst_cv": cvs[worst],
            "worst": labels[worst], "per_spec": {labels[k]: (cvs[k], plain_cvs.get(k)) for k in cvs},
            "plain_median_cv": statistics.median(plain_cvs.values())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads (the shipped suite uses 1)")
    parser.add_argument("--min-run-time", type=float, default=0.2)
    parser.add_argument("--skip-repeats", action="store_true", help="only the fidelity check")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--plain-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.plain_worker:
        plain_worker(args.threads, args.min_run_time)
        return 0

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"torch {torch.__version__} | {platform.processor() or platform.machine()} | threads {args.threads} | "
          f"load average (1 min) {load:.2f}")
    ok = True
    for operation in ("forward", "forward_backward"):
        r = fidelity(operation, args.rounds, args.threads, args.min_run_time)
        within = abs(r["ratio"] - 1) <= 0.05
        ok &= within
        print(f"fidelity batch {SHAPE} float32 train {operation}, {args.threads} thread(s): normbench {r['normbench_ms']:.3f} ms, "
              f"plain Timer {r['plain_ms']:.3f} ms, ratio {r['ratio']:.3f} (IQR {r['ratio_q1']:.3f}-"
              f"{r['ratio_q3']:.3f}) -> {'OK' if within else 'MISSED'} (target 1 +/- 0.05)")
    if not args.skip_repeats:
        started = time.perf_counter()
        r = repeatability(args.repeats, args.threads)
        within = r["median_cv"] < 0.05
        ok &= within
        for label, (cv, plain_cv) in r["per_spec"].items():
            print(f"  cv {cv * 100:5.2f} %  (plain Timer {plain_cv * 100:5.2f} %)  {label}")
        print(f"repeatability, {args.threads} thread(s): {r['specs']} specs x {args.repeats} suite runs ({time.perf_counter() - started:.0f} s): "
              f"median CV of the median {r['median_cv'] * 100:.2f} %, worst {r['worst_cv'] * 100:.2f} % "
              f"({r['worst']}) -> {'OK' if within else 'MISSED'} (target < 5 %)")
        print(f"machine floor: the same calls under plain Timers in fresh processes between the runs: "
              f"median CV {r['plain_median_cv'] * 100:.2f} %")
    load_after = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average (1 min) at the end: {load_after:.2f}")
    return 0 if ok or not args.strict else 1


if __name__ == "__main__":
    sys.exit(main())
