"""Throughput tables in the results store (the same SQLite file as training runs); no torch here.

`throughput_runs` holds one row per measured spec with its summary numbers and outcome;
`throughput_samples` every raw sample (series `subject`: the spec's own timing; `copy`: the
same-size copy it is held against). Written by the driver only, one spec per transaction, on the
connection of `normbench.store.Store`; the tables are created with IF NOT EXISTS, so a store made
before throughput existed gains them on first use.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable

import pandas as pd

from normbench.frames import THROUGHPUT_COLUMNS, THROUGHPUT_SAMPLE_COLUMNS
from normbench.throughput.spec import KIND, ThroughputResult

# Final results: resume skips them. Skipped and failed specs are tried again (a GPU may be present
# next time; an error may be fixed), as for training runs.
FINAL_THROUGHPUT_OUTCOMES = ("completed", "undefined")

THROUGHPUT_SCHEMA = """
CREATE TABLE IF NOT EXISTS throughput_runs (
    spec_id TEXT PRIMARY KEY,
    suite TEXT NOT NULL, kind TEXT NOT NULL, subject TEXT NOT NULL, name TEXT NOT NULL, label TEXT NOT NULL,
    norm TEXT NOT NULL, norm_label TEXT NOT NULL, norm_options TEXT NOT NULL, options TEXT NOT NULL,
    shape TEXT NOT NULL, batch_size INTEGER NOT NULL, numel INTEGER NOT NULL, dtype TEXT NOT NULL,
    memory_format TEXT NOT NULL, mode TEXT NOT NULL, operation TEXT NOT NULL, variant TEXT NOT NULL,
    device TEXT NOT NULL, device_name TEXT NOT NULL, threads INTEGER NOT NULL, method TEXT NOT NULL,
    min_run_time REAL NOT NULL, outcome TEXT NOT NULL, reason TEXT NOT NULL,
    n_samples INTEGER NOT NULL, number_per_run INTEGER NOT NULL, median_s REAL, iqr_s REAL,
    iqr_over_median REAL, noisy INTEGER, items_per_s REAL,
    bytes_moved INTEGER, bytes_model TEXT NOT NULL, achieved_gbps REAL,
    copy_median_s REAL, copy_gbps REAL, roofline_fraction REAL,
    peak_memory_bytes INTEGER, peak_memory_method TEXT NOT NULL, allocator TEXT NOT NULL, load_avg REAL,
    wall_time_s REAL NOT NULL, started_at TEXT NOT NULL, finished_at TEXT NOT NULL,
    spec TEXT NOT NULL, env_id INTEGER
);
CREATE TABLE IF NOT EXISTS throughput_samples (
    spec_id TEXT NOT NULL REFERENCES throughput_runs(spec_id) ON DELETE CASCADE,
    series TEXT NOT NULL, sample_index INTEGER NOT NULL, time_s REAL NOT NULL, number_per_run INTEGER NOT NULL,
    PRIMARY KEY (spec_id, series, sample_index)
);
"""


def create_throughput_tables(conn: sqlite3.Connection) -> None:
    """Create the throughput tables if they are missing (safe to call on every run)."""
    with conn:
        conn.executescript(THROUGHPUT_SCHEMA)


def write_throughput_result(conn: sqlite3.Connection, result: ThroughputResult, env_id: int | None = None) -> None:
    """Write one spec's row and all its samples in one transaction, replacing an earlier attempt."""
    spec = result.spec
    data = spec.to_dict()
    row = {
        "spec_id": spec.spec_id, "suite": spec.suite, "kind": KIND, "subject": spec.subject, "name": spec.name,
        "label": spec.label or spec.norm_label, "norm": spec.norm, "norm_label": spec.norm_label,
        "norm_options": json.dumps(data["norm_options"], sort_keys=True),
        "options": json.dumps(data["options"], sort_keys=True), "shape": json.dumps(list(spec.shape)),
        "batch_size": spec.batch_size, "numel": spec.numel, "dtype": spec.dtype, "memory_format": spec.memory_format,
        "mode": spec.mode, "operation": spec.operation, "variant": spec.variant, "device": spec.device,
        "device_name": result.device_name, "threads": spec.threads, "method": spec.method,
        "min_run_time": spec.min_run_time, "outcome": result.outcome, "reason": result.reason,
        "n_samples": len(result.samples), "number_per_run": result.number_per_run, "median_s": result.median_s,
        "iqr_s": result.iqr_s, "iqr_over_median": result.iqr_over_median,
        "noisy": None if result.noisy is None else int(result.noisy), "items_per_s": result.items_per_s,
        "bytes_moved": result.bytes_moved, "bytes_model": result.bytes_model, "achieved_gbps": result.achieved_gbps,
        "copy_median_s": result.copy_median_s, "copy_gbps": result.copy_gbps,
        "roofline_fraction": result.roofline_fraction, "peak_memory_bytes": result.peak_memory_bytes,
        "peak_memory_method": result.peak_memory_method, "allocator": result.allocator,
        "load_avg": result.load_avg,
        "wall_time_s": result.wall_time_s,
        "started_at": result.started_at, "finished_at": result.finished_at,
        "spec": json.dumps(data, sort_keys=True), "env_id": env_id,
    }
    samples = [(spec.spec_id, "subject", i, t, n) for i, (t, n) in enumerate(zip(result.samples, result.sample_numbers))]
    samples += [(spec.spec_id, "copy", i, t, n)
                for i, (t, n) in enumerate(zip(result.copy_samples, result.copy_sample_numbers))]
    with conn:  # the row and all its samples, or nothing
        conn.execute("DELETE FROM throughput_samples WHERE spec_id = ?", (spec.spec_id,))
        conn.execute(
            f"INSERT OR REPLACE INTO throughput_runs({', '.join(row)}) VALUES ({', '.join('?' for _ in row)})",
            tuple(row.values()),
        )
        conn.executemany(
            "INSERT INTO throughput_samples(spec_id, series, sample_index, time_s, number_per_run)"
            " VALUES (?, ?, ?, ?, ?)",
            samples,
        )


def final_throughput_ids(conn: sqlite3.Connection) -> set[str]:
    """Spec ids whose measurement is final (resume skips these); empty when the tables do not exist."""
    if not _has_table(conn, "throughput_runs"):
        return set()
    marks = ", ".join("?" for _ in FINAL_THROUGHPUT_OUTCOMES)
    rows = conn.execute(f"SELECT spec_id FROM throughput_runs WHERE outcome IN ({marks})", FINAL_THROUGHPUT_OUTCOMES)
    return {r[0] for r in rows}


def throughput_frame(conn: sqlite3.Connection, spec_ids: Iterable[str] | None = None) -> pd.DataFrame:
    """One row per stored spec with THROUGHPUT_COLUMNS (optionally only `spec_ids`); never creates tables."""
    if not _has_table(conn, "throughput_runs"):
        return pd.DataFrame(columns=THROUGHPUT_COLUMNS)
    frame = pd.read_sql_query(f"SELECT {', '.join(THROUGHPUT_COLUMNS)} FROM throughput_runs ORDER BY rowid", conn)
    frame["noisy"] = frame["noisy"].map(lambda v: None if pd.isna(v) else bool(v)).astype(object)
    return _only(frame, spec_ids)


def throughput_samples_frame(conn: sqlite3.Connection, spec_ids: Iterable[str] | None = None) -> pd.DataFrame:
    """Raw samples, long format, with THROUGHPUT_SAMPLE_COLUMNS (for bootstrap intervals in compare)."""
    if not _has_table(conn, "throughput_samples"):
        return pd.DataFrame(columns=THROUGHPUT_SAMPLE_COLUMNS)
    frame = pd.read_sql_query(
        f"SELECT {', '.join(THROUGHPUT_SAMPLE_COLUMNS)} FROM throughput_samples ORDER BY spec_id, series, sample_index",
        conn,
    )
    return _only(frame, spec_ids)


def _only(frame: pd.DataFrame, spec_ids: Iterable[str] | None) -> pd.DataFrame:
    if spec_ids is None:
        return frame
    return frame[frame["spec_id"].isin(set(spec_ids))].reset_index(drop=True)


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,)).fetchone() is not None
