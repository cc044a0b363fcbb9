"""Builders shared by the tests: run specs and finished runs.

Test modules receive them as fixtures of the same name (``make_spec``, ``make_result``): with
``--import-mode=importlib`` a test module cannot import a conftest.
"""

from __future__ import annotations

from typing import Any

import pytest

from normbench.spec import CurvePoint, RunResult, RunSpec, freeze_options

# A small valid training run: an MLP of width 32 with BN on digits, 20 SGD steps, 3 evaluations.
SPEC_DEFAULTS: dict[str, Any] = dict(
    suite="t", model="mlp", dataset="digits", norm="batch", batch_size=16, seed=0, device="cpu", steps=20,
    epochs=None, optimizer="sgd", lr=0.05, momentum=0.9, weight_decay=0.0, eval_every=10,
)


def make_spec(**overrides: Any) -> RunSpec:
    """A RunSpec from SPEC_DEFAULTS and ``overrides`` (no `norm_label`: the store labels runs by norm)."""
    return RunSpec(**{**SPEC_DEFAULTS, "model_options": freeze_options({"widths": [32]}), **overrides})


def make_result(spec: RunSpec, *, outcome: str = "completed", accuracy: float = 0.9, **overrides: Any) -> RunResult:
    """A finished run of ``spec``: a curve at steps 0, 5, 10 rising to ``accuracy``; ``overrides``
    replace any other RunResult field (e.g. ``curve``, ``step_time_median_s``)."""
    curve = [CurvePoint(step=k, epoch=k / 10, samples_seen=spec.batch_size * k, train_loss=1.0 / (k + 1),
                        test_loss=0.5, test_accuracy=accuracy * k / 10, wall_time_s=0.01 * k) for k in (0, 5, 10)]
    values: dict[str, Any] = dict(
        curve=curve, final_test_accuracy=accuracy, final_test_loss=0.5, final_train_loss=0.1,
        step_time_median_s=0.002, steps_done=10, wall_time_s=0.1, started_at="t0", finished_at="t1",
    )
    return RunResult(spec=spec, outcome=outcome, **{**values, **overrides})


@pytest.fixture(name="make_spec", scope="session")
def make_spec_fixture():
    """:func:`make_spec`."""
    return make_spec


@pytest.fixture(name="make_result", scope="session")
def make_result_fixture():
    """:func:`make_result`."""
    return make_result
