"""SQLite store: schema version, atomic run writes, resume ids, frames."""

import sqlite3

import pytest

from normbench.store import SCHEMA_VERSION, Store, StoreError, load_frames, store_path


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
