"""The results store's tables: one column list per table, from which the SQLite schema, the rows
written and the pandas frames' columns are all made (no torch, no pandas here).

Adding a column means one line here, plus a field or property of that name on the record (or a
derived value in the store's row builder); `tests/test_store.py` checks every list against
`PRAGMA table_info` of a fresh store. The declarations reproduce the schema of SCHEMA_VERSION 1
column for column (names, order, types, constraints), plus columns added since, each with a default
(`_RUN_ADDED`), which the store adds to an older file when it opens it; stores written before and
after read alike.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Column:
    """One column: its name, its SQL type and constraints, and whether the pandas frame shows it."""

    name: str
    sql: str
    in_frame: bool = True


@dataclass(frozen=True)
class Table:
    """A table's columns in storage order, its table constraints, and the frame's column order.

    `frame_order` is given only where the frame lists its columns in another order than the table;
    by default the frame has every `in_frame` column in table order.
    """

    name: str
    columns: tuple[Column, ...]
    constraints: tuple[str, ...] = ()
    frame_order: tuple[str, ...] | None = None
    names: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", tuple(c.name for c in self.columns))
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"table {self.name}: duplicate column names")
        if self.frame_order is not None:
            in_frame = {c.name for c in self.columns if c.in_frame}
            if sorted(self.frame_order) != sorted(in_frame):
                raise ValueError(f"table {self.name}: frame_order must list each in-frame column once")

    @property
    def frame_columns(self) -> list[str]:
        """The columns of the table's pandas frame, in the frame's order (a fresh list)."""
        if self.frame_order is not None:
            return list(self.frame_order)
        return [c.name for c in self.columns if c.in_frame]

    def added_columns_sql(self, present: set[str]) -> list[str]:
        """`ALTER TABLE … ADD COLUMN` for each declared column not in ``present`` (each needs a default)."""
        return [f"ALTER TABLE {self.name} ADD COLUMN {c.name} {c.sql}" for c in self.columns if c.name not in present]

    def create_sql(self) -> str:
        """`CREATE TABLE IF NOT EXISTS` statement for this table."""
        parts = [f"{c.name} {c.sql}" for c in self.columns] + list(self.constraints)
        body = ",\n    ".join(parts)
        return f"CREATE TABLE IF NOT EXISTS {self.name} (\n    {body}\n);\n"

    def insert_sql(self, verb: str = "INSERT") -> str:
        """`<verb> INTO table(every column) VALUES (?, …)`: rows are tuples in column order."""
        marks = ", ".join("?" for _ in self.names)
        return f"{verb} INTO {self.name}({', '.join(self.names)}) VALUES ({marks})"

    def select_frame_sql(self, order_by: str) -> str:
        """`SELECT <frame columns> FROM table ORDER BY …`, the query a frame is read with."""
        return f"SELECT {', '.join(self.frame_columns)} FROM {self.name} ORDER BY {order_by}"

    def row(self, derived: dict[str, Any], *records: Any) -> tuple[Any, ...]:
        """One row in column order: a column's value from `derived`, else the attribute of that name on
        the first of `records` that has one (e.g. the result, then its spec).

        Raises ValueError for a derived name that is no column, AttributeError for a column no
        record provides, so a list and a record cannot drift apart silently.
        """
        unknown = set(derived) - set(self.names)
        if unknown:
            raise ValueError(f"table {self.name}: no columns {sorted(unknown)}")
        return tuple(derived[name] if name in derived else _attribute(records, name, self.name)
                     for name in self.names)


def _attribute(records: tuple[Any, ...], name: str, table: str) -> Any:
    for record in records:
        if hasattr(record, name):
            return getattr(record, name)
    raise AttributeError(f"table {table}: column {name!r} is neither derived nor an attribute of "
                         f"{', '.join(type(r).__name__ for r in records)}")


_RUN_ID_OF_A_RUN = "TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE"

META = Table("meta", (
    Column("key", "TEXT PRIMARY KEY"),
    Column("value", "TEXT NOT NULL"),
))
ENVIRONMENT = Table("environment", (
    Column("env_id", "INTEGER PRIMARY KEY AUTOINCREMENT"),
    Column("captured_at", "TEXT NOT NULL"),
    Column("data", "TEXT NOT NULL"),
))
SUITES = Table("suites", (
    Column("suite_id", "INTEGER PRIMARY KEY AUTOINCREMENT"),
    Column("name", "TEXT NOT NULL"),
    Column("description", "TEXT NOT NULL"),
    Column("yaml", "TEXT NOT NULL"),
    Column("command", "TEXT NOT NULL"),
    Column("run_ids", "TEXT NOT NULL"),
    Column("written_at", "TEXT NOT NULL"),
))

# The runs table in blocks, because its frame has always shown the training settings before the
# budget while the table stores the budget first (the export's column order follows the frame).
_RUN_IDENTITY = (
    Column("run_id", "TEXT PRIMARY KEY"),
    Column("suite", "TEXT NOT NULL"),
    Column("kind", "TEXT NOT NULL"),
    Column("model", "TEXT NOT NULL"),
    Column("model_label", "TEXT NOT NULL"),
    Column("dataset", "TEXT NOT NULL"),
    Column("norm", "TEXT NOT NULL"),
    Column("norm_label", "TEXT NOT NULL"),
    Column("norm_options", "TEXT NOT NULL"),
    Column("model_options", "TEXT NOT NULL"),
    Column("dataset_options", "TEXT NOT NULL"),
    Column("batch_size", "INTEGER NOT NULL"),
    Column("seed", "INTEGER NOT NULL"),
    Column("device", "TEXT NOT NULL"),
    Column("optimizer", "TEXT NOT NULL"),
    Column("lr", "REAL NOT NULL"),
)
_RUN_BUDGET = (
    Column("steps", "INTEGER"),
    Column("epochs", "REAL"),
    Column("samples", "INTEGER"),
)
_RUN_SETTINGS = (
    Column("base_lr", "REAL"),
    Column("lr_scaling", "TEXT NOT NULL"),
    Column("reference_batch_size", "INTEGER"),
    Column("momentum", "REAL NOT NULL"),
    Column("weight_decay", "REAL NOT NULL"),
    Column("eval_every", "INTEGER NOT NULL"),
)
_RUN_OUTCOME = (  # the accuracy a run is judged against, then what it produced
    Column("target_accuracy", "REAL"),
    Column("outcome", "TEXT NOT NULL"),
    Column("error", "TEXT NOT NULL"),
    Column("final_test_accuracy", "REAL"),
    Column("final_test_loss", "REAL"),
    Column("final_train_loss", "REAL"),
    Column("step_time_median_s", "REAL"),
    Column("samples_per_s", "REAL"),
    Column("steps_done", "INTEGER NOT NULL"),
    Column("wall_time_s", "REAL NOT NULL"),
    Column("started_at", "TEXT NOT NULL"),
    Column("finished_at", "TEXT NOT NULL"),
)
_RUN_STORED_ONLY = (
    Column("spec", "TEXT NOT NULL", in_frame=False),
    Column("extra_metrics", "TEXT NOT NULL", in_frame=False),
    Column("env_id", "INTEGER REFERENCES environment(env_id)", in_frame=False),
)
# Columns added to version 1 stores after their creation: last in the table (where ALTER TABLE ADD
# COLUMN puts them), each with a default that is what every older run had (the store adds them).
_RUN_ADDED = (
    Column("batching", "TEXT NOT NULL DEFAULT 'iid'"),  # normbench/batching.py: iid, fixed or classes_per_batch=k
    Column("selection", "TEXT NOT NULL DEFAULT 'last'"),  # RunSpec.select (normbench/checkpoints.py): last | best_validation_loss
    Column("selected_step", "INTEGER"),  # the evaluation point the final metrics come from
    Column("lr_schedule", "TEXT NOT NULL DEFAULT 'constant'"),  # RunSpec.lr_schedule: constant | cosine
)
RUNS = Table(
    "runs", _RUN_IDENTITY + _RUN_BUDGET + _RUN_SETTINGS + _RUN_OUTCOME + _RUN_STORED_ONLY + _RUN_ADDED,
    frame_order=tuple(c.name for c in _RUN_IDENTITY + _RUN_SETTINGS + _RUN_ADDED + _RUN_BUDGET + _RUN_OUTCOME),
)
CURVES = Table("curves", (
    Column("run_id", _RUN_ID_OF_A_RUN),
    Column("step", "INTEGER NOT NULL"),
    Column("epoch", "REAL NOT NULL"),
    Column("samples_seen", "INTEGER NOT NULL"),
    Column("train_loss", "REAL"),
    Column("test_loss", "REAL"),
    Column("test_accuracy", "REAL"),
    Column("wall_time_s", "REAL NOT NULL"),
    # Added after version 1 (NULL in older stores and without a validation split).
    Column("val_loss", "REAL"),
    Column("val_accuracy", "REAL"),
), constraints=("PRIMARY KEY (run_id, step)",))
# One row per epoch of training (normbench/epochs.py): training-mode mean loss and accuracy.
EPOCHS = Table("epochs", (
    Column("run_id", _RUN_ID_OF_A_RUN),
    Column("epoch", "INTEGER NOT NULL"),
    Column("steps", "INTEGER NOT NULL"),
    Column("train_loss", "REAL"),
    Column("train_accuracy", "REAL"),
), constraints=("PRIMARY KEY (run_id, epoch)",))
# BLN runs: the trained model under each of the 16 inference-flag combinations (normbench/flag_search.py).
INFERENCE_FLAGS = Table("inference_flags", (
    Column("run_id", _RUN_ID_OF_A_RUN),
    Column("batch_moving_mean", "INTEGER NOT NULL"),
    Column("batch_moving_var", "INTEGER NOT NULL"),
    Column("feature_moving_mean", "INTEGER NOT NULL"),
    Column("feature_moving_var", "INTEGER NOT NULL"),
    Column("val_loss", "REAL"),
    Column("val_accuracy", "REAL"),
    Column("test_loss", "REAL"),
    Column("test_accuracy", "REAL"),
), constraints=("PRIMARY KEY (run_id, batch_moving_mean, batch_moving_var, feature_moving_mean, feature_moving_var)",))
PROBES = Table("probes", (
    Column("run_id", _RUN_ID_OF_A_RUN),
    Column("step", "INTEGER NOT NULL"),
    Column("probe", "TEXT NOT NULL"),
    Column("key", "TEXT NOT NULL"),
    Column("value", "REAL"),
), constraints=("PRIMARY KEY (run_id, step, probe, key)",))

# Columns added after a table's first release carry a DEFAULT (or are nullable), so the store can
# ALTER an older table to add them (normbench/throughput/store.py) and a reader of an older table
# fills them in: compile 'eager' and the native columns ''/NULL, which is what those rows were.
THROUGHPUT_RUNS = Table("throughput_runs", (
    Column("spec_id", "TEXT PRIMARY KEY"),
    Column("suite", "TEXT NOT NULL"),
    Column("kind", "TEXT NOT NULL", in_frame=False),
    Column("subject", "TEXT NOT NULL"),
    Column("name", "TEXT NOT NULL"),
    Column("label", "TEXT NOT NULL"),
    Column("norm", "TEXT NOT NULL"),
    Column("norm_label", "TEXT NOT NULL"),
    Column("norm_options", "TEXT NOT NULL"),
    Column("options", "TEXT NOT NULL"),
    Column("shape", "TEXT NOT NULL"),
    Column("batch_size", "INTEGER NOT NULL"),
    Column("numel", "INTEGER NOT NULL"),
    Column("dtype", "TEXT NOT NULL"),
    Column("memory_format", "TEXT NOT NULL"),
    Column("mode", "TEXT NOT NULL"),
    Column("operation", "TEXT NOT NULL"),
    Column("variant", "TEXT NOT NULL"),
    Column("compile", "TEXT NOT NULL DEFAULT 'eager'"),
    Column("device", "TEXT NOT NULL"),
    Column("device_name", "TEXT NOT NULL"),
    Column("threads", "INTEGER NOT NULL"),
    Column("method", "TEXT NOT NULL"),
    Column("min_run_time", "REAL NOT NULL"),
    Column("outcome", "TEXT NOT NULL"),
    Column("reason", "TEXT NOT NULL"),
    Column("n_samples", "INTEGER NOT NULL"),
    Column("number_per_run", "INTEGER NOT NULL"),
    Column("median_s", "REAL"),
    Column("iqr_s", "REAL"),
    Column("iqr_over_median", "REAL"),
    Column("noisy", "INTEGER"),
    Column("items_per_s", "REAL"),
    Column("bytes_moved", "INTEGER"),
    Column("bytes_model", "TEXT NOT NULL"),
    Column("achieved_gbps", "REAL"),
    Column("copy_median_s", "REAL"),
    Column("copy_gbps", "REAL"),
    Column("roofline_fraction", "REAL"),
    Column("native_module", "TEXT NOT NULL DEFAULT ''"),
    Column("native_median_s", "REAL"),
    Column("native_ratio", "REAL"),
    Column("native_note", "TEXT NOT NULL DEFAULT ''"),
    Column("compile_time_s", "REAL"),
    Column("peak_memory_bytes", "INTEGER"),
    Column("peak_memory_method", "TEXT NOT NULL"),
    Column("allocator", "TEXT NOT NULL"),
    Column("load_avg", "REAL"),
    Column("wall_time_s", "REAL NOT NULL"),
    Column("started_at", "TEXT NOT NULL"),
    Column("finished_at", "TEXT NOT NULL"),
    Column("spec", "TEXT NOT NULL", in_frame=False),
    Column("env_id", "INTEGER", in_frame=False),
))
THROUGHPUT_SAMPLES = Table("throughput_samples", (
    Column("spec_id", "TEXT NOT NULL REFERENCES throughput_runs(spec_id) ON DELETE CASCADE"),
    Column("series", "TEXT NOT NULL"),
    Column("sample_index", "INTEGER NOT NULL"),
    Column("time_s", "REAL NOT NULL"),
    Column("number_per_run", "INTEGER NOT NULL"),
), constraints=("PRIMARY KEY (spec_id, series, sample_index)",))

# Created with every store; the throughput tables are created on a throughput suite's first use.
STORE_TABLES = (META, ENVIRONMENT, SUITES, RUNS, CURVES, PROBES, EPOCHS, INFERENCE_FLAGS)
THROUGHPUT_TABLES = (THROUGHPUT_RUNS, THROUGHPUT_SAMPLES)


def schema_sql(tables: tuple[Table, ...]) -> str:
    """The CREATE TABLE script for `tables`, in order."""
    return "".join(table.create_sql() for table in tables)


def present_columns(conn: sqlite3.Connection, table: str) -> set[str]:
    """Names of the columns ``table`` has in the open database."""
    return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}


def add_missing_columns(conn: sqlite3.Connection, tables: Iterable[Table]) -> None:
    """Give each existing table the columns declared since it was created (the caller holds the transaction)."""
    for table in tables:
        for statement in table.added_columns_sql(present_columns(conn, table.name)):
            conn.execute(statement)
