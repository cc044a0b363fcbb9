"""`normbench export`: one row per run (or per curve point, epoch, inference-flag row) as CSV or Parquet."""

from __future__ import annotations

import os
from pathlib import Path

from normbench.store import load_frames

# The columns the export promises, first and in this order; every other stored column follows.
LEADING_COLUMNS = [
    "run_id", "suite", "model", "dataset", "norm", "norm_options", "batch_size", "seed", "device",
    "outcome", "final_test_accuracy", "final_test_loss", "step_time_median_s",
]


# The per-run tables `--table` can export besides `runs`, each led by the run's identity columns.
PER_RUN_TABLES = ("curves", "epochs", "inference_flags", "probes")
RUN_IDENTITY = ["run_id", "model", "model_label", "dataset", "norm", "norm_label", "batch_size", "seed"]


class ExportError(Exception):
    """The export cannot be written."""


def export_runs(out_dir: str | Path, path: str | Path, fmt: str, *, all_runs: bool = False, table: str = "runs") -> int:
    """Write the runs of `out_dir` to `path` (csv or parquet) atomically; returns the row count.

    ``table`` ``curves``, ``epochs`` (training loss per epoch), ``inference_flags`` (BLN's 16
    combinations) or ``probes`` exports that table instead, each row led by its run's identity. A
    store of a throughput suite (no training runs, only measurements) exports one row per
    measurement, with normbench.frames.THROUGHPUT_COLUMNS.
    """
    if table != "runs" and table not in PER_RUN_TABLES:
        raise ExportError(f"unknown table {table!r}; allowed: runs, {', '.join(PER_RUN_TABLES)}")
    frames = load_frames(out_dir, all_runs=all_runs)
    if table != "runs":
        runs = frames.runs[RUN_IDENTITY].merge(getattr(frames, table), on="run_id", how="inner")
    elif len(frames.runs) == 0 and len(frames.throughput) > 0:
        runs = frames.throughput
    else:
        runs = frames.runs
        ordered = LEADING_COLUMNS + [c for c in runs.columns if c not in LEADING_COLUMNS]
        runs = runs[ordered]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        if fmt == "csv":
            runs.to_csv(tmp, index=False)
        elif fmt == "parquet":
            runs.to_parquet(tmp, index=False)
        else:
            raise ExportError(f"unknown export format {fmt!r}; allowed: csv, parquet")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return len(runs)
