"""ResultFrames: the pandas view of a results store that stats and reports read (no torch here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from normbench.tables import CURVES, EPOCHS, INFERENCE_FLAGS, PROBES, RUNS, THROUGHPUT_RUNS, THROUGHPUT_SAMPLES

# The column lists below come from the table declarations in normbench/tables.py (one list per
# table makes the schema, the rows written and these frames). Outcome names: normbench.spec.

# Columns of ResultFrames.runs, one row per stored run (any outcome).
RUN_COLUMNS = RUNS.frame_columns

# Columns of ResultFrames.curves, one row per evaluation point of a run (val_loss/val_accuracy:
# on the dataset's validation split, NaN without one).
CURVE_COLUMNS = CURVES.frame_columns

# Columns of ResultFrames.epochs, one row per epoch of a run: the training-mode mean loss and
# accuracy over the epoch's `steps` batches (normbench/epochs.py).
EPOCH_COLUMNS = EPOCHS.frame_columns

# Columns of ResultFrames.inference_flags, 16 rows per BLN run: the four flags (0/1) and the
# model's validation (NaN without a split) and test loss and accuracy under them (flag_search.py).
INFERENCE_FLAG_COLUMNS = INFERENCE_FLAGS.frame_columns

# Columns of ResultFrames.probes, long format: one row per probe value at an evaluation point.
# probe is one of percentiles (keys p15, p50, p85), train_eval_gap (batch_stats_accuracy,
# eval_accuracy), grad_norms (key = layer name), smoothness (loss_range, gradient_predictiveness,
# beta_smoothness).
PROBE_COLUMNS = PROBES.frame_columns

# Columns of ResultFrames.throughput, one row per measured throughput spec (suite kind
# `throughput`; written by normbench/throughput/store.py). Times in seconds per call; summaries are
# of the raw samples in ResultFrames.throughput_samples. Identity: spec_id. What was timed: subject
# (layer | model | conv_bn), name (norm / model name), label (model or conv case label, else the
# norm label), norm, norm_label, norm_options and options (JSON text), shape (JSON list, batch
# first), batch_size, numel, dtype, memory_format, mode (train | eval), operation (forward |
# forward_backward | train_step | inference), variant (conv_bn: folded | unfolded, else ""),
# device, device_name, threads, method (blocked | adaptive), min_run_time. Result: outcome
# (completed | skipped | undefined | failed) and reason; n_samples, number_per_run, median_s,
# iqr_s, iqr_over_median, noisy (IQR/median > 10 %), items_per_s (batch rows per second). Layers
# only (None elsewhere): bytes_moved (ideal bytes per call), bytes_model (the model in words),
# achieved_gbps, copy_median_s and copy_gbps (same-size copy on the same device in the same run),
# roofline_fraction (achieved / copy GB/s). Every subject: peak_memory_bytes (one step, above the
# allocation at its start) and peak_memory_method (how it was measured); allocator (the CPU
# allocator policy in effect: retain = glibc keeps freed blocks, system = its defaults); load_avg
# (1-minute load average when the measurement started: above the CPU count, other processes
# competed for the cores and the timing is suspect); wall_time_s, started_at, finished_at.
THROUGHPUT_COLUMNS = THROUGHPUT_RUNS.frame_columns

# Columns of ResultFrames.throughput_samples, long format: one row per raw timing sample (seconds
# per call, each the average of number_per_run calls). series is `subject` (the spec's own timing)
# or `copy` (the same-size copy its roofline fraction is relative to).
THROUGHPUT_SAMPLE_COLUMNS = THROUGHPUT_SAMPLES.frame_columns


@dataclass
class ResultFrames:
    """Everything a report needs from one output directory."""

    runs: pd.DataFrame
    curves: pd.DataFrame
    probes: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=PROBE_COLUMNS))
    epochs: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=EPOCH_COLUMNS))
    inference_flags: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=INFERENCE_FLAG_COLUMNS))
    environment: dict[str, Any] = field(default_factory=dict)
    suite_name: str = ""
    suite_description: str = ""
    suite_yaml: str = ""
    command: str = ""
    # Throughput suites only (kind `throughput`); empty for training suites.
    throughput: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=THROUGHPUT_COLUMNS))
    throughput_samples: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=THROUGHPUT_SAMPLE_COLUMNS)
    )

    @classmethod
    def empty(cls) -> "ResultFrames":
        """Frames with every column and no rows (a store with nothing in it)."""
        return cls(runs=pd.DataFrame(columns=RUN_COLUMNS), curves=pd.DataFrame(columns=CURVE_COLUMNS))
