"""BLN's four inference flags after training: the model evaluated under all 16 combinations, no retraining.

Ziaee & Cano evaluated their trained BLN models under every combination of the flags that choose,
per statistic, the population estimate (True) or the current input's value (False) at inference,
and reported the best on the test set. Here every combination is evaluated on the validation
split (where the dataset has one) and on the test set, and all 16 rows are stored; the report
picks on validation and shows what picking on test would have claimed. The flags are set on every
BLN layer of the model together, as the authors set them, and restored afterwards: evaluation
runs in eval mode, where BLN updates no estimate, so the model leaves exactly as it came.
"""

from __future__ import annotations

import itertools
from typing import Callable

import torch

from normbench.norms.batch_layer import BatchLayerNorm
from normbench.spec import FlagRecord

# The authors' flag names, in the order of their table (and of normbench's batch_layer options).
FLAGS = ("batch_moving_mean", "batch_moving_var", "feature_moving_mean", "feature_moving_var")
# The authors' row order: True before False, the first flag varying slowest (TTTT, TTTF, ..., FFFF).
COMBINATIONS: tuple[tuple[bool, ...], ...] = tuple(itertools.product((True, False), repeat=len(FLAGS)))

Evaluate = Callable[[str], tuple[float, float]]  # split ("val" | "test") -> (loss, accuracy)


def bln_layers(model: torch.nn.Module) -> list[BatchLayerNorm]:
    """Every BLN layer of ``model``, in module order."""
    return [module for module in model.modules() if isinstance(module, BatchLayerNorm)]


def evaluate_flag_combinations(model: torch.nn.Module, evaluate: Evaluate, has_validation: bool) -> list[FlagRecord]:
    """All 16 combinations of the inference flags on ``model``'s BLN layers ([] when it has none).

    ``evaluate(split)`` gives the model's eval-mode (loss, accuracy) on ``"val"`` or ``"test"``;
    validation values are NaN when ``has_validation`` is false. Each layer's own flags are put back
    afterwards, also when an evaluation raises.
    """
    layers = bln_layers(model)
    if not layers:
        return []
    saved = [tuple(getattr(layer, flag) for flag in FLAGS) for layer in layers]
    rows = []
    try:
        for combination in COMBINATIONS:
            for layer in layers:
                for flag, value in zip(FLAGS, combination):
                    setattr(layer, flag, value)
            val_loss, val_accuracy = evaluate("val") if has_validation else (float("nan"), float("nan"))
            test_loss, test_accuracy = evaluate("test")
            rows.append(FlagRecord(*combination, val_loss=val_loss, val_accuracy=val_accuracy,
                                   test_loss=test_loss, test_accuracy=test_accuracy))
    finally:
        for layer, values in zip(layers, saved):
            for flag, value in zip(FLAGS, values):
                setattr(layer, flag, value)
    return rows
