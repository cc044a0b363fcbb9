"""Devices for timing: which exist here, what `auto` means, dtype support, and what to record.

`device_info(device)` extends normbench/env.py's environment capture with what a timing depends
on: CPU model and thread counts, GPU name, compute capability, driver, CUDA and cuDNN versions.
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import subprocess
from typing import Any

from normbench.checks import device_unavailable_reason
from normbench.env import cpu_model

KNOWN_DEVICES = ("cpu", "cuda", "mps")


def resolve_devices(devices: list[str]) -> list[str]:
    """Concrete devices of a suite: `auto` becomes every device available here (cpu first).

    A device named explicitly stays in the list even when absent, so that its specs are stored
    as skipped with the reason (or refused under `strict`).
    """
    out: list[str] = []
    for device in devices:
        names = [d for d in KNOWN_DEVICES if device_unavailable_reason(d) is None] if device == "auto" else [device]
        out.extend(d for d in names if d not in out)
    return out


def device_inventory() -> dict[str, dict[str, Any]]:
    """For cpu, cuda and mps: whether it is available here and, if not, why (for the report)."""
    inventory = {}
    for device in KNOWN_DEVICES:
        reason = device_unavailable_reason(device)
        inventory[device] = {"available": reason is None, "reason": reason or ""}
    return inventory


def cpu_threads_default() -> int:
    """The thread count `threads: auto` means: the CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def dtype_unsupported_reason(device: str, dtype: str) -> str | None:
    """Why `dtype` cannot be timed on `device` (known limits only; kernels may refuse at run time too)."""
    import torch

    kind = device.split(":")[0]
    if dtype == "float64" and kind == "mps":
        return "MPS has no float64 support"
    if dtype == "bfloat16" and kind == "cuda" and torch.cuda.is_available():
        if not torch.cuda.is_bf16_supported():
            return f"{torch.cuda.get_device_name(device)} does not support bfloat16 (needs compute capability 8.0+)"
    return None


def torch_dtype(name: str):
    """`float32` → torch.float32."""
    import torch

    return getattr(torch, name)


def torch_memory_format(name: str):
    """`channels_last` → torch.channels_last (`contiguous` → torch.contiguous_format)."""
    import torch

    return torch.contiguous_format if name == "contiguous" else getattr(torch, name)


def synchronize(device: str) -> None:
    """Wait for queued kernels on `device` (no-op on CPU), so wall-clock times cover the work."""
    import torch

    kind = device.split(":")[0]
    if kind == "cuda":
        torch.cuda.synchronize(device)
    elif kind == "mps":
        torch.mps.synchronize()


def device_name(device: str) -> str:
    """CPU model or GPU name of `device` (empty when the device is absent)."""
    import torch

    kind = device.split(":")[0]
    if device_unavailable_reason(device) is not None:
        return ""
    if kind == "cuda":
        return torch.cuda.get_device_name(device)
    if kind == "mps":
        return f"Apple {platform.machine()} (MPS)"
    return cpu_model()


def device_info(device: str) -> dict[str, Any]:
    """What a timing on `device` depends on, for the environment record.

    Always: CPU model, CPU count and affinity, torch intra-op and inter-op threads, torch version.
    CUDA (untested here: no GPU on the development machine): GPU name, compute capability, memory,
    multiprocessor count, driver version (pynvml or nvidia-smi), CUDA runtime and cuDNN versions.
    MPS: macOS version. An unavailable device records the reason instead.
    """
    import torch

    info: dict[str, Any] = {
        "device": device,
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": cpu_threads_default(),
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "torch": torch.__version__,
    }
    reason = device_unavailable_reason(device)
    if reason is not None:
        info.update(available=False, reason=reason)
        return info
    info["available"] = True
    kind = device.split(":")[0]
    info["name"] = device_name(device)
    if kind == "cuda":  # pragma: no cover - needs a GPU
        props = torch.cuda.get_device_properties(device)
        info.update(
            gpu=props.name,
            compute_capability=f"{props.major}.{props.minor}",
            gpu_memory_bytes=int(props.total_memory),
            multiprocessors=int(props.multi_processor_count),
            cuda_runtime=torch.version.cuda,
            cudnn=torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
            driver=nvidia_driver_version(),
        )
    elif kind == "mps":  # pragma: no cover - needs Apple silicon
        info["macos"] = platform.mac_ver()[0]
    return info


def nvidia_driver_version() -> str | None:  # pragma: no cover - needs a GPU
    """The NVIDIA driver version: through pynvml when installed, else `nvidia-smi`, else None."""
    with contextlib.suppress(Exception):  # pynvml missing or NVML unusable: try the command-line tool
        import pynvml

        pynvml.nvmlInit()
        try:
            version = pynvml.nvmlSystemGetDriverVersion()
        finally:
            pynvml.nvmlShutdown()
        return version.decode() if isinstance(version, bytes) else str(version)
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        out = subprocess.run(
            [smi, "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return out.splitlines()[0].strip() if out else None


def throughput_environment(devices: list[str]) -> dict[str, Any]:
    """Environment additions for a throughput suite: `device_info` per device plus availability."""
    return {
        "throughput_devices": {device: device_info(device) for device in devices},
        "device_availability": device_inventory(),
    }
