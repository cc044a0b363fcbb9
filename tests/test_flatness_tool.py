"""tools/flatness.py: the fitted rise over the last steps, the best norm's verdict, a real store."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from normbench.spec import CurvePoint
from normbench.store import Store, store_path

_PATH = Path(__file__).resolve().parents[1] / "tools" / "flatness.py"
_SPEC = importlib.util.spec_from_file_location("flatness_tool", _PATH)
flatness = importlib.util.module_from_spec(_SPEC)
sys.modules[_SPEC.name] = flatness  # dataclasses look their module up there
_SPEC.loader.exec_module(flatness)


def test_rise_of_a_straight_line_is_its_slope_times_the_window():
    steps = np.arange(0, 1001, 100, dtype=float)  # window 0.2 of 0..1000: steps 800, 900, 1000
    start, points, rise = flatness.window_rise(steps, 50 + 0.01 * steps, 0.2)
    assert (start, points) == (800.0, 3)
    assert rise == pytest.approx(0.01 * 200)


def test_rise_ignores_what_happened_before_the_window():
    steps = np.arange(0, 1001, 100, dtype=float)
    values = np.where(steps < 800, steps / 10, 90.0)  # a fast rise, then flat for the last 20 %
    assert flatness.window_rise(steps, values, 0.2)[2] == pytest.approx(0.0)
    assert flatness.window_rise(steps, values, 0.5)[2] > 10


def _write(out_dir, make_spec, make_result, curves):
    """A store with one run per (norm, seed) on digits; ``curves[norm]`` gives accuracies at steps 0..1000."""
    specs = {(norm, seed): make_spec(norm=norm, seed=seed, steps=1000, eval_every=100)
             for norm in curves for seed in (0, 1)}
    with Store(store_path(out_dir)) as store:
        store.record_environment({"torch": "test"}, "now")
        store.record_suite("t", "", "name: t", "normbench run t.yaml", [s.run_id for s in specs.values()], "now")
        for (norm, seed), spec in specs.items():
            accuracy = [a + 0.01 * (seed - 0.5) for a in curves[norm]]  # the seeds' mean is the curve
            points = [CurvePoint(100 * k, k / 10, 1600 * k, 0.1, 0.2, a, 0.01 * k) for k, a in enumerate(accuracy)]
            store.write_run(make_result(spec, curve=points, final_test_accuracy=accuracy[-1], steps_done=1000))


def test_a_store_whose_best_norm_still_rises_is_not_converged(tmp_path, make_spec, make_result, capsys):
    rising = [0.5 + 0.04 * k for k in range(11)]  # +8 points over the last 200 steps, best final
    flat = [0.5 + 0.03 * min(k, 7) for k in range(11)]
    _write(tmp_path, make_spec, make_result, {"batch": rising, "layer": flat})
    assert flatness.main([str(tmp_path), "--all"]) == 1
    out = capsys.readouterr().out
    assert "NOT converged (best: batch)" in out and "+8.00  still moving" in out and "+0.00  flat" in out


def test_a_store_whose_best_norm_is_flat_converged(tmp_path, make_spec, make_result, capsys):
    flat_best = [0.6 + 0.04 * min(k, 7) for k in range(11)]
    rising = [0.5 + 0.03 * k for k in range(11)]  # a slower norm still rising does not decide
    _write(tmp_path, make_spec, make_result, {"batch": flat_best, "layer": rising})
    assert flatness.main([str(tmp_path)]) == 0
    assert "converged (best: batch)" in capsys.readouterr().out


def test_too_few_points_in_the_window_is_not_flat(tmp_path, make_spec, make_result):
    _write(tmp_path, make_spec, make_result, {"batch": [0.9] * 11})
    assert flatness.main([str(tmp_path), "--window", "0.1"]) == 1  # 2 points: 900 and 1000


def test_a_directory_without_a_store_exits_2(tmp_path, capsys):
    assert flatness.main([str(tmp_path)]) == 2
    assert "no results store" in capsys.readouterr().err
