"""Training loss per epoch in one report section: mean curves with t bands, and the declared
"faster convergence" tests (analysis ``convergence:``), each norm against the reference norm.

The per-epoch training loss is what Ziaee & Cano plot (normbench/epochs.py). Two measures of speed,
lower = faster, per run: the **AUC**, the area under the per-epoch training-loss curve divided by
its span (trapezoidal, ``stats.normalized_auc``: the time-averaged loss), and, with a declared
``loss_threshold``, the **epochs to threshold**, the first epoch whose training loss is at or below
it; a run that never gets there counts as one epoch more than it trained (censored: this understates
how much slower it is). Each is compared with the reference norm at the same batch size, paired by
seed, by the declared test, two-sided, with TOST within ``auc_margin`` / ``epochs_margin``, and
registered in the report's one family (kinds ``convergence``, ``convergence_equivalence``); only
completed runs count (a diverged run has no finite loss curve).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from normbench import stats
from normbench.analysis import aligned_by_seed, comparison_row, format_p
from normbench.analysis_config import AnalysisConfig
from normbench.family import Family, finish_comparison
from normbench.report.names import norm_display_name
from normbench.spec import COMPLETED

METRICS = {
    "auc": ("training-loss AUC", "auc_margin"),
    "epochs": ("epochs to threshold", "epochs_margin"),
}


def run_epoch_losses(runs: pd.DataFrame, epochs: pd.DataFrame | None) -> dict[str, np.ndarray]:
    """Per completed run id: its training loss per epoch (epochs 1..E in order)."""
    if epochs is None or epochs.empty:
        return {}
    completed = set(runs.loc[runs["outcome"] == COMPLETED, "run_id"])
    mine = epochs[epochs["run_id"].isin(completed)].sort_values(["run_id", "epoch"])
    return {str(run_id): pd.to_numeric(group["train_loss"], errors="coerce").to_numpy(dtype=float)
            for run_id, group in mine.groupby("run_id", sort=True)}


def epoch_bands(runs: pd.DataFrame, losses: dict[str, np.ndarray], labels: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Mean training loss per epoch with a 95 % t band, per (batch size, norm)."""
    if not losses:
        return []
    info = runs.drop_duplicates("run_id").set_index("run_id")
    out = []
    for batch_size in sorted({int(info.at[r, "batch_size"]) for r in losses}):
        for norm, label in labels:
            ids = [r for r in losses if int(info.at[r, "batch_size"]) == batch_size and str(info.at[r, "norm_label"]) == label]
            if not ids:
                continue
            width = max(len(losses[r]) for r in ids)
            grid = np.full((len(ids), width), np.nan)
            for i, r in enumerate(ids):
                grid[i, : len(losses[r])] = losses[r]
            band = stats.mean_confidence_band(grid)
            out.append({"batch_size": batch_size, "norm_label": label, "norm_name": norm_display_name(norm, label),
                        "epoch": list(range(1, width + 1)), "mean": band["mean"].tolist(),
                        "low": band["low"].tolist(), "high": band["high"].tolist(), "n": [int(c) for c in band["n"]]})
    return out


def speed_values(curve: np.ndarray, threshold: float | None) -> dict[str, tuple[float, bool]]:
    """A run's ``auc`` and (with a threshold) ``epochs`` to it, each as (value, observed); NaN when the
    curve is not finite. ``epochs`` not reached is (epochs trained + 1, False)."""
    if curve.size == 0 or not np.all(np.isfinite(curve)):
        return {}
    epochs = np.arange(1, curve.size + 1, dtype=float)
    out = {"auc": (stats.normalized_auc(epochs, curve), True)}
    if threshold is not None:
        when, reached = stats.first_reach(epochs, -curve, -threshold)
        out["epochs"] = (when, True) if reached else (float(curve.size + 1), False)
    return out


def convergence_tests(runs: pd.DataFrame, losses: dict[str, np.ndarray], labels: list[tuple[str, str]],
                      batch_sizes: list[int], reference_label: str | None, *, section_id: str,
                      analysis: AnalysisConfig, family: Family) -> dict[str, Any]:
    """Every declared convergence comparison of the section, registered in ``family`` (phase 1)."""
    declared = analysis.convergence
    block: dict[str, Any] = {"declared": declared is not None, "rows": [], "cells": [], "not_reached": [],
                             "loss_threshold": declared.loss_threshold if declared else None}
    if declared is None or not losses:
        return block
    info = runs.drop_duplicates("run_id").set_index("run_id")
    per_cell: dict[tuple[int, str], dict[str, dict[int, tuple[float, bool]]]] = {}
    for run_id, curve in sorted(losses.items()):
        key = (int(info.at[run_id, "batch_size"]), str(info.at[run_id, "norm_label"]))
        seed = int(info.at[run_id, "seed"])
        for metric, value in speed_values(curve, declared.loss_threshold).items():
            per_cell.setdefault(key, {}).setdefault(metric, {}).setdefault(seed, value)
    names = {label: norm_display_name(norm, label) for norm, label in labels}
    order = {label: i for i, (_, label) in enumerate(labels)}
    block["cells"] = [_cell_summary(key, names[key[1]], per_cell[key])
                      for key in sorted(per_cell, key=lambda k: (k[0], order.get(k[1], len(order))))]
    for batch_size in batch_sizes:
        reference = per_cell.get((batch_size, reference_label or ""))
        if reference is None:
            continue
        for _, label in labels:
            mine = per_cell.get((batch_size, label))
            if label == reference_label or mine is None:
                continue
            for metric in (m for m in METRICS if m in reference and m in mine):
                if not _any_reached(mine[metric], reference[metric]):
                    block["not_reached"].append({"batch_size": batch_size, "norm_name": names[label],
                                                 "reference_name": names[reference_label], "metric": metric})
                    continue
                row = _comparison(mine[metric], reference[metric], metric, analysis)
                row.update(batch_size=batch_size, norm_label=label, norm_name=names[label],
                           reference_label=reference_label, reference_name=names[reference_label])
                key = f"{section_id}|batch {batch_size}|{label} vs {reference_label}|{metric}"
                family.add(f"{key}|difference", "convergence", row["p_value"], row, "p_adjusted")
                family.add(f"{key}|equivalence", "convergence_equivalence", row["equivalence_p"], row,
                           "equivalence_p_adjusted")
                block["rows"].append(row)
    return block


def _any_reached(mine: dict[int, tuple[float, bool]], reference: dict[int, tuple[float, bool]]) -> bool:
    """Whether any run of either side observed its value: when every run of both norms is censored
    (neither reached the threshold within the budget), both sit at the same stand-in value and a
    test would call them "equivalent" on no information, so the pair is listed as not testable."""
    return any(observed for _, observed in (*mine.values(), *reference.values()))


def _metric_analysis(analysis: AnalysisConfig, metric: str) -> AnalysisConfig:
    """The declared analysis with the metric's own equivalence margin."""
    return analysis.model_copy(update={"margin": getattr(analysis.convergence, METRICS[metric][1])})


def _comparison(mine: dict[int, tuple[float, bool]], reference: dict[int, tuple[float, bool]], metric: str,
                analysis: AnalysisConfig) -> dict[str, Any]:
    """Paired comparison on the common seeds; signs flipped so a positive difference means faster."""
    values = {s: v for s, (v, _) in mine.items()}
    ref_values = {s: v for s, (v, _) in reference.items()}
    seeds, a, b = aligned_by_seed(values, ref_values)
    row = comparison_row(-np.asarray(a, dtype=float), -np.asarray(b, dtype=float), _metric_analysis(analysis, metric))
    row.update(metric=metric, metric_name=METRICS[metric][0], seeds=seeds,
               censored=sum(not mine[s][1] for s in seeds), reference_censored=sum(not reference[s][1] for s in seeds),
               mean_value=float(np.mean(a)) if a else math.nan, reference_mean=float(np.mean(b)) if b else math.nan)
    return row


def _cell_summary(key: tuple[int, str], name: str, metrics: dict[str, dict[int, tuple[float, bool]]]) -> dict[str, Any]:
    batch_size, label = key
    out: dict[str, Any] = {"batch_size": batch_size, "norm_label": label, "norm_name": name}
    for metric, by_seed in metrics.items():
        values = np.array([v for v, _ in by_seed.values()], dtype=float)
        interval = stats.mean_interval(values)
        out[metric] = {"n": interval.n, "mean": interval.mean, "ci_low": interval.ci_low, "ci_high": interval.ci_high,
                       "reached": sum(observed for _, observed in by_seed.values())}
    return out


def finish_convergence(block: dict[str, Any], family: Family, analysis: AnalysisConfig, where: str) -> None:
    """After the family is adjusted: every convergence row's verdict and sentence."""
    for row in block["rows"]:
        finish_comparison(row, family, _metric_analysis(analysis, row["metric"]))
        row["verdict"] = convergence_verdict(row, where, block["loss_threshold"])


def convergence_verdict(row: dict[str, Any], where: str, threshold: float | None) -> str:
    """One convergence comparison in plain words (its direction: faster = better)."""
    name, ref, n = row["norm_name"], row["reference_name"], row["n"]
    at = f"at batch size {row['batch_size']} ({where})"
    if row["metric"] == "auc":
        what = f"training-loss AUC {row['mean_value']:.3f} vs {row['reference_mean']:.3f} (mean loss over the epochs)"
        unit = "loss"
    else:
        what = (f"epochs to a training loss <= {threshold:g}: {row['mean_value']:.1f} vs {row['reference_mean']:.1f}"
                + (f" ({row['censored']} of {n} not reached)" if row["censored"] else "")
                + (f" ({ref}: {row['reference_censored']} not reached)" if row["reference_censored"] else ""))
        unit = "epochs"
    saving = row["mean_difference"]
    ci = (f" [{100 * row['confidence']:.0f} % CI {row['ci_low']:+.3g}, {row['ci_high']:+.3g}]"
          if math.isfinite(row.get("ci_low", math.nan)) else "")
    numbers = f"{what}; {ref} minus {name}: {saving:+.3g} {unit}{ci}, p_adj {format_p(row['p_adjusted'])}, n = {n}"
    verbs = {"better": f"{name} converges faster than {ref}", "worse": f"{name} converges slower than {ref}",
             "equivalent": f"{name} and {ref} converge equally fast within {row['margin']:g} {unit}"}
    head = verbs.get(row["direction"], f"{name} vs {ref}: inconclusive")
    return f"{head} {at} by {row['metric_name']}: {numbers}"
