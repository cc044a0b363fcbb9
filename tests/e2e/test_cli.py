"""End-to-end: the CLI on a tiny suite — run, resume, report, export, validate, bad input."""

import sqlite3

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from normbench.cli import app

TINY = {
    "name": "tiny",
    "description": "tiny end-to-end suite",
    "dataset": "digits",
    "models": [{"name": "mlp", "options": {"widths": [16]}}],
    "norms": ["none", "bn", {"name": "gn", "options": {"num_groups": 4}}, "ln"],
    "batch_sizes": [8, 32],
    "seeds": 2,
    "steps": 20,
    "eval_every": 10,
    "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9},
}

runner = CliRunner()


def write_suite(tmp_path, data, name="suite.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("e2e")
    suite = write_suite(tmp_path, TINY)
    out = tmp_path / "out"
    result = invoke("run", suite, "--out", out, "--executor", "serial")
    return tmp_path, suite, out, result


@pytest.mark.slow
def test_run_writes_store_and_report(finished_run):
    _, _, out, result = finished_run
    assert result.exit_code == 0, result.output
    assert (out / "results.sqlite").is_file() and (out / "report.html").is_file()
    conn = sqlite3.connect(out / "results.sqlite")
    outcomes = dict(conn.execute("SELECT outcome, COUNT(*) FROM runs GROUP BY outcome").fetchall())
    assert outcomes == {"completed": 16}
    assert conn.execute("SELECT COUNT(*) FROM curves").fetchone()[0] == 16 * 3  # steps 0, 10, 20
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    html = (out / "report.html").read_text()
    assert "tiny end-to-end suite" in html and "data:image/png;base64," in html


@pytest.mark.slow
def test_second_run_resumes_and_regenerates_the_same_report(finished_run):
    _, suite, out, _ = finished_run
    before = (out / "report.html").read_text()
    result = invoke("run", suite, "--out", out, "--executor", "serial")
    assert result.exit_code == 0, result.output
    assert "16 already stored" in result.output
    conn = sqlite3.connect(out / "results.sqlite")
    assert conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 16
    after = (out / "report.html").read_text()
    def strip(text):
        return [line for line in text.splitlines() if "generated" not in line.lower()]
    assert strip(after) == strip(before)


@pytest.mark.slow
def test_export_csv_has_promised_columns(finished_run):
    tmp_path, _, out, _ = finished_run
    result = invoke("export", out, "--format", "csv", "-o", tmp_path / "runs.csv")
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(tmp_path / "runs.csv")
    assert list(frame.columns[:13]) == [
        "run_id", "suite", "model", "dataset", "norm", "norm_options", "batch_size", "seed", "device",
        "outcome", "final_test_accuracy", "final_test_loss", "step_time_median_s",
    ]
    assert len(frame) == 16 and set(frame["norm"]) == {"none", "batch", "group", "layer"}
    parquet = invoke("export", out, "--format", "parquet", "-o", tmp_path / "runs.parquet")
    assert parquet.exit_code == 0, parquet.output
    assert pd.read_parquet(tmp_path / "runs.parquet").equals(pd.read_csv(tmp_path / "runs.csv")) or len(
        pd.read_parquet(tmp_path / "runs.parquet")) == 16


@pytest.mark.slow
def test_report_formats(finished_run):
    tmp_path, _, out, _ = finished_run
    for fmt in ("md", "json", "html"):
        target = tmp_path / f"r.{fmt}"
        result = invoke("report", out, "--format", fmt, "-o", target)
        assert result.exit_code == 0, result.output
        assert target.stat().st_size > 100


def test_fresh_retrains(tmp_path):
    data = {**TINY, "norms": ["bn"], "batch_sizes": [8], "seeds": 1}
    suite = write_suite(tmp_path, data)
    out = tmp_path / "o"
    assert invoke("run", suite, "--out", out, "--executor", "serial", "--no-report").exit_code == 0
    result = invoke("run", suite, "--out", out, "--executor", "serial", "--fresh", "--no-report")
    assert result.exit_code == 0 and "(0 already stored" in result.output
    assert not (out / "report.html").exists()


def test_set_overrides_change_the_runs(tmp_path):
    suite = write_suite(tmp_path, TINY)
    result = invoke("validate", suite, "--set", "seeds=5", "--set", "batch_sizes=[2,64]")
    assert result.exit_code == 0, result.output
    assert "valid, 40 runs" in result.output


@pytest.mark.slow  # the default local executor starts its workers before validation
@pytest.mark.parametrize(
    "change, overrides, words",
    [
        ({"norms": ["bn", "weird"]}, [], ["norms[1].name", "unknown", "batch", "layer"]),
        ({"models": ["resnet"]}, [], ["models[0].name", "cnn2d", "mlp"]),
        ({"dataset": "imagenet"}, [], ["dataset.name", "digits"]),
        ({"batch_sizes": [0]}, [], ["batch_sizes", "positive"]),
        ({"batch_sizes": [100000]}, [], ["batch_sizes", "larger than the training set"]),
        ({"norms": [{"name": "gn", "options": {"num_groups": 5}}]}, [], ["norms[0].options", "num_groups"]),
        ({}, ["nonsense=1"], ["unknown suite field 'nonsense'"]),
        ({"norms": [{"name": "bn", "options": {"ghost_batch_size": 3}}]}, [], ["ghost_batch_size", "[8, 32]"]),
        ({"devices": ["cuda"]}, [], ["devices", "--skip-unavailable"]),
    ],
)
def test_bad_input_exits_2_with_message_and_writes_nothing(tmp_path, change, overrides, words):
    pytest.importorskip("torch")
    import torch

    if change.get("devices") == ["cuda"] and torch.cuda.is_available():
        pytest.skip("CUDA present")
    suite = write_suite(tmp_path, {**TINY, **change})
    out = tmp_path / "never"
    args = ["run", suite, "--out", out]
    for item in overrides:
        args += ["--set", item]
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    flat = " ".join(result.output.split())
    for word in words:
        assert word in flat, (word, result.output)
    assert "Traceback" not in result.output
    assert not out.exists()


def test_yaml_syntax_error(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: x\nnorms: [bn\n")
    result = invoke("validate", path)
    assert result.exit_code == 2 and "invalid YAML" in result.output and "line" in result.output


def test_skip_unavailable_records_skipped_runs(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    data = {**TINY, "norms": ["bn"], "batch_sizes": [8], "seeds": 1, "devices": ["cpu", "cuda"]}
    out = tmp_path / "o"
    result = invoke("run", write_suite(tmp_path, data), "--out", out, "--executor", "serial", "--skip-unavailable")
    assert result.exit_code == 0, result.output
    conn = sqlite3.connect(out / "results.sqlite")
    rows = dict(conn.execute("SELECT device, outcome FROM runs").fetchall())
    assert rows == {"cpu": "completed", "cuda": "skipped"}


def test_list_and_env():
    norms = invoke("list", "norms")
    assert norms.exit_code == 0
    for name in ("none", "batch", "layer", "instance", "group", "batch_layer", "weight", "full"):
        assert name in norms.output
    lines = {line.split()[0]: line for line in norms.output.splitlines() if line.strip()}
    assert "(alias: wn)" in lines["weight"] and "mean_only_bn, data_dependent_init" in lines["weight"]
    assert "(alias: fn)" in lines["full"] and "inference_weight" in lines["batch"]
    assert "mlp" in invoke("list", "models").output
    assert "digits" in invoke("list", "datasets").output
    env = invoke("env")
    assert env.exit_code == 0 and '"torch"' in env.output
