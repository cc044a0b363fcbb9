"""The BLN suites as shipped: they validate, stop without their data naming the fetch command, and the
embedded fallback commands their headers document run through validation as written."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from normbench.suite import SuiteError
from normbench.suite.load import load_suite, plan_suite

SUITES = Path(__file__).resolve().parents[1] / "suites"
BLN_SUITES = ("bln2022_cnn", "bln2022_rnn", "bln_ablation")
CHANGED = ("quick", "ioffe2015", "keras_dense", "learning_rate", "placement")


def header_overrides(name: str) -> list[str]:
    """The `--set` values of the fallback command in a suite's header comments."""
    header = "\n".join(line[1:] for line in (SUITES / f"{name}.yaml").read_text().splitlines()
                       if line.startswith("#"))
    command = re.search(r"normbench run suites/\S+\.yaml(.*?)(?:\n#?\s*Budget:|\n\s*Budget:)", header, re.S)
    assert command, f"{name}: no fallback command in the header"
    words = shlex.split(command.group(1).replace("\\\n", " "))
    return [words[i + 1] for i, word in enumerate(words) if word == "--set"]


@pytest.mark.parametrize("name", BLN_SUITES + CHANGED)
def test_the_suite_loads(name):
    suite, _ = load_suite(SUITES / f"{name}.yaml")
    labels = [n.label or n.name for n in suite.norms]
    assert len(labels) == len(set(labels))


@pytest.mark.parametrize("name, dataset", [("bln2022_cnn", "cifar10"), ("bln2022_rnn", "imdb")])
def test_without_the_real_data_the_suite_stops_naming_the_fetch_command(name, dataset, tmp_path, monkeypatch):
    monkeypatch.setenv("NORMBENCH_DATA", str(tmp_path))
    with pytest.raises(SuiteError, match=f"normbench data fetch {dataset}"):
        plan_suite(SUITES / f"{name}.yaml")


@pytest.mark.parametrize("name, runs", [("bln2022_cnn", 60), ("bln2022_rnn", 30)])
def test_the_documented_fallback_validates(name, runs):
    plan = plan_suite(SUITES / f"{name}.yaml", header_overrides(name))
    assert len(plan.specs) == runs
    assert {s.dataset for s in plan.specs} <= {"digits", "tokens"}
    assert all(s.select == "best_validation_loss" and s.eval_per_epoch for s in plan.specs)


def test_the_ablation_walks_from_the_authors_setting_to_normbench():
    plan = plan_suite(SUITES / "bln_ablation.yaml")
    assert len(plan.specs) == 180
    settings = {(s.optimizer, s.model_kwargs["activation"], s.model_kwargs["placement"]) for s in plan.specs}
    assert ("adam", "tanh", "after") in settings and ("sgd", "relu", "before") in settings
    forms = {s.norm_label: s.norm_kwargs for s in plan.specs if s.norm == "batch_layer"}
    assert forms["BLN reference"] == {}
    assert {"divide_by_sqrt_channels": False} in forms.values() and {"pooled": True} in forms.values()


def test_the_bln_entries_of_the_other_suites_keep_the_reference_form_as_its_own_row():
    for name in CHANGED:
        suite, _ = load_suite(SUITES / f"{name}.yaml")
        bln = {n.label: n.options for n in suite.norms if n.name in ("batch_layer", "bln")}
        assert bln.get("BLN reference") == {}, name
        assert any(options for options in bln.values()), name


QUESTION_SUITES = sorted(p.stem for p in SUITES.glob("*.yaml") if p.stem != "quick")  # quick is a smoke run


@pytest.mark.parametrize("name", QUESTION_SUITES)
def test_every_question_suite_states_its_question_source_expectation_budget_and_measured_outcome(name):
    """Issue 14: a shipped suite says what it asks, whom it tests, what was expected, what budget was
    measured and what came out; an outcome not yet measured is a defect, not a placeholder."""
    text = (SUITES / f"{name}.yaml").read_text()
    header = {m.group(1): m.group(2) for m in re.finditer(r"^# (\w+):\s*(.*)$", text, re.M)}
    for field in ("Question", "Source", "Expected", "Budget", "Outcome"):
        assert header.get(field, "").strip(), f"{name}: no `# {field}:` line in the header"
    assert "to be filled" not in header["Outcome"] and "TODO" not in text, name
    suite, _ = load_suite(SUITES / f"{name}.yaml")
    assert suite.name == name  # the default output directory the README commands point at
