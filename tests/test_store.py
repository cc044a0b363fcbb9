"""SQLite store: schema version, atomic run writes, resume ids, frames."""

import sqlite3

import pytest

from normbench.spec import RunSpec
from normbench.store import SCHEMA_VERSION, CurvePoint, RunResult, Store, StoreError, load_frames, store_path


def spec(seed=0, norm="batch"):
    return RunSpec(suite="s", model="mlp", dataset="digits", norm=norm, batch_size=4, seed=seed, device="cpu",
                   steps=10, epochs=None, optimizer="sgd", lr=0.1, momentum=0.0, weight_decay=0.0, eval_every=5,
                   norm_label=norm)


def result(s, outcome="completed", acc=0.9):
    curve = [CurvePoint(step=k, epoch=k / 10, samples_seen=4 * k, train_loss=1.0 / (k + 1), test_loss=0.5,
                        test_accuracy=acc * k / 10, wall_time_s=0.01 * k) for k in (0, 5, 10)]
    return RunResult(spec=s, outcome=outcome, curve=curve, final_test_accuracy=acc, final_test_loss=0.5,
                     final_train_loss=0.1, step_time_median_s=0.002, steps_done=10, wall_time_s=0.1,
                     started_at="t0", finished_at="t1")


def test_write_and_read_frames(tmp_path):
    with Store(store_path(tmp_path)) as store:
        store.record_environment({"torch": "x"}, "now")
        store.record_suite("s", "d", "name: s", "normbench run s.yaml", [spec(0).run_id], "now")
        store.write_run(result(spec(0)))
        store.write_run(result(spec(1), outcome="diverged"))
        assert store.integrity_ok()
        assert store.final_run_ids() == {spec(0).run_id, spec(1).run_id}
    frames = load_frames(tmp_path)  # latest suite only lists seed 0
    assert list(frames.runs["run_id"]) == [spec(0).run_id]
    assert len(frames.curves) == 3
    assert frames.runs.loc[0, "samples_per_s"] == pytest.approx(4 / 0.002)
    assert frames.environment == {"torch": "x"} and frames.command == "normbench run s.yaml"
    assert len(load_frames(tmp_path, all_runs=True).runs) == 2


def test_rewrite_replaces_failed_run_without_duplicates(tmp_path):
    with Store(store_path(tmp_path)) as store:
        store.write_run(result(spec(), outcome="failed"))
        assert store.final_run_ids() == set()  # failed runs are retried on resume
        store.write_run(result(spec()))
        assert store.conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 1
        assert store.conn.execute("SELECT COUNT(*) FROM curves").fetchone()[0] == 3


def test_write_is_atomic(tmp_path):
    bad = result(spec())
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
