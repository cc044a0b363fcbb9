"""Throughput tables in the results store (the same SQLite file as training runs); no torch here.

`throughput_runs` holds one row per measured spec with its summary numbers and outcome;
`throughput_samples` every raw sample (series `subject`: the spec's own timing; `copy`: the
same-size copy it is held against; `native`: torch's own module for a layer, sample i from the
same round of interleaved blocks as the subject's sample i). Written by the driver only, one spec
per transaction, on the connection of `normbench.store.Store`; the tables are created with IF NOT
EXISTS, so a store made before throughput existed gains them on first use.

Older stores: columns added to THROUGHPUT_RUNS since a store was written (compile, the native
columns) are added to its table with ALTER TABLE before the first write (their DEFAULT or NULL is
what the earlier rows were: eager, no native twin), and a reader of a table that still lacks them
gets that default or NaN. No schema-version bump: nothing an older normbench reads changes, and a
bump would turn every existing store, training included, away for additive columns.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterable
from typing import Any

import pandas as pd

from normbench.frames import THROUGHPUT_COLUMNS, THROUGHPUT_SAMPLE_COLUMNS
from normbench.tables import (
    THROUGHPUT_RUNS,
    THROUGHPUT_SAMPLES,
    THROUGHPUT_TABLES,
    add_missing_columns,
    present_columns,
    schema_sql,
)
from normbench.throughput.spec import FINAL_THROUGHPUT_OUTCOMES, KIND, ThroughputResult

# Series of throughput_samples: the spec's own timing, the same-size copy it is held against, and
# torch's own module for the layer.
SUBJECT_SERIES, COPY_SERIES, NATIVE_SERIES = "subject", "copy", "native"
_DEFAULT = re.compile(r"DEFAULT\s+'([^']*)'")


def create_throughput_tables(conn: sqlite3.Connection) -> None:
    """Create the throughput tables if they are missing, and add columns an older store lacks
    (safe to call on every run)."""
    with conn:
        conn.executescript(schema_sql(THROUGHPUT_TABLES))
        add_missing_columns(conn, THROUGHPUT_TABLES)


def throughput_row(result: ThroughputResult, env_id: int | None) -> tuple[Any, ...]:
    """The `throughput_runs` row of one result, in THROUGHPUT_RUNS column order."""
    # Plain columns are the result's attributes, else the spec's, by name: the result's `allocator`
    # (the policy in effect) wins over the spec's requested one.
    spec = result.spec
    data = spec.to_dict()
    derived = {
        "spec_id": spec.spec_id,
        "kind": KIND,
        "label": spec.label or spec.norm_label,
        "norm_options": json.dumps(data["norm_options"], sort_keys=True),
        "options": json.dumps(data["options"], sort_keys=True),
        "shape": json.dumps(list(spec.shape)),
        "n_samples": len(result.samples),
        "noisy": None if result.noisy is None else int(result.noisy),
        "spec": json.dumps(data, sort_keys=True),
        "env_id": env_id,
    }
    return THROUGHPUT_RUNS.row(derived, result, spec)


def write_throughput_result(conn: sqlite3.Connection, result: ThroughputResult, env_id: int | None = None) -> None:
    """Write one spec's row and all its samples in one transaction, replacing an earlier attempt."""
    spec_id = result.spec.spec_id
    row = throughput_row(result, env_id)
    samples = [(spec_id, SUBJECT_SERIES, i, t, n)
               for i, (t, n) in enumerate(zip(result.samples, result.sample_numbers))]
    samples += [(spec_id, COPY_SERIES, i, t, n)
                for i, (t, n) in enumerate(zip(result.copy_samples, result.copy_sample_numbers))]
    samples += [(spec_id, NATIVE_SERIES, i, t, n)
                for i, (t, n) in enumerate(zip(result.native_samples, result.native_sample_numbers))]
    with conn:  # the row and all its samples, or nothing
        conn.execute("DELETE FROM throughput_samples WHERE spec_id = ?", (spec_id,))
        conn.execute(THROUGHPUT_RUNS.insert_sql("INSERT OR REPLACE"), row)
        conn.executemany(THROUGHPUT_SAMPLES.insert_sql(), samples)


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
    present = present_columns(conn, "throughput_runs")
    stored = [c for c in THROUGHPUT_COLUMNS if c in present]
    frame = pd.read_sql_query(f"SELECT {', '.join(stored)} FROM throughput_runs ORDER BY rowid", conn)
    for column in THROUGHPUT_RUNS.columns:  # written by an older normbench: what those rows were
        if column.in_frame and column.name not in present:
            default = _DEFAULT.search(column.sql)
            frame[column.name] = default.group(1) if default else float("nan")
    frame = frame[THROUGHPUT_COLUMNS]
    frame["noisy"] = frame["noisy"].map(lambda v: None if pd.isna(v) else bool(v)).astype(object)
    return _only(frame, spec_ids)


def throughput_samples_frame(conn: sqlite3.Connection, spec_ids: Iterable[str] | None = None) -> pd.DataFrame:
    """Raw samples, long format, with THROUGHPUT_SAMPLE_COLUMNS (for bootstrap intervals in compare)."""
    if not _has_table(conn, "throughput_samples"):
        return pd.DataFrame(columns=THROUGHPUT_SAMPLE_COLUMNS)
    frame = pd.read_sql_query(THROUGHPUT_SAMPLES.select_frame_sql("spec_id, series, sample_index"), conn)
    return _only(frame, spec_ids)


def _only(frame: pd.DataFrame, spec_ids: Iterable[str] | None) -> pd.DataFrame:
    if spec_ids is None:
        return frame
    return frame[frame["spec_id"].isin(set(spec_ids))].reset_index(drop=True)


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,)).fetchone() is not None
