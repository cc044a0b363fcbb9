"""Suite fields of the authors' protocols: optimizer lists, `eval_every: epoch`, `select`, fixed batching,
`reference:` and `analysis.convergence` - accepted forms, run specs, ids and the errors for bad values."""

from __future__ import annotations

import pytest

from normbench.spec import RunSpec
from normbench.suite import SuiteError, expand, validate_suite

BASE = {
    "name": "t", "dataset": "digits", "models": ["mlp"], "norms": ["bn", "ln"], "batch_sizes": [4],
    "seeds": 2, "steps": 5, "optimizer": {"name": "sgd", "lr": 0.1},
}


def error_of(change):
    with pytest.raises(SuiteError) as info:
        validate_suite({**BASE, **change}, source="f.yaml")
    return str(info.value)


def test_a_list_of_optimizers_expands_into_runs_of_each():
    suite = validate_suite({**BASE, "optimizer": [{"name": "adam", "lr": 0.002}, {"name": "sgd", "lr": [0.1, 0.2],
                                                                                   "momentum": 0.9}]})
    specs = expand(suite)
    assert len(specs) == 3 * 2 * 2  # (adam, sgd 0.1, sgd 0.2) x norms x seeds
    assert {(s.optimizer, s.lr, s.momentum) for s in specs} == {("adam", 0.002, 0.0), ("sgd", 0.1, 0.9),
                                                                ("sgd", 0.2, 0.9)}
    one = expand(validate_suite(BASE))
    assert [s.run_id for s in one] == [s.run_id for s in expand(validate_suite({**BASE, "optimizer": [BASE["optimizer"]]}))]


def test_bad_optimizer_entries_name_the_field_without_union_noise():
    message = error_of({"optimizer": {"name": "rmsprop", "lr": 0.1}})
    assert message == "f.yaml: field `optimizer.name`: Input should be 'sgd' or 'adam'"
    assert "`optimizer[1].lr`" in error_of({"optimizer": [{"name": "sgd", "lr": 0.1}, {"name": "adam", "lr": -1}]})
    assert "must be distinct" in error_of({"optimizer": [{"name": "sgd", "lr": 0.1}, {"name": "sgd", "lr": 0.1}]})


def test_eval_every_epoch_and_select_reach_the_specs_and_leave_old_ids_alone():
    specs = expand(validate_suite({**BASE, "eval_every": "epoch", "select": "best_validation_loss"}))
    assert all(s.eval_per_epoch and s.eval_every == 0 and s.select == "best_validation_loss" for s in specs)
    default = expand(validate_suite(BASE))[0]
    assert "eval_per_epoch" not in default.identity() and "select" not in default.identity()
    assert RunSpec.from_dict(specs[0].to_dict()) == specs[0]
    assert "positive number of steps or `epoch`" in error_of({"eval_every": 0})
    assert "`select`" in error_of({"select": "best"})


def test_fixed_batching_forms():
    suite = validate_suite({**BASE, "batching": ["fixed", {"order": "fixed", "samples": 100}]})
    assert suite.batching == [{"order": "fixed"}, {"order": "fixed", "samples": 100}]
    labels = {s.batching_label for s in expand(suite)}
    assert labels == {"fixed", "fixed, samples=100"}
    assert suite.model_dump()["batching"] == ["fixed", {"order": "fixed", "samples": 100}]


def test_reference_block_is_checked_against_the_published_runs():
    suite = validate_suite({**BASE, "reference": {"source": "bln2022", "task": "cnn", "norms": {"bn": "BN"}}})
    assert suite.reference.published_tasks() == {"cnn": None} and suite.reference.our_batch_size(25) == 25
    assert "no task(s) ['vision']" in error_of({"reference": {"source": "bln2022", "task": "vision", "norms": {"bn": "BN"}}})
    assert "norm(s) ['gn']" in error_of({"reference": {"source": "bln2022", "task": "cnn", "norms": {"gn": "GN"}}})
    assert "either `task`" in error_of({"reference": {"source": "bln2022", "task": "cnn", "tasks": {"rnn": "x"},
                                                      "norms": {"bn": "BN"}}})
    assert "neither a shipped reference" in error_of({"reference": {"source": "nowhere.yaml", "task": "cnn",
                                                                    "norms": {"bn": "BN"}}})


def test_reference_from_a_file_in_the_same_format(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("name: mine\ncitation: {paper: x}\nruns:\n  - {task: mlp, norm: none, batch_size: 100, "
                    "test: {accuracy: 0.5}}\n")
    suite = validate_suite({**BASE, "reference": {"source": str(path), "tasks": {"mlp": "mlp"}, "norms": {"none": "none"},
                                                  "batch_sizes": {100: 4}}})
    assert suite.reference.our_batch_size(100) == 4
    (tmp_path / "bad.yaml").write_text("just: text\n")
    assert "needs `name`, `citation` and a list of `runs`" in error_of(
        {"reference": {"source": str(tmp_path / "bad.yaml"), "task": "mlp", "norms": {"none": "none"}}})


def test_convergence_block_of_the_analysis():
    suite = validate_suite({**BASE, "analysis": {"convergence": {"loss_threshold": 0.5}}})
    assert suite.analysis.convergence.loss_threshold == 0.5 and suite.analysis.convergence.auc_margin == 0.05
    assert "loss_threshold" in error_of({"analysis": {"convergence": {"loss_threshold": -1}}})
    assert "unknown field; allowed here: loss_threshold, auc_margin, epochs_margin" in error_of(
        {"analysis": {"convergence": {"threshold": 1}}})
