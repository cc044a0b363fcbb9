"""`normbench run` / `validate` on a `kind: throughput` suite: store, resume, --strict, exit codes, report."""

from conftest import tiny_suite
from typer.testing import CliRunner

from normbench.cli import app
from normbench.store import Store
from normbench.throughput import throughput_frame

runner = CliRunner()


def small_suite(**changes):
    layers = dict(tiny_suite()["layers"], norms=["batch"], shapes=[[4, 4, 3, 3]], memory_formats=["contiguous"],
                  modes=["train"], passes=["forward"])
    timing = dict(tiny_suite()["timing"], peak_memory=False)
    return tiny_suite(**{"layers": layers, "timing": timing, "devices": ["cpu", "cuda:97"], **changes})


def test_run_resume_skipped_device_and_report(write_suite, tmp_path):
    path, out = write_suite(small_suite()), tmp_path / "out"
    first = runner.invoke(app, ["run", str(path), "--out", str(out)])
    assert first.exit_code == 0, first.output
    with Store(out / "results.sqlite") as store:
        frame = throughput_frame(store.conn)
        assert sorted(frame.outcome) == ["completed", "skipped"]
        assert "unavailable" in frame[frame.device == "cuda:97"].reason.iloc[0]
        assert store.latest_suite_run_ids() == frame.spec_id.tolist()
        env = store.conn.execute("SELECT data FROM environment").fetchone()[0]
        assert '"device_availability"' in env and '"throughput_devices"' in env
        # Store.frames() carries the measurements and their raw samples to reports and exports.
        frames = store.frames(store.latest_suite_run_ids())
        assert len(frames.throughput) == 2 and len(frames.runs) == 0
        completed = frames.throughput[frames.throughput.outcome == "completed"].spec_id.iloc[0]
        assert (frames.throughput_samples.spec_id == completed).sum() >= 3
    html = (out / "report.html").read_text()
    assert "cuda:97" in html and "unavailable" in html  # the skip and its reason are shown
    exported = runner.invoke(app, ["export", str(out), "--output", str(tmp_path / "t.csv")])
    assert exported.exit_code == 0, exported.output
    import pandas as pd

    table = pd.read_csv(tmp_path / "t.csv")
    assert sorted(table.outcome) == ["completed", "skipped"] and "median_s" in table.columns
    second = runner.invoke(app, ["run", str(path), "--out", str(out)])
    assert second.exit_code == 0, second.output
    assert "1 of 2 measurements already stored" in second.output  # resume: only the skipped spec is tried again


def test_strict_and_bad_suite_exit_2_and_write_nothing(write_suite, tmp_path):
    out = tmp_path / "out"
    strict = runner.invoke(app, ["run", str(write_suite(small_suite())), "--out", str(out), "--strict"])
    assert strict.exit_code == 2 and "cuda:97" in strict.output
    bad = runner.invoke(app, ["run", str(write_suite(small_suite(threads=[0]))), "--out", str(out)])
    assert bad.exit_code == 2 and "threads" in bad.output
    assert not out.exists()


def test_validate_counts_measurements(write_suite):
    path = write_suite(small_suite(devices=["cpu"]))
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert "valid throughput suite, 1 measurements" in result.output
    strict = runner.invoke(app, ["validate", str(write_suite(small_suite())), "--strict"])
    assert strict.exit_code == 2
