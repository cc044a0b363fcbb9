"""ResultFrames: the pandas view of a results store that stats and reports read (no torch here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

# Columns of ResultFrames.runs, one row per stored run (any outcome).
RUN_COLUMNS = [
    "run_id", "suite", "kind", "model", "model_label", "dataset", "norm", "norm_label", "norm_options",
    "model_options", "dataset_options", "batch_size", "seed", "device", "optimizer", "lr",
    "base_lr", "lr_scaling", "reference_batch_size", "momentum", "weight_decay", "eval_every",
    "steps", "epochs", "samples", "target_accuracy", "outcome", "error", "final_test_accuracy", "final_test_loss",
    "final_train_loss", "step_time_median_s", "samples_per_s", "steps_done", "wall_time_s",
    "started_at", "finished_at",
]

# Columns of ResultFrames.curves, one row per evaluation point of a run.
CURVE_COLUMNS = [
    "run_id", "step", "epoch", "samples_seen", "train_loss", "test_loss", "test_accuracy",
    "wall_time_s",
]

# Columns of ResultFrames.probes, long format: one row per probe value at an evaluation point.
# probe is one of percentiles (keys p15, p50, p85), train_eval_gap (batch_stats_accuracy,
# eval_accuracy), grad_norms (key = layer name), smoothness (loss_range, gradient_predictiveness,
# beta_smoothness).
PROBE_COLUMNS = ["run_id", "step", "probe", "key", "value"]

# Run outcomes. Only COMPLETED runs have meaningful final metrics; DIVERGED runs are failures
# of the configuration (a result); UNDEFINED means the norm has no definition there (e.g. BN
# with one value per channel); FAILED is an error of the run itself; SKIPPED never ran.
COMPLETED, DIVERGED, UNDEFINED, FAILED, SKIPPED = "completed", "diverged", "undefined", "failed", "skipped"
OUTCOMES = (COMPLETED, DIVERGED, UNDEFINED, FAILED, SKIPPED)


@dataclass
class ResultFrames:
    """Everything a report needs from one output directory."""

    runs: pd.DataFrame
    curves: pd.DataFrame
    probes: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=PROBE_COLUMNS))
    environment: dict[str, Any] = field(default_factory=dict)
    suite_name: str = ""
    suite_description: str = ""
    suite_yaml: str = ""
    command: str = ""

    @classmethod
    def empty(cls) -> "ResultFrames":
        return cls(runs=pd.DataFrame(columns=RUN_COLUMNS), curves=pd.DataFrame(columns=CURVE_COLUMNS))
