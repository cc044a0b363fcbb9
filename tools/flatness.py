"""Is a stored suite run trained to convergence? Checks that learning curves are flat at the end.

Usage: python tools/flatness.py OUT_DIR [--window 0.2] [--tolerance 1.0] [--all]

For every cell (model x its label/options x dataset x its options x batch size x norm) of the store
in OUT_DIR, the mean test-accuracy curve over the cell's completed runs (on the evaluation steps
they share) is taken, and a least-squares line is fitted to its points in the last `window`
share of the steps (scipy.stats.linregress). Its **rise** - slope times the window's length, in
accuracy points - is what more training at the same rate would still add (or take away, when
negative). A cell is flat when |rise| <= `tolerance` (default 1 point, the analysis' default
margin) and the window holds at least 3 evaluation points.

A group (the same cell without the norm) counts as converged when the norm with the highest mean
final accuracy is flat: that is the issue-14 rule for choosing a budget ("the best norm's metric
flat over the last 20 % of steps"). A slower norm that is still rising is printed as such: its
deficit at that budget is partly a speed difference, which the report's convergence section
(area under the curve, time to target) measures.

Exit status: 0 when every group converged, 1 when one did not, 2 when the directory holds no
stored runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

GROUP_COLUMNS = ("model", "model_label", "model_options", "dataset", "dataset_options", "batch_size", "steps",
                 "epochs", "lr")
MIN_POINTS = 3


@dataclass(frozen=True)
class CellFlatness:
    """The end of one cell's mean curve: where the window starts, its points, rise and verdict."""

    group: tuple
    norm_label: str
    runs: int
    final: float  # mean final accuracy (points)
    window_start: float  # first step inside the window
    points: int
    rise: float  # fitted change over the window (points); NaN with fewer than 2 points
    flat: bool


def mean_curve(curves: pd.DataFrame, run_ids: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Steps every run of ``run_ids`` evaluated, and the mean test accuracy there (in points)."""
    points = curves[curves["run_id"].isin(run_ids)]
    grid = points.pivot_table(index="step", columns="run_id", values="test_accuracy", aggfunc="last")
    grid = grid.dropna()
    return grid.index.to_numpy(dtype=float), 100.0 * grid.mean(axis=1).to_numpy(dtype=float)


def window_rise(steps: np.ndarray, values: np.ndarray, window: float) -> tuple[float, int, float]:
    """(first step in the window, points in it, fitted rise over it) for the last ``window`` share of steps."""
    if steps.size == 0:
        return float("nan"), 0, float("nan")
    start = steps[-1] - window * (steps[-1] - steps[0])
    inside = steps >= start
    n = int(inside.sum())
    if n < 2:
        return float(steps[inside][0]), n, float("nan")
    fit = stats.linregress(steps[inside], values[inside])
    return float(steps[inside][0]), n, float(fit.slope * (steps[inside][-1] - steps[inside][0]))


def cell_flatness(runs: pd.DataFrame, curves: pd.DataFrame, window: float, tolerance: float) -> list[CellFlatness]:
    """One :class:`CellFlatness` per cell with completed runs, in group then norm order."""
    done = runs[runs["outcome"] == "completed"].copy()
    for column in GROUP_COLUMNS:
        done[column] = done[column].map(lambda v: json.dumps(v, sort_keys=True, default=str))
    out = []
    for key, cell in done.groupby([*GROUP_COLUMNS, "norm_label"], sort=True, dropna=False):
        steps, values = mean_curve(curves, list(cell["run_id"]))
        start, n, rise = window_rise(steps, values, window)
        final = float(values[-1]) if values.size else float("nan")
        out.append(CellFlatness(group=tuple(key[:-1]), norm_label=str(key[-1]), runs=len(cell), final=final,
                                window_start=start, points=n, rise=rise,
                                flat=n >= MIN_POINTS and abs(rise) <= tolerance))
    return out


def best_of_groups(cells: list[CellFlatness]) -> dict[tuple, CellFlatness]:
    """Per group, the cell with the highest mean final accuracy."""
    best: dict[tuple, CellFlatness] = {}
    for cell in cells:
        if cell.group not in best or cell.final > best[cell.group].final:
            best[cell.group] = cell
    return best


def group_title(group: tuple) -> str:
    """``model [label] on dataset {options}, batch B, budget, lr`` from a group key."""
    model, label, _, dataset, options, batch, steps, epochs, lr = (json.loads(v) for v in group)
    if isinstance(options, str):  # the store keeps option mappings as JSON text
        options = json.loads(options or "{}")
    name = f"{model} [{label}]" if label and label != model else model
    data = f"{dataset} {json.dumps(options, sort_keys=True)}" if options else dataset
    budget = f"{steps} steps" if steps is not None else f"{epochs} epochs"
    return f"{name} on {data}, batch {batch}, {budget}, lr {lr:g}"


def report_lines(cells: list[CellFlatness], tolerance: float, show_all: bool) -> tuple[list[str], bool]:
    """Printable lines and whether every group converged."""
    best = best_of_groups(cells)
    lines, converged = [], True
    for group, top in best.items():
        converged &= top.flat
        verdict = "converged" if top.flat else "NOT converged"
        lines.append(f"{group_title(group)}: {verdict} (best: {top.norm_label})")
        for cell in cells:
            if cell.group != group or not (show_all or cell is top):
                continue
            state = "flat" if cell.flat else ("too few points" if cell.points < MIN_POINTS else "still moving")
            lines.append(f"  {cell.norm_label:<28} n={cell.runs} final {cell.final:6.1f}  rise over steps "
                         f">= {cell.window_start:g} ({cell.points} points) {cell.rise:+6.2f}  {state}")
    lines.append(f"flat: |fitted rise over the window| <= {tolerance:g} points with >= {MIN_POINTS} points")
    return lines, converged


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: print the table, return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir")
    parser.add_argument("--window", type=float, default=0.2, help="share of the steps at the end (default 0.2)")
    parser.add_argument("--tolerance", type=float, default=1.0, help="largest |rise| in points (default 1)")
    parser.add_argument("--all", action="store_true", help="every norm, not only each group's best")
    args = parser.parse_args(argv)
    from normbench.store import StoreError, load_frames

    try:
        frames = load_frames(args.out_dir, all_runs=True)
    except StoreError as error:
        print(error, file=sys.stderr)
        return 2
    cells = cell_flatness(frames.runs, frames.curves, args.window, args.tolerance)
    if not cells:
        print(f"{args.out_dir}: no completed runs stored", file=sys.stderr)
        return 2
    lines, converged = report_lines(cells, args.tolerance, args.all)
    print("\n".join(lines))
    return 0 if converged else 1


if __name__ == "__main__":
    sys.exit(main())
