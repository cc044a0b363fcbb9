"""Checkpoint selection: which evaluation point of a run gives its final metrics (``RunSpec.select``).

``last``: the last evaluation point. ``best_validation_loss``: the evaluation point after step 0
with the lowest validation loss, earliest on ties (Keras' ``ModelCheckpoint(save_best_only=True)``,
which Ziaee & Cano evaluate on the test set); the model's state at that point is kept in memory and
put back at the end, so what runs after training (the inference-flag search) sees that checkpoint.
"""

from __future__ import annotations

import copy
import math

import torch

from normbench.spec import CurvePoint

LAST, BEST_VALIDATION_LOSS = "last", "best_validation_loss"


class CheckpointSelection:
    """Remembers the selected evaluation point (and, for ``best_validation_loss``, the model state)."""

    def __init__(self, rule: str) -> None:
        if rule not in (LAST, BEST_VALIDATION_LOSS):
            raise ValueError(f"select must be {LAST} or {BEST_VALIDATION_LOSS}; got {rule!r}")
        self.rule = rule
        self.point: CurvePoint | None = None
        self._state: dict[str, torch.Tensor] | None = None

    def offer(self, point: CurvePoint, model: torch.nn.Module) -> None:
        """Consider an evaluation point (the model as evaluated there)."""
        if self.rule == LAST:
            self.point = point
            return
        if point.step == 0 or not math.isfinite(point.val_loss):
            return
        if self.point is None or point.val_loss < self.point.val_loss:
            self.point = point
            self._state = copy.deepcopy(model.state_dict())

    def restore(self, model: torch.nn.Module) -> CurvePoint | None:
        """Put the selected state back into ``model`` (a no-op for ``last``); the selected point."""
        if self._state is not None:
            model.load_state_dict(self._state)
        return self.point
