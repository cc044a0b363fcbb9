"""`normbench run` and `validate` on fetchable datasets: fetch → verify → run end to end, a stop naming the
fetch command when the data is missing, `run --fetch-data`, and run ids independent of where data lies."""

from __future__ import annotations

import shutil
import sqlite3

import pytest
import yaml
from typer.testing import CliRunner

from normbench.cli import app
from normbench.data import DATA_DIR_ENV
from normbench.data.sources import MIRROR_ENV

runner = CliRunner()
ONE_RUN = {
    "name": "fetched", "description": "one run on fetched MNIST", "dataset": "mnist",
    "models": [{"name": "mlp", "options": {"widths": [8]}}], "norms": ["bn"], "batch_sizes": [10], "seeds": 1,
    "steps": 2, "eval_every": 1, "optimizer": {"name": "sgd", "lr": 0.05},
}


@pytest.fixture(autouse=True)
def restored_data_env(monkeypatch):
    """`run --data-dir` sets NORMBENCH_DATA in this process; an empty value (= not set) undone after the test."""
    monkeypatch.setenv(DATA_DIR_ENV, "")


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def suite_file(tmp_path, **changes):
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump({**ONE_RUN, **changes}, sort_keys=False))
    return path


def stored_runs(out):
    with sqlite3.connect(out / "results.sqlite") as conn:
        return conn.execute("SELECT run_id, dataset, outcome FROM runs").fetchall()


def test_fetch_verify_then_run_a_suite_on_the_fetched_data(fetchable, tmp_path, monkeypatch):
    data = tmp_path / "data"
    fetched = invoke("data", "fetch", "mnist", "--data-dir", data, "--mirror", fetchable.mirror)
    assert fetched.exit_code == 0, fetched.output
    assert invoke("data", "verify", "mnist", "--data-dir", data).exit_code == 0
    suite = suite_file(tmp_path)
    first = invoke("run", suite, "--out", tmp_path / "out1", "--executor", "serial", "--no-report",
                   "--data-dir", data)
    assert first.exit_code == 0, first.output
    [(run_id, dataset, outcome)] = stored_runs(tmp_path / "out1")
    assert (dataset, outcome) == ("mnist", "completed")

    # The same suite on a copy of the data elsewhere, named by the variable: the same run id.
    shutil.copytree(data, tmp_path / "elsewhere")
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "elsewhere"))
    second = invoke("run", suite, "--out", tmp_path / "out2", "--executor", "serial", "--no-report")
    assert second.exit_code == 0, second.output
    assert stored_runs(tmp_path / "out2") == [(run_id, "mnist", "completed")]


def test_missing_data_stops_the_run_before_training_with_the_fetch_command(fetchable, tmp_path, no_data_dir_env):
    suite = suite_file(tmp_path, dataset=["digits", "fashion_mnist"])
    result = invoke("run", suite, "--out", tmp_path / "out", "--executor", "serial")
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert (
        f"{suite}: field `dataset[1]`: dataset 'fashion_mnist' is missing in "
        f"{no_data_dir_env / 'FashionMNIST' / 'raw'} (data directory from the per-user cache directory); fetch it "
        "first with `normbench data fetch fashion_mnist`, or add --fetch-data to this command"
    ) in result.output
    assert not (tmp_path / "out" / "results.sqlite").exists()
    assert sum(fetchable.server.requests.values()) == 0  # run never downloads by itself

    validate = invoke("validate", suite)
    assert validate.exit_code == 2 and "`normbench data fetch fashion_mnist`" in validate.output


def test_corrupt_data_stops_the_run_too(fetchable, tmp_path):
    data = tmp_path / "data"
    assert invoke("data", "fetch", "mnist", "--data-dir", data, "--mirror", fetchable.mirror).exit_code == 0
    (data / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz").write_bytes(b"\x1f\x8b broken")
    result = invoke("run", suite_file(tmp_path), "--out", tmp_path / "out", "--executor", "serial",
                    "--data-dir", data)
    assert result.exit_code == 2, result.output
    assert f"dataset 'mnist' is corrupt in {data / 'MNIST' / 'raw'}" in result.output
    assert f"`normbench data fetch mnist --data-dir {data}`" in result.output


def test_run_fetch_data_fetches_first_then_trains(fetchable, tmp_path, monkeypatch):
    monkeypatch.setenv(MIRROR_ENV, fetchable.mirror)
    data = tmp_path / "new-dir"  # --fetch-data may name a directory that does not exist yet
    result = invoke("run", suite_file(tmp_path), "--out", tmp_path / "out", "--executor", "serial", "--no-report",
                    "--data-dir", data, "--fetch-data")
    assert result.exit_code == 0, result.output
    assert "mnist: downloaded 4 files" in result.output
    assert [row[1:] for row in stored_runs(tmp_path / "out")] == [("mnist", "completed")]
    assert invoke("data", "verify", "mnist", "--data-dir", data).exit_code == 0


def test_run_fetch_data_failure_exits_1_without_a_traceback_or_a_store(fetchable, tmp_path, monkeypatch, closed_url):
    monkeypatch.setenv(MIRROR_ENV, closed_url)
    result = invoke("run", suite_file(tmp_path), "--out", tmp_path / "out", "--executor", "serial",
                    "--data-dir", tmp_path / "data", "--fetch-data")
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert f"{closed_url}/mnist/train-images-idx3-ubyte.gz: cannot connect" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "out" / "results.sqlite").exists()
