"""Published vs ours in one report section: the suite's declared reference (`reference:`,
normbench/reference/declared.py) matched to the section's cells, its per-epoch curves for the
overlay figure, and the table "published / ours (interval) / inside?" of final numbers.

A published run matches our cell when its task maps to the section's model (``task`` for every
model, or ``tasks``), its norm to one of our norm labels (``norms``) and its batch size to ours
(equal, or ``batch_sizes``). Quantities compared: the last epoch's training loss and the test
accuracy, each computed the way the published number was: for BLN runs whose published test row
was picked on the test set among the 16 inference-flag combinations, ours is picked the same way
(our honest, validation-picked number is in the inference-flag table). "inside?" asks whether the
published value lies in the t-interval of our mean over seeds; one published run is a single draw,
so the range of our seeds is shown too.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from normbench import stats
from normbench.analysis import ACCURACY_SCALE, finite_number
from normbench.reference.declared import ReferenceConfig
from normbench.report.inference_flags import pick
from normbench.report.names import norm_display_name

Reference = tuple[ReferenceConfig, dict[str, Any]]


def section_reference(reference: Reference | None, runs: pd.DataFrame, losses: dict[str, np.ndarray],
                      flags: pd.DataFrame | None, labels: list[tuple[str, str]], confidence: float,
                      label_of: Any) -> dict[str, Any] | None:
    """The section's matches with the declared reference: ``curves`` (published per epoch) and ``rows``.

    ``label_of(labels, name)`` resolves a declared norm name to one of our labels (the report's
    ``reference_label_of``). None when the suite declares no reference or nothing matches.
    """
    if reference is None:
        return None
    config, data = reference
    curves, rows = [], []
    for run in data["runs"]:
        ours = _our_runs(config, run, runs, labels, label_of)
        if ours is None or ours.empty:
            continue
        label = str(ours["norm_label"].iloc[0])
        batch_size = int(ours["batch_size"].iloc[0])
        published_loss = (run.get("per_epoch") or {}).get("train_loss")
        if published_loss:
            curves.append({"batch_size": batch_size, "norm_label": label, "epoch": list(range(1, len(published_loss) + 1)),
                           "train_loss": [finite_number(v) for v in published_loss]})
        norm = next((n for n, lbl in labels if lbl == label), label)
        where = dict(published_run=f"{run['task']}/{run['norm']}/batch {run['batch_size']}", norm_label=label,
                     batch_size=batch_size, norm_name=norm_display_name(norm, label))
        if published_loss:
            values = [losses[r][-1] for r in ours["run_id"] if r in losses and losses[r].size]
            rows.append(_row(where, "final training loss", finite_number(published_loss[-1]), values, confidence))
        test = run.get("test") or {}
        if "accuracy" in test:
            values, rule = _our_test_accuracies(ours, flags, test_picked="flags" in test)
            rows.append(_row(where, f"test accuracy (%){rule}", finite_number(test["accuracy"]) * ACCURACY_SCALE,
                             values, confidence))
    if not curves and not rows:
        return None
    return {"source": data.get("name", config.source), "citation": data.get("citation", {}), "curves": curves,
            "rows": rows}


def _our_runs(config: ReferenceConfig, run: dict[str, Any], runs: pd.DataFrame, labels: list[tuple[str, str]],
              label_of: Any) -> pd.DataFrame | None:
    """Our completed runs of the cell a published run maps to (None when it maps to none here)."""
    tasks = config.published_tasks()
    if run["task"] not in tasks or run["norm"] not in config.norms:
        return None
    model = tasks[run["task"]]
    label = label_of(labels, config.norms[run["norm"]])
    if label is None:
        return None
    mine = runs[(runs["norm_label"] == label) & (runs["batch_size"] == config.our_batch_size(int(run["batch_size"])))
                & (runs["outcome"] == "completed")]
    if model is not None:
        model_labels = [str(a or b) for a, b in zip(mine["model_label"], mine["model"])]
        mine = mine[[m == model for m in model_labels]]
    return mine.drop_duplicates("seed")


def _our_test_accuracies(ours: pd.DataFrame, flags: pd.DataFrame | None, *, test_picked: bool) -> tuple[list[float], str]:
    """Our test accuracies (%) by the published rule: the run's own, or the test-picked flag row."""
    values = []
    for run_id, accuracy in zip(ours["run_id"], ours["final_test_accuracy"]):
        rows = None if flags is None or flags.empty else flags[flags["run_id"] == run_id]
        if test_picked and rows is not None and not rows.empty:
            chosen = pick(rows, "test_loss")
            accuracy = chosen["test_accuracy"] if chosen is not None else math.nan
        values.append(finite_number(accuracy) * ACCURACY_SCALE)
    return values, (", inference flags picked on the test set as published" if test_picked else "")


def _row(where: dict[str, Any], quantity: str, published: float, values: list[float], confidence: float) -> dict[str, Any]:
    finite = np.array([v for v in values if math.isfinite(v)], dtype=float)
    interval = stats.mean_interval(finite, confidence=confidence)
    inside = (bool(interval.ci_low <= published <= interval.ci_high)
              if math.isfinite(interval.ci_low) and math.isfinite(published) else None)
    return {**where, "quantity": quantity, "published": published, "n": interval.n, "mean": interval.mean,
            "ci_low": interval.ci_low, "ci_high": interval.ci_high, "confidence": confidence, "inside": inside,
            "min": float(finite.min()) if finite.size else math.nan,
            "max": float(finite.max()) if finite.size else math.nan}
