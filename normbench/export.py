"""`normbench export`: one row per run as CSV or Parquet, for pandas and seaborn."""

from __future__ import annotations

import os
from pathlib import Path

from normbench.store import load_frames

# The columns the export promises, first and in this order; every other stored column follows.
LEADING_COLUMNS = [
    "run_id", "suite", "model", "dataset", "norm", "norm_options", "batch_size", "seed", "device",
    "outcome", "final_test_accuracy", "final_test_loss", "step_time_median_s",
]


class ExportError(Exception):
    """The export cannot be written."""


def export_runs(out_dir: str | Path, path: str | Path, fmt: str, *, all_runs: bool = False) -> int:
    """Write the runs of `out_dir` to `path` (csv or parquet) atomically; returns the row count.

    A store of a throughput suite (no training runs, only measurements) exports one row per
    measurement instead, with normbench.frames.THROUGHPUT_COLUMNS.
    """
    frames = load_frames(out_dir, all_runs=all_runs)
    if len(frames.runs) == 0 and len(frames.throughput) > 0:
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
