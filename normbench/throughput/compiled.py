"""Compiled variants of a throughput subject: ``torch.compile`` with inductor, or eager as it is.

A spec's ``compile`` is ``eager`` (the module as written) or ``inductor`` (``torch.compile(module,
backend="inductor")``: generated C++/OpenMP loops on CPU, built with the system C++ compiler;
Triton kernels on CUDA). The first call compiles (forward and, for a backward pass, the backward
graph); the run records its time as ``compile_time_s`` and times the calls after it. Where
compilation cannot work here the spec is ``skipped`` with the reason: dynamo unsupported on this
Python, no C++ compiler for CPU code, no Triton for CUDA, or the compiler stack itself refusing
the subject (an error raised from ``torch._dynamo`` / ``torch._inductor``).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import time
from collections.abc import Callable

EAGER, INDUCTOR = "eager", "inductor"
COMPILE_MODES = (EAGER, INDUCTOR)
_COMPILER_MODULES = ("torch._dynamo", "torch._inductor")


def compile_unavailable_reason(mode: str, device: str) -> str | None:
    """Why ``mode`` cannot compile for ``device`` on this machine, or None (eager always can)."""
    if mode == EAGER:
        return None
    import torch._dynamo

    if not torch._dynamo.is_dynamo_supported():
        return f"torch.compile is not supported on Python {sys.version_info.major}.{sys.version_info.minor} with torch {_torch_version()}"
    kind = device.split(":")[0]
    if kind == "cpu":
        compiler = os.environ.get("CXX") or ("clang++" if sys.platform == "darwin" else "g++")
        if shutil.which(compiler) is None:
            return f"inductor builds CPU kernels with a C++ compiler and {compiler!r} is not on PATH (set CXX)"
    elif kind == "cuda" and importlib.util.find_spec("triton") is None:
        return "inductor needs Triton for CUDA kernels and it is not installed"
    elif kind not in ("cpu", "cuda"):
        return f"inductor does not generate kernels for {kind} here"
    return None


def compiled(module, mode: str):
    """``module`` itself (eager) or ``torch.compile(module, backend="inductor")``."""
    if mode == EAGER:
        return module
    if mode != INDUCTOR:
        raise ValueError(f"unknown compile mode {mode!r}; allowed: {', '.join(COMPILE_MODES)}")
    import torch

    return torch.compile(module, backend="inductor")


def first_call_seconds(step: Callable[[], object], synchronize: Callable[[], None]) -> float:
    """Wall time of one call of ``step`` (for a compiled subject: compilation included)."""
    began = time.perf_counter()
    step()
    synchronize()
    return time.perf_counter() - began


def is_compiler_error(exc: BaseException) -> bool:
    """True when ``exc`` (or what caused it) was raised by torch's compiler stack."""
    seen = 0
    while exc is not None and seen < 10:
        if type(exc).__module__.startswith(_COMPILER_MODULES):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def _torch_version() -> str:
    import torch

    return torch.__version__
