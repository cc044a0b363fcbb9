"""One report section per model x dataset (x varying settings): cell summaries, paired
comparisons against BN with Holm-corrected p-values and verdicts, and convergence-curve bands.

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
from normbench.frames import DIVERGED

CellKey = tuple[Any, ...]

NORM_ORDER = ("none", "batch", "layer", "instance", "group", "batch_layer")
NORM_ABBREVIATIONS = {
    "none": "no norm", "batch": "BN", "layer": "LN", "instance": "IN", "group": "GN", "batch_layer": "BLN",
}


def norm_display_name(norm: str, norm_label: str) -> str:
    """Short name readers know (``group(num_groups=8)`` -> ``GN(num_groups=8)``)."""
    abbreviation = NORM_ABBREVIATIONS.get(norm)
    if abbreviation is None:
        return norm_label
    if norm_label == norm:
        return abbreviation
    if norm_label.startswith(norm + "("):
        return abbreviation + norm_label[len(norm):]
    return norm_label


def norm_sort_key(norm: str, norm_label: str) -> tuple[int, str, str]:
    """Canonical order: no norm, BN, LN, IN, GN, BLN, then anything else alphabetically."""
    rank = NORM_ORDER.index(norm) if norm in NORM_ORDER else len(NORM_ORDER)
    return rank, norm, norm_label


def plain_value(value: Any) -> Any:
    """Convert pandas/NumPy scalars and missing markers to plain Python (None for missing)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, (float, np.floating)) and math.isnan(float(value)):
        return None
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {str(k): plain_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_value(v) for v in value]
    return value


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
                                        scale=scale, rng_for=rng_for, warnings_list=warnings_list))
        sections.append(section)
    return sections


def _section_numbers(runs, curves, key, title, *, reference, alpha, scale, rng_for, warnings_list) -> dict[str, Any]:
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
    return {
        "batch_sizes": batch_sizes,
        "norms": [{"norm": n, "label": lbl, "name": norm_display_name(n, lbl)} for n, lbl in labels],
        "reference_label": reference_label,
        "summaries": summaries,
        "comparisons": comparisons,
        "curves": _curves(runs, curves, labels, scale),
    }


def _cell(cell_runs, batch_size, label, rng, warnings_list, title) -> dict[str, Any]:
    contributing = cell_runs[np.isfinite(cell_runs["value"].to_numpy(dtype=float))]
    contributing = contributing.sort_values(["seed", "run_id"], kind="stable")
    duplicated = contributing["seed"].duplicated(keep="first")
    if duplicated.any():
        seeds = sorted({int(s) for s in contributing["seed"][duplicated]})
        warnings_list.append({"kind": "note", "message": (
            f"{title}, {label} at batch size {batch_size}: seeds {seeds} appear more than once; "
            "the first run (by run id) of each is used")})
        contributing = contributing[~duplicated]
    values = contributing["value"].to_numpy(dtype=float)
    norm = str(cell_runs["norm"].iloc[0])
    outcome = cell_runs["outcome"]
    return {
        "batch_size": batch_size,
        "norm": norm,
        "norm_label": label,
        "norm_name": norm_display_name(norm, label),
        "n_runs": int(len(cell_runs)),
        "n_completed": int((outcome == "completed").sum()),
        "n_diverged": int((outcome == DIVERGED).sum()),
        "n_excluded": int(len(cell_runs) - np.isfinite(cell_runs["value"].to_numpy(dtype=float)).sum()),
        **stats.summarize(values, rng).to_dict(),
        "seeds": [int(s) for s in contributing["seed"]],
        "values": [float(v) for v in values],
    }


def _family(cells, batch_size, labels, reference_label, title, alpha) -> dict[str, Any]:
    """Every norm against the reference at one batch size; Holm over this family."""
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
        common = sorted(set(by_seed) & set(ref_by_seed))
        result = stats.paired_comparison([by_seed[s] for s in common], [ref_by_seed[s] for s in common])
        family["rows"].append({
            "norm_label": label, "norm_name": cell["norm_name"],
            "reference_label": reference_label, "reference_name": reference["norm_name"],
            **result.to_dict(),
            "seeds": common,
            "n_unpaired": len(set(by_seed) ^ set(ref_by_seed)),
        })
    adjusted = stats.holm([row["p_value"] for row in family["rows"]])
    for row, p_holm in zip(family["rows"], adjusted):
        row["p_holm"] = float(p_holm)
        row["significant"] = bool(np.isfinite(p_holm) and p_holm < alpha)
        row["verdict"] = verdict(row, batch_size, title)
    return family


def format_p(p: float) -> str:
    """p-value as the verdicts and tables print it: three decimals, '< 0.001' below that."""
    if p is None or not math.isfinite(p):
        return "n/a"
    return "< 0.001" if p < 0.001 else f"= {p:.3f}"


def verdict(row: dict[str, Any], batch_size: int, where: str) -> str:
    """Plain-words verdict of one comparison row (needs ``p_holm`` and ``significant``)."""
    name, ref, n = row["norm_name"], row["reference_name"], row["n"]
    if row["test"] == "none" and not math.isfinite(row["p_value"]):
        return f"{name} vs {ref} at batch size {batch_size} ({where}): not testable, {row['reason']}"
    if not row["significant"]:
        return f"{name} vs {ref} at batch size {batch_size} ({where}): no significant difference (n = {n})"
    verb = "beats" if row["effect_size"] > 0 else "trails"
    effect = "d_z" if row["effect_name"] == "d_z" else "r"
    return (f"{name} {verb} {ref} at batch size {batch_size} ({where}): accuracy {row['mean_difference']:+.1f} "
            f"points, p_holm {format_p(row['p_holm'])}, {effect} = {row['effect_size']:.2f}, n = {n}")


def _curves(runs, curves, labels, scale) -> list[dict[str, Any]]:
    """Mean test-accuracy curve with a 95 % t band per (batch size, norm) over contributing runs."""
    contributing = runs[np.isfinite(runs["value"].to_numpy(dtype=float))]
    if contributing.empty or curves is None or curves.empty:
        return []
    points = curves[curves["run_id"].isin(contributing["run_id"])][["run_id", "step", "test_accuracy"]]
    points = points.assign(step=pd.to_numeric(points["step"], errors="coerce"),
                           test_accuracy=pd.to_numeric(points["test_accuracy"], errors="coerce").astype(float))
    points = points.dropna(subset=["step"]).drop_duplicates(["run_id", "step"], keep="last")
    if points.empty:
        return []
    info = contributing.drop_duplicates("run_id").set_index("run_id")[["batch_size", "norm_label", "norm", "outcome"]]
    out = []
    for batch_size in sorted({int(b) for b in contributing["batch_size"]}):
        ids = info.index[info["batch_size"] == batch_size]
        grid = points[points["run_id"].isin(ids)].pivot(index="run_id", columns="step", values="test_accuracy")
        if grid.empty:
            continue
        grid = grid.sort_index(axis=1)
        values = grid.to_numpy(dtype=float) * scale
        diverged = (info.loc[grid.index, "outcome"] == DIVERGED).to_numpy()
        for row in np.flatnonzero(diverged):
            # After its last finite evaluation a diverged run has no model left: it counts as 0 %.
            finite = np.flatnonzero(np.isfinite(values[row]))
            values[row, (finite[-1] + 1 if finite.size else 0):] = 0.0
        run_labels = info.loc[grid.index, "norm_label"].to_numpy()
        steps = [int(s) if float(s).is_integer() else float(s) for s in grid.columns]
        for norm, label in labels:
            rows = values[run_labels == label]
            if rows.shape[0] == 0:
                continue
            band = stats.mean_confidence_band(rows)
            out.append({
                "batch_size": batch_size, "norm_label": label, "norm_name": norm_display_name(norm, label),
                "step": steps, "mean": band["mean"].tolist(), "low": band["low"].tolist(),
                "high": band["high"].tolist(), "n": [int(c) for c in band["n"]],
            })
    return out
