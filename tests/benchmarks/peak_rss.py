"""Run a command and report its wall time and the peak resident memory of its whole process tree.

`/usr/bin/time -v` reports the largest single process; normbench's local executor runs worker
processes beside the driver, so the budget ("under 2 GB, all processes together") needs the sum.
Usage: python tests/benchmarks/peak_rss.py normbench run suites/quick.yaml --fresh
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path


def tree_rss_bytes(root: int) -> int:
    """Sum of VmRSS over `root` and all its descendants (Linux /proc)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        pid, ppid = int(entry.name), int(fields.get("PPid", "0").strip())
        children.setdefault(ppid, []).append(pid)
        rss[pid] = int(fields.get("VmRSS", "0 kB").split()[0]) * 1024
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    start = time.perf_counter()
    process = subprocess.Popen(argv)
    peak = 0
    while process.poll() is None:
        peak = max(peak, tree_rss_bytes(process.pid))
        time.sleep(0.1)
    elapsed = time.perf_counter() - start
    print(f"exit {process.returncode}; wall {elapsed:.1f} s; peak RSS of the process tree {peak / 2**30:.2f} GiB",
          file=sys.stderr)
    return process.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
