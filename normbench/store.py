"""The results store: one SQLite file per output directory, versioned, written by the driver only."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from normbench.frames import ResultFrames
from normbench.spec import FINAL_OUTCOMES, RunResult
from normbench.tables import (
    CURVES,
    EPOCHS,
    INFERENCE_FLAGS,
    PROBES,
    RUNS,
    STORE_TABLES,
    add_missing_columns,
    schema_sql,
)

SCHEMA_VERSION = 1
STORE_FILENAME = "results.sqlite"


class StoreError(Exception):
    """The store cannot be used (newer schema, not a normbench store, corrupt)."""


def run_row(result: RunResult, env_id: int | None) -> tuple[Any, ...]:
    """The `runs` row of one result, in RUNS column order (plain spec and result fields by name)."""
    spec = result.spec
    data = spec.to_dict()
    derived = {
        "run_id": spec.run_id,
        "model_label": spec.model_label or spec.model,
        "norm_label": spec.norm_label or spec.norm,
        "norm_options": json.dumps(data["norm_options"], sort_keys=True),
        "model_options": json.dumps(data["model_options"], sort_keys=True),
        "dataset_options": json.dumps(data["dataset_options"], sort_keys=True),
        "spec": json.dumps(data, sort_keys=True),
        "extra_metrics": json.dumps(result.extra_metrics),
        "env_id": env_id,
        "batching": spec.batching_label,
        "selection": spec.select,
    }
    return RUNS.row(derived, result, spec)


class Store:
    """A results store at `<out_dir>/results.sqlite`. Use as a context manager."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._conn: sqlite3.Connection | None = None
        self._env_id: int | None = None

    # -- lifecycle

    def open(self, *, create: bool = True) -> "Store":
        """Connect (WAL, foreign keys on) and create or check the schema; `create=False` needs an existing file."""
        if not create and not self.path.is_file():
            raise StoreError(f"{self.path}: no results store here (run a suite first with `normbench run`)")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = sqlite3.connect(self.path, timeout=30)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA foreign_keys=ON")
            self._conn = conn
            self._check_or_init_schema()
        except sqlite3.DatabaseError as exc:
            self.close()
            raise StoreError(f"{self.path}: not a readable normbench store ({exc})") from None
        return self

    def close(self) -> None:
        """Close the connection (safe to call twice)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> "Store":
        if self._conn is None:
            self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def conn(self) -> sqlite3.Connection:
        """The open connection; StoreError when the store is not open."""
        if self._conn is None:
            raise StoreError("store is not open")
        return self._conn

    def _check_or_init_schema(self) -> None:
        conn = self.conn
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "meta" in tables:
            row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if row is None:
                raise StoreError(f"{self.path}: has no schema version; not a normbench store")
            version = int(row[0])
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path}: written by a newer normbench (store schema {version}, this version reads "
                    f"up to {SCHEMA_VERSION}); upgrade normbench or use another --out directory"
                )
            if version < SCHEMA_VERSION:  # pragma: no cover - no older schema exists yet
                raise StoreError(f"{self.path}: store schema {version} is older than {SCHEMA_VERSION}; rerun with --fresh")
            self._add_missing_tables_and_columns()
            return
        if tables:
            raise StoreError(f"{self.path}: an SQLite file that is not a normbench store; choose another --out directory")
        with conn:
            conn.executescript(schema_sql(STORE_TABLES))
            conn.execute("INSERT INTO meta(key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))

    def _add_missing_tables_and_columns(self) -> None:
        """Create the tables and add the columns declared since this file was created (each column
        with its default), so stores written before and after read alike."""
        existing = {row[0] for row in self.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        missing = tuple(t for t in STORE_TABLES if t.name not in existing)
        with self.conn:
            add_missing_columns(self.conn, [t for t in STORE_TABLES if t.name in existing])
        if missing:
            with self.conn:
                self.conn.executescript(schema_sql(missing))

    # -- writing

    def record_environment(self, environment: dict[str, Any], captured_at: str) -> int:
        """Store the environment that the following runs are written under; returns its id."""
        with self.conn:
            cur = self.conn.execute(
                "INSERT INTO environment(captured_at, data) VALUES (?, ?)", (captured_at, json.dumps(environment))
            )
        self._env_id = int(cur.lastrowid)
        return self._env_id

    def record_suite(
        self, name: str, description: str, yaml_text: str, command: str, run_ids: list[str], written_at: str
    ) -> None:
        """Remember the suite as run (its runs are what `normbench report` shows by default)."""
        with self.conn:
            self.conn.execute(
                "INSERT INTO suites(name, description, yaml, command, run_ids, written_at) VALUES (?, ?, ?, ?, ?, ?)",
                (name, description, yaml_text, command, json.dumps(run_ids), written_at),
            )

    def latest_suite_run_ids(self) -> list[str] | None:
        """Run ids of the suite run recorded last, or None when no suite was recorded."""
        row = self.conn.execute("SELECT run_ids FROM suites ORDER BY suite_id DESC LIMIT 1").fetchone()
        return json.loads(row[0]) if row else None

    def write_run(self, result: RunResult) -> None:
        """Write one run and its curve in a single transaction (replacing an earlier failed attempt)."""
        run_id = result.spec.run_id
        row = run_row(result, self._env_id)
        curve = [CURVES.row({"run_id": run_id}, point) for point in result.curve]
        probes = [(run_id, *probe) for probe in result.probes]  # probe = (step, probe, key, value)
        epochs = [EPOCHS.row({"run_id": run_id}, record) for record in result.epoch_records]
        flags = [INFERENCE_FLAGS.row({"run_id": run_id}, record) for record in result.inference_flags]
        with self.conn:  # one transaction: the run and all its points, or nothing
            for table in (CURVES, PROBES, EPOCHS, INFERENCE_FLAGS):
                self.conn.execute(f"DELETE FROM {table.name} WHERE run_id = ?", (run_id,))
            self.conn.execute(RUNS.insert_sql("INSERT OR REPLACE"), row)
            self.conn.executemany(CURVES.insert_sql(), curve)
            self.conn.executemany(PROBES.insert_sql(), probes)
            self.conn.executemany(EPOCHS.insert_sql(), epochs)
            self.conn.executemany(INFERENCE_FLAGS.insert_sql(), flags)

    # -- reading

    def final_run_ids(self) -> set[str]:
        """Ids of runs whose outcome is final (resume skips these)."""
        marks = ", ".join("?" for _ in FINAL_OUTCOMES)
        rows = self.conn.execute(f"SELECT run_id FROM runs WHERE outcome IN ({marks})", FINAL_OUTCOMES)
        return {r[0] for r in rows}

    def frames(self, run_ids: Iterable[str] | None = None) -> ResultFrames:
        """Pandas view of the store (optionally restricted to some run ids)."""
        runs = pd.read_sql_query(RUNS.select_frame_sql("rowid"), self.conn)
        curves = pd.read_sql_query(CURVES.select_frame_sql("run_id, step"), self.conn)
        probes = pd.read_sql_query(PROBES.select_frame_sql("run_id, step, probe, key"), self.conn)
        epochs = pd.read_sql_query(EPOCHS.select_frame_sql("run_id, epoch"), self.conn)
        flags = pd.read_sql_query(INFERENCE_FLAGS.select_frame_sql("rowid"), self.conn)
        if run_ids is not None:
            wanted = set(run_ids)
            runs, curves, probes, epochs, flags = (frame[frame["run_id"].isin(wanted)].reset_index(drop=True)
                                                   for frame in (runs, curves, probes, epochs, flags))
        env_row = self.conn.execute("SELECT data FROM environment ORDER BY env_id DESC LIMIT 1").fetchone()
        suite_row = self.conn.execute(
            "SELECT name, description, yaml, command FROM suites ORDER BY suite_id DESC LIMIT 1"
        ).fetchone()
        frames = ResultFrames(runs=runs, curves=curves, probes=probes, epochs=epochs, inference_flags=flags,
                              environment=json.loads(env_row[0]) if env_row else {})
        if suite_row:
            frames.suite_name, frames.suite_description, frames.suite_yaml, frames.command = suite_row
        from normbench.throughput.store import throughput_frame, throughput_samples_frame

        frames.throughput = throughput_frame(self.conn, run_ids)
        frames.throughput_samples = throughput_samples_frame(self.conn, run_ids)
        return frames

    def integrity_ok(self) -> bool:
        """Whether SQLite's integrity check passes."""
        return self.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def store_path(out_dir: str | Path) -> Path:
    """Path of the results store in `out_dir`."""
    return Path(out_dir) / STORE_FILENAME


def load_frames(out_dir: str | Path, *, all_runs: bool = False) -> ResultFrames:
    """Frames of the store in `out_dir`: the runs of the latest suite run there (or every run)."""
    with closing(Store(store_path(out_dir)).open(create=False)) as store:
        return store.frames(None if all_runs else store.latest_suite_run_ids())
