"""The results store: one SQLite file per output directory, versioned, written by the driver only."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from normbench.frames import CURVE_COLUMNS, PROBE_COLUMNS, RUN_COLUMNS, ResultFrames
from normbench.spec import RunSpec

SCHEMA_VERSION = 1
STORE_FILENAME = "results.sqlite"

# Outcomes that are final results: resume never retrains them. Failed and skipped runs are retried.
FINAL_OUTCOMES = ("completed", "diverged", "undefined")


class StoreError(Exception):
    """The store cannot be used (newer schema, not a normbench store, corrupt)."""


@dataclass
class CurvePoint:
    """One evaluation point of a training run."""

    step: int
    epoch: float
    samples_seen: int
    train_loss: float
    test_loss: float
    test_accuracy: float
    wall_time_s: float


@dataclass
class RunResult:
    """What a finished run produced, whatever its outcome."""

    spec: RunSpec
    outcome: str
    error: str = ""
    curve: list[CurvePoint] = field(default_factory=list)
    final_test_accuracy: float | None = None
    final_test_loss: float | None = None
    final_train_loss: float | None = None
    step_time_median_s: float | None = None
    steps_done: int = 0
    wall_time_s: float = 0.0
    started_at: str = ""
    finished_at: str = ""
    extra_metrics: dict[str, Any] = field(default_factory=dict)
    probes: list[tuple[int, str, str, float]] = field(default_factory=list)  # (step, probe, key, value)

    @property
    def samples_per_s(self) -> float | None:
        if not self.step_time_median_s:
            return None
        return self.spec.batch_size / self.step_time_median_s


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS environment (
    env_id INTEGER PRIMARY KEY AUTOINCREMENT,
    captured_at TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS suites (
    suite_id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    yaml TEXT NOT NULL,
    command TEXT NOT NULL,
    run_ids TEXT NOT NULL,
    written_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    suite TEXT NOT NULL, kind TEXT NOT NULL, model TEXT NOT NULL, model_label TEXT NOT NULL, dataset TEXT NOT NULL,
    norm TEXT NOT NULL, norm_label TEXT NOT NULL, norm_options TEXT NOT NULL,
    model_options TEXT NOT NULL, dataset_options TEXT NOT NULL,
    batch_size INTEGER NOT NULL, seed INTEGER NOT NULL, device TEXT NOT NULL,
    optimizer TEXT NOT NULL, lr REAL NOT NULL, steps INTEGER, epochs REAL, samples INTEGER,
    base_lr REAL, lr_scaling TEXT NOT NULL, reference_batch_size INTEGER, momentum REAL NOT NULL,
    weight_decay REAL NOT NULL, eval_every INTEGER NOT NULL, target_accuracy REAL,
    outcome TEXT NOT NULL, error TEXT NOT NULL,
    final_test_accuracy REAL, final_test_loss REAL, final_train_loss REAL,
    step_time_median_s REAL, samples_per_s REAL, steps_done INTEGER NOT NULL, wall_time_s REAL NOT NULL,
    started_at TEXT NOT NULL, finished_at TEXT NOT NULL,
    spec TEXT NOT NULL, extra_metrics TEXT NOT NULL,
    env_id INTEGER REFERENCES environment(env_id)
);
CREATE TABLE IF NOT EXISTS curves (
    run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    step INTEGER NOT NULL, epoch REAL NOT NULL, samples_seen INTEGER NOT NULL,
    train_loss REAL, test_loss REAL, test_accuracy REAL, wall_time_s REAL NOT NULL,
    PRIMARY KEY (run_id, step)
);
CREATE TABLE IF NOT EXISTS probes (
    run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    step INTEGER NOT NULL, probe TEXT NOT NULL, key TEXT NOT NULL, value REAL,
    PRIMARY KEY (run_id, step, probe, key)
);
"""


class Store:
    """A results store at `<out_dir>/results.sqlite`. Use as a context manager."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._conn: sqlite3.Connection | None = None
        self._env_id: int | None = None

    # -- lifecycle

    def open(self, *, create: bool = True) -> "Store":
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
            return
        if tables:
            raise StoreError(f"{self.path}: an SQLite file that is not a normbench store; choose another --out directory")
        with conn:
            conn.executescript(_SCHEMA)
            conn.execute("INSERT INTO meta(key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))

    # -- writing

    def record_environment(self, environment: dict[str, Any], captured_at: str) -> int:
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
        row = self.conn.execute("SELECT run_ids FROM suites ORDER BY suite_id DESC LIMIT 1").fetchone()
        return json.loads(row[0]) if row else None

    def write_run(self, result: RunResult) -> None:
        """Write one run and its curve in a single transaction (replacing an earlier failed attempt)."""
        spec = result.spec
        data = spec.to_dict()
        row = {
            "run_id": spec.run_id, "suite": spec.suite, "kind": spec.kind, "model": spec.model,
            "model_label": spec.model_label or spec.model,
            "dataset": spec.dataset, "norm": spec.norm, "norm_label": spec.norm_label or spec.norm,
            "norm_options": json.dumps(data["norm_options"], sort_keys=True),
            "model_options": json.dumps(data["model_options"], sort_keys=True),
            "dataset_options": json.dumps(data["dataset_options"], sort_keys=True),
            "batch_size": spec.batch_size, "seed": spec.seed, "device": spec.device,
            "optimizer": spec.optimizer, "lr": spec.lr, "steps": spec.steps, "epochs": spec.epochs,
            "samples": spec.samples, "base_lr": spec.base_lr, "lr_scaling": spec.lr_scaling,
            "reference_batch_size": spec.reference_batch_size, "momentum": spec.momentum,
            "weight_decay": spec.weight_decay, "eval_every": spec.eval_every, "target_accuracy": spec.target_accuracy,
            "outcome": result.outcome, "error": result.error,
            "final_test_accuracy": result.final_test_accuracy, "final_test_loss": result.final_test_loss,
            "final_train_loss": result.final_train_loss, "step_time_median_s": result.step_time_median_s,
            "samples_per_s": result.samples_per_s, "steps_done": result.steps_done,
            "wall_time_s": result.wall_time_s, "started_at": result.started_at, "finished_at": result.finished_at,
            "spec": json.dumps(data, sort_keys=True), "extra_metrics": json.dumps(result.extra_metrics),
            "env_id": self._env_id,
        }
        columns = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        with self.conn:  # one transaction: the run and all its points, or nothing
            self.conn.execute("DELETE FROM curves WHERE run_id = ?", (spec.run_id,))
            self.conn.execute("DELETE FROM probes WHERE run_id = ?", (spec.run_id,))
            self.conn.execute(f"INSERT OR REPLACE INTO runs({columns}) VALUES ({marks})", tuple(row.values()))
            self.conn.executemany(
                "INSERT INTO curves(run_id, step, epoch, samples_seen, train_loss, test_loss, test_accuracy,"
                " wall_time_s) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (spec.run_id, p.step, p.epoch, p.samples_seen, p.train_loss, p.test_loss, p.test_accuracy,
                     p.wall_time_s)
                    for p in result.curve
                ],
            )
            self.conn.executemany(
                "INSERT INTO probes(run_id, step, probe, key, value) VALUES (?, ?, ?, ?, ?)",
                [(spec.run_id, *row) for row in result.probes],
            )

    # -- reading

    def final_run_ids(self) -> set[str]:
        """Ids of runs whose outcome is final (resume skips these)."""
        marks = ", ".join("?" for _ in FINAL_OUTCOMES)
        rows = self.conn.execute(f"SELECT run_id FROM runs WHERE outcome IN ({marks})", FINAL_OUTCOMES)
        return {r[0] for r in rows}

    def frames(self, run_ids: Iterable[str] | None = None) -> ResultFrames:
        """Pandas view of the store (optionally restricted to some run ids)."""
        runs = pd.read_sql_query(f"SELECT {', '.join(RUN_COLUMNS)} FROM runs ORDER BY rowid", self.conn)
        curves = pd.read_sql_query(
            f"SELECT {', '.join(CURVE_COLUMNS)} FROM curves ORDER BY run_id, step", self.conn
        )
        probes = pd.read_sql_query(
            f"SELECT {', '.join(PROBE_COLUMNS)} FROM probes ORDER BY run_id, step, probe, key", self.conn
        )
        if run_ids is not None:
            wanted = set(run_ids)
            runs = runs[runs["run_id"].isin(wanted)].reset_index(drop=True)
            curves = curves[curves["run_id"].isin(wanted)].reset_index(drop=True)
            probes = probes[probes["run_id"].isin(wanted)].reset_index(drop=True)
        env_row = self.conn.execute("SELECT data FROM environment ORDER BY env_id DESC LIMIT 1").fetchone()
        suite_row = self.conn.execute(
            "SELECT name, description, yaml, command FROM suites ORDER BY suite_id DESC LIMIT 1"
        ).fetchone()
        frames = ResultFrames(runs=runs, curves=curves, probes=probes,
                              environment=json.loads(env_row[0]) if env_row else {})
        if suite_row:
            frames.suite_name, frames.suite_description, frames.suite_yaml, frames.command = suite_row
        from normbench.throughput.store import throughput_frame, throughput_samples_frame

        frames.throughput = throughput_frame(self.conn, run_ids)
        frames.throughput_samples = throughput_samples_frame(self.conn, run_ids)
        return frames

    def integrity_ok(self) -> bool:
        return self.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def store_path(out_dir: str | Path) -> Path:
    return Path(out_dir) / STORE_FILENAME


def load_frames(out_dir: str | Path, *, all_runs: bool = False) -> ResultFrames:
    """Frames of the store in `out_dir`: the runs of the latest suite run there (or every run)."""
    with closing(Store(store_path(out_dir)).open(create=False)) as store:
        return store.frames(None if all_runs else store.latest_suite_run_ids())
