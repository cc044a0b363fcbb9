"""Accuracy against training speed in one report section: one point per (norm, batch size) - mean
final accuracy over seeds against the median training samples per second - and the Pareto front."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from normbench.analysis import training_speeds


def pareto_front(x: Any, y: Any) -> np.ndarray:
    """Mask of the points (shapes ``(n,)``) that no other point dominates, both axes maximized.

    A point is dominated when another is at least as good on both axes and better on one. NaN
    points are never on the front (and dominate nothing).
    """
    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    finite = np.isfinite(xs) & np.isfinite(ys)
    front = finite.copy()
    for i in np.flatnonzero(finite):
        others = finite & (xs >= xs[i]) & (ys >= ys[i]) & ((xs > xs[i]) | (ys > ys[i]))
        front[i] = not others.any()
    return front


def section_pareto(runs: pd.DataFrame, summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """Points and front for the section; ``points`` is empty when no run recorded a throughput.

    Speed is the median over the cell's runs of ``samples_per_s`` (batch size / median step time),
    completed and diverged runs alike: both trained at that speed until they stopped.
    """
    speed = training_speeds(runs)
    timed = runs.assign(_speed=speed)[speed.notna().to_numpy()]
    medians = timed.groupby(["batch_size", "norm_label"])["_speed"].median()
    points = []
    for cell in summaries:
        key = (cell["batch_size"], cell["norm_label"])
        if key not in medians.index or not math.isfinite(cell["mean"]):
            continue
        points.append({"norm_label": cell["norm_label"], "norm_name": cell["norm_name"],
                       "batch_size": cell["batch_size"], "samples_per_s": float(medians.loc[key]),
                       "accuracy": cell["mean"], "n": cell["n"]})
    mask = pareto_front([p["samples_per_s"] for p in points], [p["accuracy"] for p in points])
    for point, on_front in zip(points, mask):
        point["on_front"] = bool(on_front)
    return {"points": points, "speed_unit": "training samples / s (median over seeds)"}
