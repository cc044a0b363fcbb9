"""Convergence in one report section: mean accuracy curves with t bands, the area under each run's
curve, and time to a target accuracy with censoring (Kaplan-Meier medians)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from normbench import stats
from normbench.report.names import norm_display_name
from normbench.spec import DIVERGED

# The target of "time to target" is this fraction of the best cell's mean final accuracy in the
# section: reachable by the best norm by construction, demanding enough to separate the others.
TARGET_FRACTION = 0.9


def run_curves(runs: pd.DataFrame, curves: pd.DataFrame, scale: float) -> dict[str, dict[str, np.ndarray]]:
    """Per contributing run id: ``step``, ``samples``, ``wall`` and ``accuracy`` (x ``scale``) arrays.

    ``accuracy`` of a diverged run is NaN from its first non-finite evaluation on (the run has no
    model left); callers decide whether that counts as 0 (curves, AUC) or "never reached" (target).
    """
    # Curves show diverged runs falling to 0 whatever diverged_as says: the failure is what they show.
    contributing = runs[runs["in_curves"].to_numpy(dtype=bool)]
    if contributing.empty or curves is None or curves.empty:
        return {}
    points = curves[curves["run_id"].isin(contributing["run_id"])]
    points = pd.DataFrame({
        "run_id": points["run_id"],
        "step": pd.to_numeric(points["step"], errors="coerce"),
        "samples": pd.to_numeric(points["samples_seen"], errors="coerce"),
        "wall": pd.to_numeric(points["wall_time_s"], errors="coerce"),
        "accuracy": pd.to_numeric(points["test_accuracy"], errors="coerce").astype(float) * scale,
    }).dropna(subset=["step"]).drop_duplicates(["run_id", "step"], keep="last").sort_values(["run_id", "step"])
    diverged = set(contributing.loc[contributing["outcome"] == DIVERGED, "run_id"])
    out = {}
    for run_id, group in points.groupby("run_id", sort=True):
        accuracy = group["accuracy"].to_numpy(dtype=float, copy=True)
        if run_id in diverged:
            bad = np.flatnonzero(~np.isfinite(accuracy))
            if bad.size:
                accuracy[bad[0]:] = np.nan
        out[str(run_id)] = {"step": group["step"].to_numpy(dtype=float), "samples": group["samples"].to_numpy(dtype=float),
                            "wall": group["wall"].to_numpy(dtype=float), "accuracy": accuracy}
    return out


def curve_bands(runs: pd.DataFrame, per_run: dict[str, dict[str, np.ndarray]], labels: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Mean test-accuracy curve with a 95 % t band per (batch size, norm); diverged runs count 0 after diverging."""
    if not per_run:
        return []
    info = runs.drop_duplicates("run_id").set_index("run_id")
    out = []
    for batch_size in sorted({int(b) for b in info.loc[list(per_run), "batch_size"]}):
        ids = [r for r in per_run if int(info.at[r, "batch_size"]) == batch_size]
        steps = sorted({float(s) for r in ids for s in per_run[r]["step"]})
        column = {s: j for j, s in enumerate(steps)}
        grid = np.full((len(ids), len(steps)), np.nan)
        for i, r in enumerate(ids):
            grid[i, [column[float(s)] for s in per_run[r]["step"]]] = per_run[r]["accuracy"]
            if info.at[r, "outcome"] == DIVERGED:
                finite = np.flatnonzero(np.isfinite(grid[i]))
                grid[i, (finite[-1] + 1 if finite.size else 0):] = 0.0
        run_labels = np.array([str(info.at[r, "norm_label"]) for r in ids])
        step_values = [int(s) if float(s).is_integer() else float(s) for s in steps]
        for norm, label in labels:
            rows = grid[run_labels == label]
            if rows.shape[0] == 0:
                continue
            band = stats.mean_confidence_band(rows)
            out.append({
                "batch_size": batch_size, "norm_label": label, "norm_name": norm_display_name(norm, label),
                "step": step_values, "mean": band["mean"].tolist(), "low": band["low"].tolist(),
                "high": band["high"].tolist(), "n": [int(c) for c in band["n"]],
            })
    return out


def convergence_cells(
    runs: pd.DataFrame,
    per_run: dict[str, dict[str, np.ndarray]],
    labels: list[tuple[str, str]],
    *,
    target: float,
) -> list[dict[str, Any]]:
    """Per (batch size, norm): AUC summary over seeds and Kaplan-Meier medians of the time to ``target``.

    AUC is the time-averaged test accuracy over steps (``stats.normalized_auc``; a diverged run
    counts 0 after diverging), summarized by its mean with a 95 % t-interval - a secondary quantity,
    so it does without the ~3 ms bootstrap per cell that final accuracy gets. A run that never reaches the target is censored at its last
    evaluation - a diverged one at the cell's last evaluation, since it will never get there.
    """
    if not per_run or not math.isfinite(target):
        return []
    info = runs.drop_duplicates("run_id").set_index("run_id")
    ids = [r for r in per_run]
    frame = info.loc[ids, ["batch_size", "norm_label", "norm", "seed", "outcome"]].reset_index(drop=True).assign(run_id=ids)
    out = []
    order = {label: i for i, (_, label) in enumerate(labels)}
    for (batch_size, label), cell in sorted(frame.groupby(["batch_size", "norm_label"]),
                                            key=lambda kv: (order.get(kv[0][1], 99), kv[0][0])):
        cell = cell.sort_values(["seed", "run_id"]).drop_duplicates("seed")
        aucs, reach = [], {"step": [], "samples": [], "wall": []}
        observed = []
        ends = {axis: max(float(per_run[r][axis][-1]) for r in cell["run_id"]) for axis in reach}
        for run_id, outcome in zip(cell["run_id"], cell["outcome"]):
            curve = per_run[run_id]
            aucs.append(stats.normalized_auc(curve["step"], np.nan_to_num(curve["accuracy"], nan=0.0)))
            hit = stats.first_reach(curve["step"], curve["accuracy"], target)[1]
            observed.append(hit)
            for axis in reach:
                when, _ = stats.first_reach(curve[axis], curve["accuracy"], target)
                reach[axis].append(when if hit or outcome != DIVERGED else ends[axis])
        band = stats.mean_confidence_band(np.asarray(aucs, dtype=float)[:, None])
        summary = {"n": len(aucs), "mean": float(band["mean"][0]), "std": float(np.std(aucs, ddof=1)) if len(aucs) > 1
                   else math.nan, "ci_low": float(band["low"][0]), "ci_high": float(band["high"][0]), "ci_method": "t"}
        medians = {axis: stats.kaplan_meier(reach[axis], observed).median for axis in reach}
        norm = str(cell["norm"].iloc[0])
        out.append({
            "batch_size": int(batch_size), "norm_label": str(label), "norm_name": norm_display_name(norm, str(label)),
            "auc": summary, "n": len(observed), "n_reached": int(sum(observed)),
            "median_steps": medians["step"], "median_samples": medians["samples"], "median_wall_s": medians["wall"],
        })
    return out
