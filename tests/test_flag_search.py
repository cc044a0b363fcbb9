"""The 16-combination inference-flag evaluation of BLN runs: every combination, each row what a model
built with those flags gives, and the model's state (parameters, buffers, flags) left bitwise unchanged."""

from __future__ import annotations

import functools
import math

import pytest
import torch

import normbench.train as train
from normbench.data import load_dataset
from normbench.flag_search import COMBINATIONS, FLAGS, bln_layers, evaluate_flag_combinations
from normbench.models import create_model
from normbench.norms import create_norm
from normbench.spec import freeze_options


@pytest.fixture(scope="module")
def digits_val():
    return load_dataset("digits", validation=200)


def _trained_run(digits_val, make_spec, **overrides):
    """A BLN run (lenet5: per-position estimates of maps and dense features) trained for 12 steps."""
    overrides = {"model": "lenet5", "model_options": freeze_options({}), **overrides}
    spec = make_spec(norm="batch_layer", steps=12, eval_every=6, **overrides)
    run = train.prepare_run(spec, digits_val)
    for _ in train.training_points(run):
        pass
    return run


def _state(model: torch.nn.Module) -> dict:
    """Everything an evaluation could change: every parameter and buffer (cloned) and every BLN flag."""
    tensors = {name: t.detach().clone() for name, t in list(model.named_parameters()) + list(model.named_buffers())}
    flags = [tuple(getattr(layer, f) for f in FLAGS) for layer in bln_layers(model)]
    return {"tensors": tensors, "flags": flags, "training": model.training}


def test_the_authors_16_combinations_in_their_order():
    assert len(COMBINATIONS) == 16 == len(set(COMBINATIONS))
    assert COMBINATIONS[0] == (True,) * 4 and COMBINATIONS[-1] == (False,) * 4
    assert COMBINATIONS[1] == (True, True, True, False)  # the last flag varies fastest


def test_evaluation_leaves_parameters_buffers_and_flags_bitwise_unchanged(digits_val, make_spec):
    run = _trained_run(digits_val, make_spec, norm_options=freeze_options({"batch_moving_var": False}))
    before = _state(run.model)
    rows = train.search_inference_flags(run)
    after = _state(run.model)
    assert len(rows) == 16
    assert before["flags"] == after["flags"] and before["flags"][0] == (True, False, False, False)
    assert before["training"] == after["training"]
    assert before["tensors"].keys() == after["tensors"].keys()
    for name, tensor in before["tensors"].items():
        assert torch.equal(tensor, after["tensors"][name]), name


def test_flags_are_restored_when_an_evaluation_raises(digits_val, make_spec):
    run = _trained_run(digits_val, make_spec, model="mlp", model_options=freeze_options({"widths": [32, 32]}))
    calls = []

    def failing(split):
        calls.append(split)
        if len(calls) == 5:
            raise RuntimeError("boom")
        return 1.0, 0.5

    with pytest.raises(RuntimeError, match="boom"):
        evaluate_flag_combinations(run.model, failing, has_validation=True)
    assert [tuple(getattr(layer, f) for f in FLAGS) for layer in bln_layers(run.model)] == \
        [(True, True, False, False)] * len(bln_layers(run.model))


def test_each_row_is_the_model_evaluated_with_those_flags(digits_val, make_spec):
    """Independent check: copy the trained state into a model built with the row's flags as options."""
    run = _trained_run(digits_val, make_spec)
    rows = train.search_inference_flags(run)
    for index in (0, 5, 15):
        flags = dict(zip(FLAGS, COMBINATIONS[index]))
        torch.manual_seed(0)
        twin = create_model("lenet5", norm=functools.partial(create_norm, "batch_layer", **flags),
                            input_shape=digits_val.input_shape, num_classes=10)
        twin.load_state_dict(run.model.state_dict())
        test = train.evaluate(twin, digits_val.x_test, digits_val.y_test)
        val = train.evaluate(twin, digits_val.x_val, digits_val.y_val)
        row = rows[index]
        assert (row.batch_moving_mean, row.batch_moving_var, row.feature_moving_mean, row.feature_moving_var) == \
            COMBINATIONS[index]
        assert (row.test_loss, row.test_accuracy) == pytest.approx(test, rel=1e-6)
        assert (row.val_loss, row.val_accuracy) == pytest.approx(val, rel=1e-6)


def test_models_without_bln_get_no_table_and_no_validation_means_nan(digits_val, make_spec):
    run = _trained_run(digits_val, make_spec, model="mlp", model_options=freeze_options({"widths": [32]}))
    rows = evaluate_flag_combinations(run.model, lambda split: (1.0, 0.5), has_validation=False)
    assert all(math.isnan(r.val_loss) and math.isnan(r.val_accuracy) for r in rows)
    bn = make_spec(norm="batch", steps=4, eval_every=4)
    assert train.run_training(bn, digits_val).inference_flags == []


def test_a_completed_bln_run_stores_16_rows_and_the_configured_row_is_its_final_accuracy(digits_val, make_spec):
    spec = make_spec(norm="batch_layer", steps=12, eval_every=6)  # the MLP: (N, C) features
    result = train.run_training(spec, digits_val)
    assert result.outcome == "completed" and len(result.inference_flags) == 16
    configured = next(r for r in result.inference_flags
                      if (r.batch_moving_mean, r.batch_moving_var, r.feature_moving_mean, r.feature_moving_var)
                      == (True, True, False, False))  # batch_layer's defaults
    assert configured.test_accuracy == result.final_test_accuracy
    assert configured.test_loss == pytest.approx(result.final_test_loss, rel=1e-6)
