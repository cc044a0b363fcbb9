"""SQLite store: schema version, atomic run writes, resume ids, frames, column lists vs the schema."""

import sqlite3
from types import SimpleNamespace

import pytest

from normbench.store import SCHEMA_VERSION, Store, StoreError, load_frames, store_path
from normbench.tables import RUNS, STORE_TABLES, THROUGHPUT_TABLES, Column, Table
from normbench.throughput.store import create_throughput_tables

# The schema of SCHEMA_VERSION 1 as first written by hand (store.py and throughput/store.py before
# the column lists existed): stores made with it must keep opening, and new stores must match it.
SCHEMA_V1 = """CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
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


def test_write_and_read_frames(tmp_path, make_spec, make_result):
    seed_0, seed_1 = make_spec(batch_size=4, seed=0), make_spec(batch_size=4, seed=1)
    with Store(store_path(tmp_path)) as store:
        store.record_environment({"torch": "x"}, "now")
        store.record_suite("s", "d", "name: s", "normbench run s.yaml", [seed_0.run_id], "now")
        store.write_run(make_result(seed_0))
        store.write_run(make_result(seed_1, outcome="diverged"))
        assert store.integrity_ok()
        assert store.final_run_ids() == {seed_0.run_id, seed_1.run_id}
    frames = load_frames(tmp_path)  # latest suite only lists seed 0
    assert list(frames.runs["run_id"]) == [seed_0.run_id]
    assert len(frames.curves) == 3
    assert frames.runs.loc[0, "samples_per_s"] == pytest.approx(4 / 0.002)
    assert frames.environment == {"torch": "x"} and frames.command == "normbench run s.yaml"
    assert len(load_frames(tmp_path, all_runs=True).runs) == 2


def test_rewrite_replaces_failed_run_without_duplicates(tmp_path, make_spec, make_result):
    with Store(store_path(tmp_path)) as store:
        store.write_run(make_result(make_spec(), outcome="failed"))
        assert store.final_run_ids() == set()  # failed runs are retried on resume
        store.write_run(make_result(make_spec()))
        assert store.conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 1
        assert store.conn.execute("SELECT COUNT(*) FROM curves").fetchone()[0] == 3


def test_write_is_atomic(tmp_path, make_spec, make_result):
    bad = make_result(make_spec())
    bad.curve.append(bad.curve[-1])  # duplicate (run_id, step) violates the primary key mid-transaction
    with Store(store_path(tmp_path)) as store:
        with pytest.raises(sqlite3.IntegrityError):
            store.write_run(bad)
        assert store.conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 0
        assert store.conn.execute("SELECT COUNT(*) FROM curves").fetchone()[0] == 0


def test_wal_mode(tmp_path):
    with Store(store_path(tmp_path)) as store:
        assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_newer_schema_refused(tmp_path):
    with Store(store_path(tmp_path)) as store:
        store.conn.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION + 1),))
        store.conn.commit()
    with pytest.raises(StoreError, match="newer normbench"):
        Store(store_path(tmp_path)).open()


def test_foreign_sqlite_and_missing_store_refused(tmp_path):
    path = store_path(tmp_path)
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE other (x)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="not a normbench store"):
        Store(path).open()
    with pytest.raises(StoreError, match="no results store"):
        load_frames(tmp_path / "nowhere")
    garbage = tmp_path / "g" / "results.sqlite"
    garbage.parent.mkdir()
    garbage.write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(StoreError, match="not a readable normbench store"):
        Store(garbage).open()


def table_layout(conn, name):
    """Everything SQLite knows of a table's columns: (name, type, not null, default, pk) and its foreign keys."""
    columns = [tuple(r[1:]) for r in conn.execute(f"PRAGMA table_info({name})")]
    return columns, conn.execute(f"PRAGMA foreign_key_list({name})").fetchall()


def test_column_lists_match_table_info_of_a_fresh_store(tmp_path):
    with Store(store_path(tmp_path)) as store:
        create_throughput_tables(store.conn)
        for table in STORE_TABLES + THROUGHPUT_TABLES:
            info = store.conn.execute(f"PRAGMA table_info({table.name})").fetchall()
            assert [r[1] for r in info] == list(table.names), table.name
            assert [r[2] for r in info] == [c.sql.split()[0] for c in table.columns], table.name
            assert [bool(r[3]) for r in info] == ["NOT NULL" in c.sql for c in table.columns], table.name
        tables = {r[0] for r in store.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {t.name for t in STORE_TABLES + THROUGHPUT_TABLES} == tables - {"sqlite_sequence"}


# Columns added to a table after version 1 (nullable or with a DEFAULT, so older tables are
# ALTERed to gain them and read as that default), as SQLite's table_info reports them; the
# throughput table's added columns by name.
ADDED_RUN_COLUMNS = [("batching", "TEXT", 1, "'iid'", 0), ("selection", "TEXT", 1, "'last'", 0),
                     ("selected_step", "INTEGER", 0, None, 0), ("lr_schedule", "TEXT", 1, "'constant'", 0)]
ADDED_CURVE_COLUMNS = [("val_loss", "REAL", 0, None, 0), ("val_accuracy", "REAL", 0, None, 0)]
ADDED_SINCE_V1 = {
    "runs": ADDED_RUN_COLUMNS,
    "curves": ADDED_CURVE_COLUMNS,
    "throughput_runs": ("compile", "native_module", "native_median_s", "native_ratio", "native_note", "compile_time_s"),
}
NEW_TABLES = ("epochs", "inference_flags")  # tables added after version 1


def test_fresh_store_has_the_version_1_layout_plus_the_added_columns(tmp_path):
    legacy = sqlite3.connect(tmp_path / "v1.sqlite")
    legacy.executescript(SCHEMA_V1)
    with Store(store_path(tmp_path)) as store:
        create_throughput_tables(store.conn)
        for table in STORE_TABLES + THROUGHPUT_TABLES:
            if table.name in NEW_TABLES:
                continue
            added = {c if isinstance(c, str) else c[0] for c in ADDED_SINCE_V1.get(table.name, ())}
            columns, keys = table_layout(store.conn, table.name)
            assert ([c for c in columns if c[0] not in added], keys) == table_layout(legacy, table.name), table.name
    legacy.close()


def test_version_1_store_gets_the_added_columns_and_its_runs_read_as_iid(tmp_path, make_spec, make_result):
    conn = sqlite3.connect(store_path(tmp_path))
    conn.executescript(SCHEMA_V1)
    conn.execute("INSERT INTO meta(key, value) VALUES ('schema_version', '1')")
    row = RUNS.row({"run_id": "old", "model_label": "m", "norm_label": "n", "norm_options": "{}",
                    "model_options": "{}", "dataset_options": "{}", "spec": "{}", "extra_metrics": "{}",
                    "env_id": None, "batching": "unused", "selection": "unused"},
                   make_result(make_spec(seed=0)), make_spec(seed=0))
    added = {c[0] for c in ADDED_RUN_COLUMNS}
    names = [n for n in RUNS.names if n not in added]  # what a version 1 writer inserted
    conn.execute(f"INSERT INTO runs({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})",
                 [v for n, v in zip(RUNS.names, row) if n not in added])
    conn.commit()
    conn.close()
    with Store(store_path(tmp_path)) as store:
        columns, _ = table_layout(store.conn, "runs")
        assert columns[-len(ADDED_RUN_COLUMNS):] == ADDED_RUN_COLUMNS
        assert table_layout(store.conn, "curves")[0][-2:] == ADDED_CURVE_COLUMNS
        tables = {r[0] for r in store.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert set(NEW_TABLES) <= tables
        store.write_run(make_result(make_spec(seed=1)))
    frames = load_frames(tmp_path, all_runs=True)
    assert list(frames.runs["batching"]) == ["iid", "iid"]
    assert list(frames.runs["selection"]) == ["last", "last"]
    with Store(store_path(tmp_path)) as store:  # opening again adds nothing twice
        assert [c[0] for c in table_layout(store.conn, "runs")[0]].count("batching") == 1


def test_store_made_with_the_version_1_schema_opens_and_round_trips(tmp_path, make_spec, make_result):
    conn = sqlite3.connect(store_path(tmp_path))
    conn.executescript(SCHEMA_V1)
    conn.execute("INSERT INTO meta(key, value) VALUES ('schema_version', '1')")
    conn.commit()
    conn.close()
    with Store(store_path(tmp_path)) as store:
        store.write_run(make_result(make_spec(seed=0)))
        assert store.final_run_ids() == {make_spec(seed=0).run_id}
    frames = load_frames(tmp_path, all_runs=True)
    assert frames.runs.loc[0, "final_test_accuracy"] == 0.9 and list(frames.curves["step"]) == [0, 5, 10]


def test_run_frame_shows_every_stored_column_but_the_storage_ones():
    assert set(RUNS.frame_columns) == set(RUNS.names) - {"spec", "extra_metrics", "env_id"}
    assert len(RUNS.frame_columns) == len(set(RUNS.frame_columns))


def test_row_takes_derived_values_then_the_first_record_with_the_attribute():
    table = Table("t", (Column("a", "TEXT"), Column("b", "REAL"), Column("c", "INTEGER")))
    first, second = SimpleNamespace(b=2.0), SimpleNamespace(b=9.0, c=3)
    assert table.row({"a": "x"}, first, second) == ("x", 2.0, 3)
    with pytest.raises(ValueError, match=r"no columns \['z'\]"):
        table.row({"a": "x", "z": 1}, first, second)
    with pytest.raises(AttributeError, match="column 'c'"):
        table.row({"a": "x"}, first)
