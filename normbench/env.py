"""Environment capture: what machine and software produced a set of results."""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any


def now_iso() -> str:
    """Current UTC time, ISO 8601, second precision."""
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def cpu_model() -> str:
    """CPU model name from /proc/cpuinfo where available, else platform.processor()."""
    with contextlib.suppress(OSError):  # no /proc (macOS, Windows): fall back below
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware")):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def git_commit(path: str | Path = ".") -> str | None:
    """Commit hash of the git checkout containing `path` (with `+dirty` if modified), or None."""
    try:
        out = subprocess.run(
            ["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(path), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return out + ("+dirty" if dirty else "") if out else None


def capture_environment() -> dict[str, Any]:
    """Versions, hardware and thread settings that affect results and timings."""
    import numpy
    import torch

    import normbench
    from normbench.norms import bln_kernel

    env: dict[str, Any] = {
        "normbench_version": normbench.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda_available": torch.cuda.is_available(),
        "git_commit": git_commit(Path(__file__).resolve().parent),
        "bln_cpu_kernel": bln_kernel.describe(),
    }
    if torch.cuda.is_available():
        env["cuda_version"] = torch.version.cuda
        env["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return env
