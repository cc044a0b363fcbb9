"""The ideal-bytes model of a norm layer and the copy bandwidth it is held against (the roofline).

Normalization is memory-bound: its arithmetic per element is a handful of operations, so the
fastest possible kernel is limited by how many times it must stream the activation tensor through
memory. Let E be the input's element count and s its element size (bytes, in the input's dtype).
The ideal algorithm moves ``passes × E × s`` bytes per call, with ``passes``:

=====================================  ========  ==========================================
case                                   passes    why
=====================================  ========  ==========================================
forward, statistics from the input     3         read x for the statistics, read x again to
                                                 normalize, write y
forward, fixed statistics              2         read x, write y (BN/renorm in eval with
                                                 running estimates; IN with tracked stats)
backward, statistics from the input    5         pass 1 reads dy and x for Σdy and Σdy·x̂;
                                                 pass 2 reads dy and x again and writes dx
backward, fixed statistics             3         one pass: read dy and x (x for dγ), write dx
``none`` (identity)                    0         nothing to move: no GB/s is reported
=====================================  ========  ==========================================

``forward_backward`` is forward + backward: 8 passes (input statistics) or 5 (fixed). BLN computes
two sets of statistics (over N, and over C) but an ideal kernel gathers both in the same read, so it
counts like the others. Left out as small next to E: the statistics themselves (O(C) or O(N·G)
values; for BLN the per-position batch statistics are E/N values, 3 % at N = 32), γ, β and the
running estimates. Upstream gradients of the benchmark are fixed tensors, so reading dy counts but
producing it does not.

Achieved bandwidth = ideal bytes / median time. The roofline is ``dst.copy_(src)`` on a tensor of
the same shape, dtype, memory format and device, measured in the same run: it moves ``2 × E × s``
bytes (read + write), so its GB/s is what streaming the tensor costs on this machine, and the
fraction achieved / copy is 1.0 for a kernel as fast as a copy.
"""

from __future__ import annotations

from typing import Any

from normbench.throughput.spec import LAYER, ThroughputSpec, element_size

FORWARD_INPUT_STATS, FORWARD_FIXED_STATS = 3, 2
BACKWARD_INPUT_STATS, BACKWARD_FIXED_STATS = 5, 3
COPY_PASSES = 2


def uses_fixed_statistics(norm: str, mode: str, norm_options: dict[str, Any]) -> bool:
    """True when the norm normalizes with stored statistics rather than the input's.

    That is eval mode for `batch` with running estimates (the default), `batch_renorm`, and
    `instance` with `track_running_stats: true`. BLN's feature statistics always come from the
    input, so it never counts as fixed.
    """
    if mode != "eval":
        return False
    if norm == "batch":
        return norm_options.get("track_running_stats", True) is not False
    if norm == "batch_renorm":
        return True
    if norm == "instance":
        return norm_options.get("track_running_stats", False) is True
    return False


def ideal_passes(norm: str, mode: str, operation: str, norm_options: dict[str, Any]) -> tuple[int, str]:
    """Full-tensor passes of the ideal algorithm (see the module table) and a one-line explanation."""
    if norm == "none":
        return 0, "identity: no data to move"
    fixed = uses_fixed_statistics(norm, mode, norm_options)
    forward = FORWARD_FIXED_STATS if fixed else FORWARD_INPUT_STATS
    stats = "fixed statistics" if fixed else "statistics from the input"
    if operation == "forward":
        return forward, f"forward, {stats}: {forward} x input bytes"
    if operation == "forward_backward":
        backward = BACKWARD_FIXED_STATS if fixed else BACKWARD_INPUT_STATS
        return forward + backward, f"forward + backward, {stats}: ({forward} + {backward}) x input bytes"
    raise ValueError(f"no bytes model for operation {operation!r}; allowed: forward, forward_backward")


def ideal_bytes(spec: ThroughputSpec) -> tuple[int | None, str]:
    """Ideal bytes per call of a layer spec and the model used; (None, "") for models and conv+BN."""
    if spec.subject != LAYER:
        return None, ""
    passes, text = ideal_passes(spec.norm, spec.mode, spec.operation, spec.norm_kwargs)
    if passes == 0:
        return None, text
    return passes * spec.numel * element_size(spec.dtype), text


def gigabytes_per_second(nbytes: float, seconds: float) -> float:
    """Bandwidth in GB/s (10^9 bytes per second)."""
    if seconds <= 0:
        raise ValueError(f"time must be positive, got {seconds}")
    return nbytes / seconds / 1e9


def copy_bytes(numel: int, dtype: str) -> int:
    """Bytes one `dst.copy_(src)` of `numel` elements moves: read src and write dst."""
    return COPY_PASSES * numel * element_size(dtype)


def copy_step(shape: tuple[int, ...], dtype: str, device: str, memory_format: str, seed: int = 0):
    """A callable copying a same-size tensor into a preallocated one (the roofline measurement)."""
    import torch

    from normbench.throughput.device import torch_dtype, torch_memory_format

    generator = torch.Generator().manual_seed(seed)
    src = torch.randn(shape, generator=generator).to(device=device, dtype=torch_dtype(dtype))
    src = src.contiguous(memory_format=torch_memory_format(memory_format))
    dst = torch.empty_like(src)  # empty_like keeps src's memory format

    def step() -> None:
        dst.copy_(src)

    return step
