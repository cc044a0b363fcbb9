"""End-to-end speedup of the local executor over serial on the quick suite (issue 7: >= 1.6x on 2 cores).

Runs `normbench run SUITE --fresh --no-report` alternately with `--executor serial` and with the
default local pool (`--workers N`), `--repeats` times each, in fresh output directories, and prints
every wall time and the ratio of the median serial time to the median local time. Alternating
spreads slow phases of a shared host over both arms. Wall time is the whole command: interpreter
start, imports, validation, worker start-up, training and store writes.

Usage: python tests/benchmarks/bench_executors.py [--suite suites/quick.yaml] [--repeats 5] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed_run(suite: str, out: Path, extra: list[str]) -> float:
    command = [sys.executable, "-m", "normbench", "run", suite, "--out", str(out), "--fresh", "--no-report", *extra]
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, text=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default="suites/quick.yaml")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    serial: list[float] = []
    local: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(args.repeats):
            serial.append(timed_run(args.suite, Path(tmp) / f"serial{k}", ["--executor", "serial"]))
            local.append(timed_run(args.suite, Path(tmp) / f"local{k}", ["--workers", str(args.workers)]))
            print(f"repeat {k + 1}: serial {serial[-1]:.1f} s, local --workers {args.workers} {local[-1]:.1f} s "
                  f"(load {os.getloadavg()[0]:.2f})", flush=True)
    ratio = statistics.median(serial) / statistics.median(local)
    print(f"median serial {statistics.median(serial):.1f} s, median local {statistics.median(local):.1f} s: "
          f"speedup {ratio:.2f}x on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
