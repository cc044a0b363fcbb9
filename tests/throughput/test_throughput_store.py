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
