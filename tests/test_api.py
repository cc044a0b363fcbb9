"""normbench.api: suites as paths or dicts, overrides as strings or a mapping, and the run/load/report/compare calls."""

from __future__ import annotations

import copy
import subprocess
import sys

import pytest

import normbench
from normbench import api
from normbench.spec import COMPLETED
from normbench.suite import SuiteError

SUITE = {
    "name": "api_suite", "dataset": "digits", "models": [{"name": "mlp", "options": {"widths": [8]}}],
    "norms": ["batch", "layer"], "batch_sizes": [8], "seeds": [0], "steps": 2, "eval_every": 2,
    "optimizer": {"lr": 0.05},
}


def test_a_dict_suite_goes_through_the_same_validation_named_dict():
    with pytest.raises(SuiteError, match=r"^<dict>: field `dataset`: required field is missing"):
        api.validate({k: v for k, v in SUITE.items() if k != "dataset"})
    with pytest.raises(SuiteError, match=r"<dict>: field `norms\[1\]\.name`: unknown norm 'bnn'"):
        api.validate({**SUITE, "norms": ["batch", "bnn"]})
    with pytest.raises(SuiteError, match="a suite is a YAML file's path or a mapping of its fields; got a list"):
        api.validate([SUITE])


def test_overrides_as_a_mapping_and_the_callers_dict_is_left_alone():
    given = copy.deepcopy(SUITE)
    plan = api.validate(given, {"seeds": 3, "optimizer.lr": 0.2, "norms": ["ln"]})
    assert [(s.norm, s.seed, s.lr) for s in plan.specs] == [("layer", 0, 0.2), ("layer", 1, 0.2), ("layer", 2, 0.2)]
    assert given == SUITE
    assert api.override_strings({"batch_sizes": [2, 64], "optimizer.name": "adam"}) == \
        ['batch_sizes=[2, 64]', 'optimizer.name="adam"']
    with pytest.raises(TypeError, match="not one string"):
        api.override_strings("seeds=3")


def test_run_load_report_and_compare(tmp_path):
    frames = api.run(SUITE, tmp_path / "out", executor="serial", progress=False)
    assert sorted(frames.runs["norm"]) == ["batch", "layer"] and set(frames.runs["outcome"]) == {COMPLETED}
    assert frames.command.startswith("python: normbench.run(<dict suite>, out=")
    assert "name: api_suite" in frames.suite_yaml
    again = api.load(tmp_path / "out")
    assert again.runs["run_id"].tolist() == frames.runs["run_id"].tolist()
    path = api.report(tmp_path / "out", "md")
    assert path == tmp_path / "out" / "report.md" and "api_suite" in path.read_text()
    with pytest.raises(ValueError, match="unknown report format 'pdf'; allowed: html, md, json"):
        api.report(tmp_path / "out", "pdf")
    result = api.compare(tmp_path / "out", tmp_path / "out", fail_on={"accuracy_drop": 1})
    assert result.failed is False
    # The same suite from a file resumes the dict's runs: ids depend on the suite, not on how it was given.
    suite_file = tmp_path / "suite.yaml"
    suite_file.write_text(frames.suite_yaml)
    summary = api.execute(suite_file, tmp_path / "out", executor="serial", report=False)
    assert summary.skipped_as_done == 2


def test_the_api_is_exported_top_level_without_importing_torch():
    assert normbench.run is api.run and normbench.load is api.load and normbench.validate is api.validate
    code = "import normbench, sys; normbench.load; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
