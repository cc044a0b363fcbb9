"""Learning-rate schedules: the cosine closed form, what a training run sets at every step, the
suite field, and run ids that stay what they were for the constant default."""

from __future__ import annotations

import json

import numpy as np
import pytest

from normbench.lr_schedule import rate_factor
from normbench.spec import RunSpec, canonical_json
from normbench.suite import SuiteError, expand, validate_suite
from normbench.train import prepare_run, training_points


def test_cosine_starts_at_the_full_rate_halves_midway_and_ends_near_zero():
    assert rate_factor("cosine", 1, 10) == 1.0
    assert rate_factor("cosine", 6, 10) == pytest.approx(0.5)  # (s - 1) / S = 1/2
    assert rate_factor("cosine", 10, 10) == pytest.approx((1 + np.cos(np.pi * 0.9)) / 2)
    assert rate_factor("constant", 7, 10) == 1.0
    with pytest.raises(ValueError, match="unknown lr schedule 'step'"):
        rate_factor("step", 1, 10)


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_training_uses_the_scheduled_rate_at_every_step(make_spec, schedule):
    spec = make_spec(lr_schedule=schedule, steps=12, eval_every=6)
    run = prepare_run(spec)
    seen, step = [], run.optimizer.step

    def recording_step(*args, **kwargs):
        seen.append(run.optimizer.param_groups[0]["lr"])
        return step(*args, **kwargs)

    run.optimizer.step = recording_step
    for _ in training_points(run):
        pass
    s = np.arange(1, 13)
    expected = spec.lr * ((1 + np.cos(np.pi * (s - 1) / 12)) / 2 if schedule == "cosine" else np.ones(12))
    np.testing.assert_allclose(seen, expected, rtol=1e-12)


def test_constant_runs_keep_their_ids_and_cosine_runs_get_new_ones(make_spec):
    constant, cosine = make_spec(), make_spec(lr_schedule="cosine")
    assert constant.run_id == "8890037b09ffaa75"  # as pinned in test_spec: stores made before still resume
    assert "lr_schedule" not in constant.identity()
    assert cosine.run_id != constant.run_id and cosine.identity()["lr_schedule"] == "cosine"
    assert RunSpec.from_dict(json.loads(canonical_json(cosine.to_dict()))) == cosine


BASE = {"name": "t", "dataset": "digits", "models": ["mlp"], "norms": ["bn"], "batch_sizes": [8], "seeds": 1,
        "steps": 5, "optimizer": {"name": "sgd", "lr": 0.1}}


def test_suite_optimizer_schedule_reaches_every_run_and_bad_values_name_the_field():
    assert {s.lr_schedule for s in expand(validate_suite(dict(BASE)))} == {"constant"}
    cosine = {**BASE, "optimizer": {"name": "sgd", "lr": 0.1, "schedule": "cosine"}}
    assert {s.lr_schedule for s in expand(validate_suite(cosine))} == {"cosine"}
    with pytest.raises(SuiteError) as info:
        validate_suite({**BASE, "optimizer": {"name": "sgd", "lr": 0.1, "schedule": "linear"}}, source="f.yaml")
    assert "optimizer.schedule" in str(info.value) and "'constant' or 'cosine'" in str(info.value)
