"""Bad plugins get clear errors: exit 2 at validation where it shows then, else a failed run naming the plugin.

Validation imports each plugin, checks its signature against its protocol and runs it once on the
suite's data; whatever can only go wrong later (a forward that fails at one batch size, a norm
that breaks in training) is a `failed` run whose error names the plugin, and the suite goes on.
"""

from __future__ import annotations

import pytest
from plugin_support import tiny_suite

from normbench import api
from normbench.spec import COMPLETED, FAILED
from normbench.suite import SuiteError

P = "nb_test_plugins"


def _validation_error(suite: dict) -> str:
    with pytest.raises(SuiteError) as err:
        api.validate(suite)
    return str(err.value)


@pytest.mark.parametrize(("changes", "field", "expected"), [
    ({"models": [f"{P}:build_missing"]}, "models[0].name", "has no attribute 'build_missing'"),
    ({"models": [f"{P}:build_wrong_signature"]}, "models[0]",
     "model 'nb_test_plugins:build_wrong_signature' does not follow the model protocol build(*, norm, input_shape, "
     "num_classes, **options) -> nn.Module: got an unexpected keyword argument 'norm'; its signature is "
     "(layers, width=8)"),
    ({"models": [{"name": f"{P}:build_net", "options": {"depth": 3}}]}, "models[0].options",
     "model 'nb_test_plugins:build_net': unknown option 'depth'; allowed options: width"),
    ({"models": [f"{P}:build_raises"]}, "models[0]",
     "model 'nb_test_plugins:build_raises' raised RuntimeError while building: no kernels for this machine"),
    ({"models": [f"{P}:build_bad_forward"]}, "models[0]",
     "model 'nb_test_plugins:build_bad_forward': forward on 2 samples of dataset 'digits' (input (2, 1, 8, 8)) "
     "raised RuntimeError: mat1 and mat2 shapes cannot be multiplied"),
    ({"norms": [f"{P}:NoWidthNorm"]}, "norms[0]",
     "norm 'nb_test_plugins:NoWidthNorm' does not follow the norm protocol Cls(num_features, **options) with "
     "forward(x, mask=None): too many positional arguments"),
    ({"dataset": f"{P}:load_a_dict"}, "dataset",
     "dataset 'nb_test_plugins:load_a_dict' returned a dict, not a normbench.data.Dataset"),
    ({"dataset": f"{P}:load_raises"}, "dataset",
     "dataset 'nb_test_plugins:load_raises' raised OSError while loading: the disk is on fire"),
    ({"dataset": {"name": f"{P}:load_raises", "options": {"colour": 1}}}, "dataset",
     "dataset 'nb_test_plugins:load_raises': unknown option 'colour'; allowed options: size"),
])
def test_a_bad_plugin_is_an_error_at_validation_naming_file_field_and_plugin(plugins, changes, field, expected):
    message = _validation_error(tiny_suite(**changes))
    assert f"<dict>: field `{field}`: " in message
    assert expected in message


def test_a_norm_that_ignores_the_mask_is_refused_where_a_dataset_has_masks(plugins):
    suite = tiny_suite(dataset={"name": "adding", "options": {"n_train": 64, "n_test": 16, "min_length": 4,
                                                             "max_length": 8}},
                       models=["rnn"], norms=[f"{P}:IgnoresMaskNorm", f"{P}:MaskedCenterNorm"])
    message = _validation_error(suite)
    assert ("field `norms[0]`: norm 'nb_test_plugins:IgnoresMaskNorm' (dataset 'adding' has padding masks): ignores "
            "the mask: changing only the padded positions changed valid outputs") in message
    assert "norms[1]" not in message  # the one that honours the mask passes
    # Without masks the same norm is fine: nothing to ignore.
    assert api.validate(tiny_suite(norms=[f"{P}:IgnoresMaskNorm"])).summary == "valid, 1 runs"


def test_a_forward_that_fails_at_one_batch_size_fails_that_run_only_naming_the_plugin(plugins, tmp_path):
    frames = api.run(tiny_suite(models=[f"{P}:build_fails_at_four"], batch_sizes=[2, 4]), tmp_path,
                     executor="serial", report=False, progress=False)
    runs = frames.runs.set_index("batch_size")
    assert runs.loc[2, "outcome"] == COMPLETED and runs.loc[4, "outcome"] == FAILED
    first_line = runs.loc[4, "error"].splitlines()[0]
    assert first_line.startswith("model plugin 'nb_test_plugins:build_fails_at_four' (sha256:")
    assert first_line.endswith("raised RuntimeError: my head cannot take a batch of 4")


def test_a_norm_that_fails_in_training_fails_its_runs_naming_the_norm(plugins, tmp_path):
    frames = api.run(tiny_suite(models=[f"{P}:build_net"], norms=["batch", f"{P}:RaisesInForwardNorm"]), tmp_path,
                     executor="serial", report=False, progress=False)
    outcome = dict(zip(frames.runs["norm"], frames.runs["outcome"]))
    assert outcome == {"batch": COMPLETED, f"{P}:RaisesInForwardNorm": FAILED}
    error = frames.runs.set_index("norm").loc[f"{P}:RaisesInForwardNorm", "error"]
    # Both plugins run in this model; the frame that raised is the norm's.
    assert error.startswith("norm plugin 'nb_test_plugins:RaisesInForwardNorm'")
    assert "raised ArithmeticError: my statistics overflowed" in error.splitlines()[0]


def test_a_builder_that_raises_at_run_time_is_a_failed_run_naming_it(plugins):
    from normbench.suite import expand, load_suite
    from normbench.train import run_training

    suite, _ = load_suite(tiny_suite(models=[f"{P}:build_raises"]))  # loaded, not checked: validation would refuse
    result = run_training(expand(suite)[0])
    assert result.outcome == FAILED
    assert result.error.startswith("model plugin 'nb_test_plugins:build_raises' (sha256:")
    assert "raised RuntimeError: no kernels for this machine" in result.error.splitlines()[0]
