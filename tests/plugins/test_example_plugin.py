"""The installable example plugin (examples/normbench-example-plugin) end to end, through the CLI and the API.

The test environment is shared, so the package is not pip-installed here: its directory goes on the
path and a temporary dist-info declares the entry points read from its own pyproject.toml, which is
what an install writes (`pip install --no-index --no-build-isolation -e examples/normbench-example-plugin`
does the real thing, offline).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import tomllib

import pytest
from plugin_support import REPO, forget_all_plugins, write_distribution

from normbench import api
from normbench.spec import COMPLETED

EXAMPLE = REPO / "examples" / "normbench-example-plugin"
SUITE = {
    "name": "example_plugin", "dataset": {"name": "example_stripes", "options": {"n_train": 64, "n_test": 32, "size": 8}},
    "models": [{"name": "example_resnet", "options": {"width": 4, "blocks": 1}}], "norms": ["example_scale"],
    "batch_sizes": [8], "seeds": [0], "steps": 3, "eval_every": 3, "optimizer": {"lr": 0.05},
}


@pytest.fixture
def example_site(tmp_path, monkeypatch):
    """The example package importable and its entry points installed (a dist-info from its pyproject)."""
    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]
    site = tmp_path / "site"
    write_distribution(site, project["name"], project["version"], project["entry-points"])
    monkeypatch.syspath_prepend(str(EXAMPLE))
    monkeypatch.syspath_prepend(str(site))
    forget_all_plugins()
    yield site
    forget_all_plugins()
    for name in [m for m in sys.modules if m.startswith("normbench_example")]:
        del sys.modules[name]


def _stored_plugins(out) -> dict:
    with sqlite3.connect(out / "results.sqlite") as conn:
        (spec,) = conn.execute("SELECT spec FROM runs").fetchone()
    return json.loads(spec)["plugins"]


def test_the_example_plugin_runs_through_the_python_api(example_site, tmp_path):
    frames = api.run(SUITE, tmp_path / "out", executor="serial", progress=False)
    assert list(frames.runs["outcome"]) == [COMPLETED]
    plugins = _stored_plugins(tmp_path / "out")
    assert set(plugins) == {"model", "dataset", "norm"}
    assert {(p["distribution"], p["version"]) for p in plugins.values()} == {("normbench-example-plugin", "0.1.0")}
    assert plugins["norm"]["file"] == str(EXAMPLE / "normbench_example" / "norms.py")
    assert frames.environment["plugin: norm example_scale = normbench_example.norms:ScaleNorm"].startswith(
        "normbench-example-plugin 0.1.0 · ")
    report = (tmp_path / "out" / "report.html").read_text()
    assert "plugin: model example_resnet = normbench_example.nets:build_small_resnet" in report


@pytest.mark.slow  # two interpreters start (list, run) plus a worker: ~15 s
def test_the_example_plugin_runs_through_the_cli_in_worker_processes(example_site, tmp_path):
    suite_file = tmp_path / "suite.yaml"
    suite_file.write_text(json.dumps(SUITE))  # JSON is YAML
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(EXAMPLE), str(example_site)])}
    listing = subprocess.run([sys.executable, "-m", "normbench", "list", "models"], capture_output=True, text=True,
                             env=env, timeout=120)
    assert ("example_resnet  (plugin: normbench-example-plugin 0.1.0, normbench_example.nets:build_small_resnet)"
            in listing.stdout.splitlines())
    run = subprocess.run([sys.executable, "-m", "normbench", "run", str(suite_file), "--out", str(tmp_path / "out"),
                          "--workers", "1", "--no-report"], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "1 runs (0 already stored; completed 1)" in run.stderr
    assert _stored_plugins(tmp_path / "out")["model"]["reference"] == \
        "example_resnet = normbench_example.nets:build_small_resnet"
