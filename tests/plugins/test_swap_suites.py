"""Suites whose model entry says `swap_norms: true`: an existing model, built as given, with each norm swapped in."""

from __future__ import annotations

import io
import shutil
from importlib.util import find_spec

import pytest
from plugin_support import REPO, forget_all_plugins, tiny_suite
from rich.console import Console

from normbench import api
from normbench.spec import COMPLETED
from normbench.suite import SuiteError

P = "nb_test_plugins"
SWAPPED = {"name": f"{P}:torch_conv_net", "options": {"num_classes": 10}, "swap_norms": True}


def test_an_existing_model_is_trained_with_each_norm_swapped_in(plugins, tmp_path):
    suite = tiny_suite(models=[SWAPPED], norms=["batch", {"name": "group", "options": {"num_groups": 4}}, "bln"])
    plan = api.validate(suite)
    assert {spec.swap_norms for spec in plan.specs} == {(("layer_norm", False),)}
    frames = api.run(suite, tmp_path, executor="serial", report=False, progress=False)
    assert list(frames.runs["outcome"]) == [COMPLETED] * 3
    assert frames.runs["model"].unique().tolist() == [f"{P}:torch_conv_net"]


@pytest.mark.parametrize(("model", "expected"), [
    ({"name": "cnn2d", "swap_norms": True}, "swap_norms is for a model that builds its own norm layers"),
    ({"name": f"{P}:torch_conv_net", "swap_norms": True},
     "returned (2, 1000); expected logits of shape (2, 10) (10 outputs: give the model's class count in its options)"),
    ({"name": f"{P}:no_norm_net", "swap_norms": True}, "swap_norms found no norm layer to replace"),
    ({"name": f"{P}:build_net", "swap_norms": True},
     "takes normbench's `norm` factory (the builder protocol): remove swap_norms"),
    ({"name": f"{P}:torch_conv_net", "options": {"num_classes": 10, "depth": 2}, "swap_norms": True},
     "model 'nb_test_plugins:torch_conv_net': unknown option 'depth'; allowed options: num_classes, width"),
])
def test_swap_entries_that_cannot_work_are_validation_errors(plugins, model, expected):
    with pytest.raises(SuiteError) as err:
        api.validate(tiny_suite(models=[model]))
    assert "<dict>: field `models[0]" in str(err.value) and expected in str(err.value)


def test_a_new_plugin_version_keeps_run_ids_and_resume_says_what_changed(plugins, tmp_path, monkeypatch):
    source = tmp_path / "plugin_src"
    source.mkdir()
    shutil.copy(REPO / "tests" / "plugins" / "samples" / "nb_test_plugins.py", source / "nb_drift_plugin.py")
    monkeypatch.syspath_prepend(str(source))
    suite = tiny_suite(models=["nb_drift_plugin:build_net"])
    first = api.run(suite, tmp_path / "out", executor="serial", report=False, progress=False)
    (source / "nb_drift_plugin.py").write_text((source / "nb_drift_plugin.py").read_text() + "\n# a later version\n")
    monkeypatch.delitem(__import__("sys").modules, "nb_drift_plugin")
    forget_all_plugins()
    log = io.StringIO()
    summary = api.execute(suite, tmp_path / "out", executor="serial", report=False,
                          console=Console(file=log, width=400))
    assert summary.skipped_as_done == 1 and api.load(tmp_path / "out").runs["run_id"].tolist() == \
        first.runs["run_id"].tolist()
    note = log.getvalue()
    assert "1 stored run(s) used model plugin 'nb_drift_plugin:build_net' at sha256:" in note
    assert "Run ids do not include plugin versions, so those runs are kept, not retrained: use --fresh" in note


def test_the_resnet18_example_suite_trains_torchvision_resnet18_with_each_norm(tmp_path, monkeypatch):
    if find_spec("torchvision") is None:
        pytest.skip("torchvision is not installed (optional extra `vision`, pinned to the release matching torch; "
                    "docs/extending.md, 'Installing torchvision')")
    # The suite's documented fallback for CIFAR-10: the example plugin's synthetic 32x32 stripes.
    monkeypatch.syspath_prepend(str(REPO / "examples" / "normbench-example-plugin"))
    forget_all_plugins()
    stripes = {"name": "normbench_example.data:load_stripes", "options": {"size": 32, "n_train": 8, "n_test": 4}}
    frames = api.run(REPO / "examples" / "resnet18_swap.yaml", tmp_path,
                     {"dataset": stripes, "batch_sizes": [2], "seeds": 1, "steps": 1, "eval_every": 1},
                     executor="serial", report=False, progress=False)
    assert sorted(frames.runs["norm"]) == ["batch", "batch_layer", "group"]
    assert set(frames.runs["outcome"]) == {COMPLETED}
    forget_all_plugins()


def test_the_resnet18_example_suite_parses_without_torchvision():
    from normbench.suite import load_suite

    suite, _ = load_suite(REPO / "examples" / "resnet18_swap.yaml")
    assert suite.models[0].name == "torchvision.models:resnet18" and suite.models[0].swap_settings() == \
        {"layer_norm": False}
    assert [n.name for n in suite.norms] == ["batch", "group", "batch_layer"] and suite.batch_sizes == [2, 4, 8, 16, 32]
