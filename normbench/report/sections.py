"""One report section per model x dataset (x varying settings): cell summaries, paired
comparisons against BN with Holm-corrected p-values, power and verdicts; small-batch failure;
rankings of all norms; convergence; accuracy against speed; probe curves when recorded.

Input is the training-runs frame after ``context._attach_values`` added ``value`` (accuracy in %,
0 for diverged runs, NaN for runs that contribute nothing); output is plain dicts.
"""

from __future__ import annotations

import json
import math
from typing import Any, Callable

import numpy as np
import pandas as pd

from normbench import stats
from normbench.analysis import (
    POWER,
    RELEVANT_EFFECT,
    accuracy_by_seed,
    aligned_by_seed,
    correct_family,
    count_outcome,
    detectable_difference,
    paired_test,
    plain_value,
    repeated_seeds,
    underpowered,
)
from normbench.report.convergence import (
    TARGET_FRACTION,
    convergence_cells,
    curve_bands,
    run_curves,
)
from normbench.report.names import norm_display_name, norm_sort_key
from normbench.report.pareto import section_pareto
from normbench.report.probes import section_probes
from normbench.report.ranking import section_ranking
from normbench.report.small_batch import batch_failures
from normbench.report.verdicts import verdict
from normbench.spec import COMPLETED, DIVERGED

CellKey = tuple[Any, ...]


def section_title(model: str, dataset: str, settings: dict[str, Any]) -> str:
    """Human title, e.g. ``cnn2d on digits, lr = 0.1``."""
    parts = [f"{model} on {dataset}"] + [f"{k} = {_setting_text(v)}" for k, v in settings.items()]
    return ", ".join(parts)


def _setting_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)


def _order_key(value: Any) -> tuple[int, Any]:
    # Numbers numerically, strings alphabetically, missing last; mixed types never compared.
    if isinstance(value, bool) or value is None:
        return (2, str(value))
    if isinstance(value, (int, float)):
        return (0, value)
    return (1, str(value))


def build_sections(
    training: pd.DataFrame,
    curves: pd.DataFrame,
    settings: list[str],
    *,
    reference: str,
    alpha: float,
    scale: float,
    rng_for: Callable[[CellKey], np.random.Generator],
    warnings_list: list[dict[str, Any]],
    probes: pd.DataFrame | None = None,
) -> list[dict[str, Any]]:
    """Split training runs by (model, dataset, *settings) and compute every section's numbers."""
    if training.empty:
        return []
    key_columns = ["model", "dataset", *settings]
    keys = [tuple(plain_value(v) for v in row) for row in training[key_columns].itertuples(index=False)]
    training = training.assign(_section=[json.dumps(k, default=str) for k in keys])
    unique_keys = sorted(set(keys), key=lambda k: tuple(_order_key(v) for v in k))
    sections = []
    for number, key in enumerate(unique_keys, start=1):
        runs = training[training["_section"] == json.dumps(key, default=str)]
        setting_values = dict(zip(settings, key[2:]))
        section = {
            "id": f"section-{number}",
            "title": section_title(str(key[0]), str(key[1]), setting_values),
            "model": key[0],
            "dataset": key[1],
            "settings": setting_values,
        }
        section.update(_section_numbers(runs, curves, key, section["title"], reference=reference, alpha=alpha,
                                        scale=scale, rng_for=rng_for, warnings_list=warnings_list,
                                        probes=probes))
        sections.append(section)
    return sections


def _section_numbers(runs, curves, key, title, *, reference, alpha, scale, rng_for, warnings_list,
                     probes) -> dict[str, Any]:
    labels = sorted({(str(n), str(lbl)) for n, lbl in zip(runs["norm"], runs["norm_label"])},
                    key=lambda p: norm_sort_key(*p))
    batch_sizes = sorted({int(b) for b in runs["batch_size"]})
    cells: dict[tuple[int, str], dict[str, Any]] = {}
    for (batch_size, label), cell_runs in runs.groupby(["batch_size", "norm_label"], sort=False, dropna=False):
        batch_size, label = int(batch_size), str(label)
        rng = rng_for((*key, batch_size, label))
        cells[(batch_size, label)] = _cell(cell_runs, batch_size, label, rng, warnings_list, title)
    summaries = [cells[(b, lbl)] for _, lbl in labels for b in batch_sizes if (b, lbl) in cells]
    reference_labels = [lbl for norm, lbl in labels if norm == reference]
    reference_label = reference if reference in reference_labels else (reference_labels[0] if reference_labels else None)
    comparisons = [_family(cells, b, labels, reference_label, title, alpha) for b in batch_sizes]
    _power_note(comparisons, title, warnings_list)

    per_run = run_curves(runs, curves, scale)
    target, target_source = _target(runs, summaries, scale)
    return {
        "batch_sizes": batch_sizes,
        "norms": [{"norm": n, "label": lbl, "name": norm_display_name(n, lbl)} for n, lbl in labels],
        "reference_label": reference_label,
        "summaries": summaries,
        "comparisons": comparisons,
        "batch_failure": batch_failures(cells, labels, batch_sizes, alpha=alpha, where=title,
                                        rng_for=lambda label: rng_for((*key, "critical batch size", label))),
        "ranking": section_ranking(cells, labels, batch_sizes, alpha=alpha, where=title),
        "curves": curve_bands(runs, per_run, labels),
        "convergence": {
            "target": target, "target_source": target_source, "target_fraction": TARGET_FRACTION,
            "cells": convergence_cells(runs, per_run, labels, target=target),
        },
        "pareto": section_pareto(runs, summaries),
        "probes": section_probes(runs, probes, labels),
    }


def _target(runs: pd.DataFrame, summaries: list[dict[str, Any]], scale: float) -> tuple[float, str]:
    """The suite's ``target_accuracy`` when it declares one, else 90 % of the best cell's mean."""
    declared = pd.to_numeric(runs["target_accuracy"], errors="coerce").dropna().unique() \
        if "target_accuracy" in runs.columns else []
    if len(declared) == 1:
        return float(declared[0]) * scale, "the suite's target_accuracy"
    best = max((c["mean"] for c in summaries if c["n"] > 0 and math.isfinite(c["mean"])), default=math.nan)
    if not math.isfinite(best):
        return math.nan, ""
    return TARGET_FRACTION * best, f"{TARGET_FRACTION:.0%} of the best mean final accuracy in this section"


def _cell(cell_runs, batch_size, label, rng, warnings_list, title) -> dict[str, Any]:
    by_seed = accuracy_by_seed(cell_runs)
    repeated = repeated_seeds(cell_runs)
    if repeated:
        warnings_list.append({"kind": "note", "message": (
            f"{title}, {label} at batch size {batch_size}: seeds {repeated} appear more than once; "
            "the first run (by run id) of each is used")})
    seeds = sorted(by_seed)
    values = np.array([by_seed[s] for s in seeds], dtype=float)
    norm = str(cell_runs["norm"].iloc[0])
    return {
        "batch_size": batch_size,
        "norm": norm,
        "norm_label": label,
        "norm_name": norm_display_name(norm, label),
        "n_runs": int(len(cell_runs)),
        "n_completed": count_outcome(cell_runs, COMPLETED),
        "n_diverged": count_outcome(cell_runs, DIVERGED),
        "n_excluded": int(len(cell_runs) - np.isfinite(cell_runs["value"].to_numpy(dtype=float)).sum()),
        **stats.summarize(values, rng).to_dict(),
        "seeds": seeds,
        "values": [float(v) for v in values],
    }


def _family(cells, batch_size, labels, reference_label, title, alpha) -> dict[str, Any]:
    """Every norm against the reference at one batch size, corrected as one family; power per row."""
    family: dict[str, Any] = {"batch_size": batch_size, "reference_label": reference_label, "rows": [], "note": ""}
    reference = cells.get((batch_size, reference_label)) if reference_label else None
    if reference is None:
        family["note"] = f"no BN runs at batch size {batch_size}: nothing to compare against"
        return family
    family["reference_name"] = reference["norm_name"]
    ref_by_seed = dict(zip(reference["seeds"], reference["values"]))
    for _, label in labels:
        cell = cells.get((batch_size, label))
        if label == reference_label or cell is None:
            continue
        by_seed = dict(zip(cell["seeds"], cell["values"]))
        common, mine, theirs = aligned_by_seed(by_seed, ref_by_seed)
        family["rows"].append({
            "norm_label": label, "norm_name": cell["norm_name"],
            "reference_label": reference_label, "reference_name": reference["norm_name"],
            **paired_test(mine, theirs).to_dict(),
            "seeds": common,
            "n_unpaired": len(set(by_seed) ^ set(ref_by_seed)),
        })
    correct_family(family["rows"], alpha)
    for row in family["rows"]:
        power = detectable_difference(row["n"], row["sd_difference"], row["test"], alpha=alpha,
                                      relevant=RELEVANT_EFFECT)
        row["mde"] = power["mde"]
        row["seeds_for_relevant"] = power["seeds_for_relevant"]
        row["power_note"] = power["note"]
        row["underpowered"] = underpowered(row, RELEVANT_EFFECT)
        row["verdict"] = verdict(row, batch_size, title)
    return family


def _power_note(comparisons: list[dict[str, Any]], title: str, warnings_list: list[dict[str, Any]]) -> None:
    """One warning per section summarizing the "no difference" verdicts its seeds cannot support."""
    rows = [r for family in comparisons for r in family["rows"] if r["test"] != "none" and not r["significant"]]
    weak = [r for r in rows if r["underpowered"]]
    if not weak:
        return
    finite = [r["mde"] for r in weak if math.isfinite(r["mde"])]
    low, high = (f"{min(finite):.1f}", f"{max(finite):.1f}") if finite else ("", "")
    spans = (f"{low} points" if low == high else f"{low}-{high} points") if finite else "no effect at all"
    if len(finite) < len(weak) and finite:
        spans += " (some comparisons could not reach significance at all)"
    needed = [r["seeds_for_relevant"] for r in weak if r["seeds_for_relevant"]]
    seeds = sorted({r["n"] for r in weak})
    seeds_text = str(min(needed)) if needed and min(needed) == max(needed) else f"{min(needed or [0])}-{max(needed or [0])}"
    tail = f"; detecting {RELEVANT_EFFECT:g} point at the observed spread needs about {seeds_text} seeds" if needed else ""
    warnings_list.append({"kind": "note", "message": (
        f"{title}: {len(weak)} of {len(rows)} 'no significant difference' verdicts are underpowered - with "
        f"{', '.join(map(str, seeds))} seed(s) only differences of {spans} were detectable at "
        f"{100 * POWER:.0f} % power{tail}")})
