"""Synthetic ResultFrames for report tests: realistic columns, known accuracies, curves per run."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from normbench.frames import CURVE_COLUMNS, RUN_COLUMNS, ResultFrames

N_TEST = 360  # digits test split size: accuracies are multiples of 1/360, as in real runs
STEPS = (0, 50, 100, 150, 200)

# Mean final accuracy per (norm_label, batch size); GN is clearly better than BN at batch size 4.
BASE_ACCURACY = {
    ("batch", 4): 0.80, ("batch", 64): 0.95,
    ("layer", 4): 0.90, ("layer", 64): 0.94,
    ("group(num_groups=4)", 4): 0.95, ("group(num_groups=4)", 64): 0.95,
}
NORM_OF = {"batch": "batch", "layer": "layer", "group(num_groups=4)": "group"}


def make_frames(models=("cnn2d",), seeds=(0, 1, 2), batch_sizes=(4, 64), labels=tuple(NORM_OF), *,
                outcomes=None, name="quick", description="Three norms on digits.", noise_seed=0) -> ResultFrames:
    """Build frames; ``outcomes`` maps (model, label, batch size, seed) to (outcome, error)."""
    rng = np.random.default_rng(noise_seed)
    outcomes = outcomes or {}
    runs, curves = [], []
    for model in models:
        for label in labels:
            for batch_size in batch_sizes:
                for seed in seeds:
                    run_id = f"{model}-{label}-{batch_size}-{seed}"
                    outcome, error = outcomes.get((model, label, batch_size, seed), ("completed", ""))
                    correct = int(round((BASE_ACCURACY[(label, batch_size)] + rng.normal(0, 0.01)) * N_TEST))
                    final = correct / N_TEST
                    n_points = {"completed": len(STEPS), "diverged": 3}.get(outcome, 0)
                    for i, step in enumerate(STEPS[:n_points]):
                        acc = final * (0.3 + 0.7 * i / (len(STEPS) - 1)) if outcome == "completed" else 0.2
                        if outcome == "diverged" and i == n_points - 1:
                            acc = float("nan")
                        curves.append({"run_id": run_id, "step": step, "epoch": step // 10,
                                       "samples_seen": step * batch_size, "train_loss": 1.0, "test_loss": 1.0,
                                       "test_accuracy": acc, "wall_time_s": 0.01 * step})
                    done = outcome == "completed"
                    runs.append({
                        "run_id": run_id, "suite": name, "kind": "training", "model": model, "dataset": "digits",
                        "norm": NORM_OF[label], "norm_label": label, "norm_options": "{}", "model_options": "{}",
                        "dataset_options": "{}", "batch_size": batch_size, "seed": seed, "device": "cpu",
                        "optimizer": "sgd", "lr": 0.05, "steps": STEPS[-1], "epochs": None, "outcome": outcome,
                        "error": error, "final_test_accuracy": final if done else None,
                        "final_test_loss": 0.3 if done else None, "final_train_loss": 0.2 if done else None,
                        "step_time_median_s": 0.001, "samples_per_s": 1000.0 * batch_size,
                        "steps_done": STEPS[-1] if done else 100, "wall_time_s": 1.0,
                        "started_at": "2025-01-01T00:00:00", "finished_at": "2025-01-01T00:00:01",
                    })
    return ResultFrames(
        runs=pd.DataFrame(runs, columns=RUN_COLUMNS), curves=pd.DataFrame(curves, columns=CURVE_COLUMNS),
        environment={"torch": "2.13.0", "threads": 2, "cpu": "test cpu", "extra": {"a": [1, 2]}},
        suite_name=name, suite_description=description,
        suite_yaml=f"name: {name}\nnorms: [bn, ln, gn]\nbatch_sizes: [4, 64]\n",
        command=f"normbench run suites/{name}.yaml",
    )


@pytest.fixture(scope="session")
def frames_factory():
    """``make_frames`` itself, for tests that need a variant (test modules cannot import conftest
    under ``--import-mode=importlib``)."""
    return make_frames


@pytest.fixture
def frames() -> ResultFrames:
    """3 norms x 2 batch sizes x 3 seeds on one model, every run completed."""
    return make_frames()


@pytest.fixture
def frames_with_failures() -> ResultFrames:
    """Two models; one diverged, one undefined, one failed and one skipped run."""
    return make_frames(models=("cnn2d", "mlp"), outcomes={
        ("cnn2d", "batch", 4, 1): ("diverged", "loss became nan at step 150"),
        ("mlp", "batch", 4, 2): ("undefined", "BatchNorm needs more than one value per channel"),
        ("mlp", "layer", 64, 0): ("failed", "RuntimeError: shape mismatch"),
        ("mlp", "group(num_groups=4)", 64, 1): ("skipped", "device cuda unavailable"),
    })
