"""Throughput tables in the results store: round trip, one transaction per spec, resume, frames."""

import sqlite3
from dataclasses import replace

import pandas as pd
import pytest
from conftest import FAST_TIMING

from normbench.frames import THROUGHPUT_COLUMNS, THROUGHPUT_SAMPLE_COLUMNS, ResultFrames
from normbench.store import Store
from normbench.throughput import (
    ThroughputResult,
    create_throughput_tables,
    final_throughput_ids,
    layer_spec,
    run_throughput_spec,
    throughput_frame,
    throughput_samples_frame,
    write_throughput_result,
)


def spec(**changes):
    return replace(layer_spec("batch", (4, 4, 3, 3), threads=1, **FAST_TIMING), **changes)


def made_up_result(**changes) -> ThroughputResult:
    s = spec()
    values = dict(spec=s, outcome="completed", samples=[3e-6, 1e-6, 2e-6], sample_numbers=[100, 100, 100],
                  median_s=2e-6, iqr_s=1e-6, noisy=True, bytes_moved=1728, bytes_model="3 x input",
                  copy_bytes=1152, copy_samples=[1e-6, 1e-6], copy_sample_numbers=[1000, 1000], copy_median_s=1e-6,
                  peak_memory_bytes=4096, peak_memory_method="profiler", device_name="test cpu", load_avg=0.25, wall_time_s=0.5,
                  started_at="2025-01-01T00:00:00+00:00", finished_at="2025-01-01T00:00:01+00:00")
    values.update(changes)
    return ThroughputResult(**values)


@pytest.fixture
def conn(tmp_path):
    with Store(tmp_path / "results.sqlite") as store:  # the tables live in the normbench store itself
        create_throughput_tables(store.conn)
        create_throughput_tables(store.conn)  # idempotent
        yield store.conn


def test_round_trip_of_a_result(conn):
    result = made_up_result()
    write_throughput_result(conn, result, env_id=None)
    frame = throughput_frame(conn)
    assert list(frame.columns) == THROUGHPUT_COLUMNS
    row = frame.iloc[0]
    assert row.spec_id == result.spec.spec_id and row.outcome == "completed" and row.subject == "layer"
    assert row.median_s == 2e-6 and row.iqr_s == 1e-6 and row.iqr_over_median == pytest.approx(0.5)
    assert row.noisy is True and row.n_samples == 3 and row.number_per_run == 100
    assert row.achieved_gbps == pytest.approx(1728 / 2e-6 / 1e9)
    assert row.copy_gbps == pytest.approx(1152 / 1e-6 / 1e9)
    assert row.roofline_fraction == pytest.approx(row.achieved_gbps / row.copy_gbps)
    assert row.items_per_s == pytest.approx(4 / 2e-6)
    assert row.load_avg == 0.25 and row.device_name == "test cpu"
    assert row["shape"] == "[4, 4, 3, 3]" and row.batch_size == 4 and row.numel == 144
    samples = throughput_samples_frame(conn)
    assert list(samples.columns) == THROUGHPUT_SAMPLE_COLUMNS
    subject = samples[samples.series == "subject"].sort_values("sample_index")
    assert subject.time_s.tolist() == [3e-6, 1e-6, 2e-6]  # raw order kept
    assert samples[samples.series == "copy"].number_per_run.tolist() == [1000, 1000]


def test_rewrite_replaces_the_row_and_its_samples(conn):
    write_throughput_result(conn, made_up_result(outcome="failed", samples=[], sample_numbers=[], median_s=None,
                                                 iqr_s=None, noisy=None, copy_samples=[], copy_sample_numbers=[]))
    assert final_throughput_ids(conn) == set()  # failed specs are measured again on resume
    write_throughput_result(conn, made_up_result())
    assert len(throughput_frame(conn)) == 1
    assert len(throughput_samples_frame(conn)) == 3 + 2
    assert final_throughput_ids(conn) == {spec().spec_id}


def test_skipped_device_is_stored_with_its_reason(conn):
    result = run_throughput_spec(spec(device="cuda:97"))
    write_throughput_result(conn, result)
    row = throughput_frame(conn).iloc[0]
    assert row.outcome == "skipped" and "cuda:97 unavailable" in row.reason and row.device == "cuda:97"
    assert pd.isna(row.median_s) and row.n_samples == 0 and row.noisy is None


def test_a_real_measurement_round_trips(conn):
    result = run_throughput_spec(spec(peak_memory=False))
    write_throughput_result(conn, result)
    row = throughput_frame(conn).iloc[0]
    assert row.median_s == pytest.approx(result.median_s) and row.n_samples == len(result.samples)
    assert row.roofline_fraction == pytest.approx(result.roofline_fraction)


def test_frames_filter_and_missing_tables(tmp_path, conn):
    write_throughput_result(conn, made_up_result())
    other = made_up_result(spec=spec(mode="eval"))
    write_throughput_result(conn, other)
    assert throughput_frame(conn, [other.spec.spec_id]).spec_id.tolist() == [other.spec.spec_id]
    assert set(throughput_samples_frame(conn, [other.spec.spec_id]).spec_id) == {other.spec.spec_id}
    bare = sqlite3.connect(tmp_path / "other.sqlite")  # a store from before throughput existed
    assert list(throughput_frame(bare).columns) == THROUGHPUT_COLUMNS and throughput_frame(bare).empty
    assert throughput_samples_frame(bare).empty and final_throughput_ids(bare) == set()
    assert [r[0] for r in bare.execute("SELECT name FROM sqlite_master")] == []  # reading created nothing


def test_write_is_one_transaction(conn):
    # Make the third sample's insert fail: the spec's row and its first samples must not stay behind.
    conn.execute("CREATE TRIGGER third_fails BEFORE INSERT ON throughput_samples WHEN NEW.sample_index = 2 "
                 "BEGIN SELECT RAISE(ABORT, 'disk trouble'); END")
    with pytest.raises(sqlite3.IntegrityError, match="disk trouble"):
        write_throughput_result(conn, made_up_result())
    assert throughput_frame(conn).empty and throughput_samples_frame(conn).empty


def test_result_frames_default_to_empty_throughput():
    frames = ResultFrames.empty()
    assert list(frames.throughput.columns) == THROUGHPUT_COLUMNS and frames.throughput.empty
    assert list(frames.throughput_samples.columns) == THROUGHPUT_SAMPLE_COLUMNS


def test_native_and_compile_columns_and_native_samples_round_trip(conn):
    result = made_up_result(spec=spec(compile="inductor"), native_module="torch.nn.BatchNorm2d(4)",
                            native_samples=[4e-6, 1e-6, 1e-6], native_sample_numbers=[50, 50, 50],
                            native_median_s=1e-6, compile_time_s=12.5)
    write_throughput_result(conn, result, env_id=None)
    row = throughput_frame(conn).iloc[0]
    assert row["compile"] == "inductor" and row.compile_time_s == 12.5
    assert row.native_module == "torch.nn.BatchNorm2d(4)" and row.native_median_s == 1e-6
    assert row.native_ratio == pytest.approx(2.0) and row.native_note == ""
    samples = throughput_samples_frame(conn)
    native = samples[samples.series == "native"].sort_values("sample_index")
    assert native.time_s.tolist() == [4e-6, 1e-6, 1e-6] and native.number_per_run.tolist() == [50, 50, 50]


# throughput_runs as the first released version wrote it (before compile and the native columns)
OLD_THROUGHPUT_RUNS = """CREATE TABLE throughput_runs (
    spec_id TEXT PRIMARY KEY, suite TEXT NOT NULL, kind TEXT NOT NULL, subject TEXT NOT NULL, name TEXT NOT NULL,
    label TEXT NOT NULL, norm TEXT NOT NULL, norm_label TEXT NOT NULL, norm_options TEXT NOT NULL, options TEXT NOT NULL,
    shape TEXT NOT NULL, batch_size INTEGER NOT NULL, numel INTEGER NOT NULL, dtype TEXT NOT NULL,
    memory_format TEXT NOT NULL, mode TEXT NOT NULL, operation TEXT NOT NULL, variant TEXT NOT NULL, device TEXT NOT NULL,
    device_name TEXT NOT NULL, threads INTEGER NOT NULL, method TEXT NOT NULL, min_run_time REAL NOT NULL,
    outcome TEXT NOT NULL, reason TEXT NOT NULL, n_samples INTEGER NOT NULL, number_per_run INTEGER NOT NULL,
    median_s REAL, iqr_s REAL, iqr_over_median REAL, noisy INTEGER, items_per_s REAL, bytes_moved INTEGER,
    bytes_model TEXT NOT NULL, achieved_gbps REAL, copy_median_s REAL, copy_gbps REAL, roofline_fraction REAL,
    peak_memory_bytes INTEGER, peak_memory_method TEXT NOT NULL, allocator TEXT NOT NULL, load_avg REAL,
    wall_time_s REAL NOT NULL, started_at TEXT NOT NULL, finished_at TEXT NOT NULL, spec TEXT NOT NULL, env_id INTEGER);
INSERT INTO throughput_runs VALUES ('old1', 's', 'throughput', 'layer', 'batch', 'batch', 'batch', 'batch', '{}', '{}',
    '[4, 4]', 4, 16, 'float32', 'contiguous', 'train', 'forward', '', 'cpu', 'cpu', 1, 'blocked', 0.2, 'completed', '',
    3, 10, 2e-6, 1e-7, 0.05, 0, 2e6, 192, 'm', 0.1, 1e-6, 1.0, 0.1, NULL, '', 'retain', 0.5, 1.0, 'a', 'b', '{}', NULL);
"""


def test_a_store_written_before_the_native_columns_reads_and_takes_new_results(tmp_path):
    path = tmp_path / "old.sqlite"
    Store(path).open().close()  # a normbench store, then the throughput table of the first release
    legacy = sqlite3.connect(path)
    legacy.executescript(OLD_THROUGHPUT_RUNS)
    legacy.commit()
    old = throughput_frame(legacy)  # read as it is: the new columns hold what those rows were
    assert list(old.columns) == THROUGHPUT_COLUMNS
    assert old.loc[0, "compile"] == "eager" and old.loc[0, "native_module"] == "" and old.loc[0, "native_note"] == ""
    assert pd.isna(old.loc[0, "native_ratio"]) and pd.isna(old.loc[0, "compile_time_s"])
    assert old.loc[0, "median_s"] == 2e-6
    legacy.close()
    with Store(path) as store:  # the next run adds the columns, then writes as usual
        create_throughput_tables(store.conn)
        write_throughput_result(store.conn, made_up_result(native_median_s=1e-6, native_module="torch.nn.X()"))
        frame = throughput_frame(store.conn)
    assert frame["spec_id"].tolist() == ["old1", spec().spec_id]
    assert frame.loc[0, "compile"] == "eager" and pd.isna(frame.loc[0, "native_ratio"])
    assert frame.loc[1, "native_ratio"] == pytest.approx(2.0)
