"""The learning rate over a run: ``constant`` (the optimizer's lr at every step) or ``cosine``.

``cosine`` is cosine annealing without restarts (Loshchilov & Hutter 2017, "SGDR", eq. 5 with one
cycle, eta_min = 0): step s of S (1-based) trains with ``lr * (1 + cos(pi * (s - 1) / S)) / 2``, so
the first step uses the full rate and the last one a rate close to 0. A suite's budget then ends
where the rate does, which lets curves settle instead of oscillating at the constant rate's noise
level. The rate is a closed form of the step, not scheduler state, so a run is the same however it
is interrupted and re-run.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the suite schema imports SCHEDULES without torch
    import torch

SCHEDULES = ("constant", "cosine")  # the suite field `optimizer.schedule` takes these


def rate_factor(schedule: str, step: int, total_steps: int) -> float:
    """The multiple of the base lr used by (1-based) ``step`` of ``total_steps``."""
    if schedule == "constant":
        return 1.0
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * (step - 1) / total_steps))
    raise ValueError(f"unknown lr schedule {schedule!r}; expected one of {', '.join(SCHEDULES)}")


def set_rate(optimizer: torch.optim.Optimizer, base_lr: float, schedule: str, step: int, total_steps: int) -> None:
    """Set every parameter group's lr for ``step`` (nothing to do for ``constant``)."""
    if schedule == "constant":
        return
    lr = base_lr * rate_factor(schedule, step, total_steps)
    for group in optimizer.param_groups:
        group["lr"] = lr
