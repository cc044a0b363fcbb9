"""One report section per model x dataset (x varying settings): cell summaries with divergence counts,
paired comparisons with the reference norm, the answer at a glance, small-batch failure, the
ranking of all norms, convergence, accuracy against speed, probe curves when recorded.

Built in two phases around the report's one family of hypotheses: :func:`build_sections` computes
every test and registers it in the family; after the family is adjusted, :func:`finish_sections`
draws the verdicts. Input is the training-runs frame after ``context`` added ``value`` (accuracy in
% under the declared ``diverged_as``, NaN for runs that contribute nothing) and ``in_curves``.
"""

from __future__ import annotations

import json
import math
from typing import Any, Callable

import numpy as np
import pandas as pd

from normbench import stats
from normbench.analysis import accuracy_by_seed, count_outcome, diverged_seeds, plain_value, repeated_seeds
from normbench.analysis_config import AnalysisConfig
from normbench.family import Family
from normbench.report.convergence import TARGET_FRACTION, convergence_cells, curve_bands, run_curves
from normbench.report.divergence import cell_divergence, divergence_tests, finish_divergence
from normbench.report.glance import finish_glance, glance_tests
from normbench.report.inference_flags import section_flags
from normbench.report.names import norm_display_name, norm_sort_key
from normbench.report.paired import finish_reference_comparisons, reference_comparisons
from normbench.report.pareto import section_pareto
from normbench.report.probes import section_probes
from normbench.report.published import Reference, section_reference
from normbench.report.ranking import finish_ranking, ranking_tests
from normbench.report.small_batch import batch_failure_tests, finish_batch_failures
from normbench.report.training_loss import convergence_tests, epoch_bands, finish_convergence, run_epoch_losses
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
    analysis: AnalysisConfig,
    family: Family,
    scale: float,
    rng_for: Callable[[CellKey], np.random.Generator],
    warnings_list: list[dict[str, Any]],
    probes: pd.DataFrame | None = None,
    epochs: pd.DataFrame | None = None,
    flags: pd.DataFrame | None = None,
    reference: Reference | None = None,
) -> list[dict[str, Any]]:
    """Split training runs by (model, dataset, *settings), compute every section's numbers and register
    its tests in ``family`` (phase 1; :func:`finish_sections` draws the verdicts). ``epochs`` (per-epoch
    training loss), ``flags`` (BLN inference-flag tables) and ``reference`` (the suite's declared
    published results) add their parts where present."""
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
        section.update(_section_numbers(runs, curves, key, section, analysis=analysis, family=family, scale=scale,
                                        rng_for=rng_for, warnings_list=warnings_list, probes=probes))
        section.update(_epoch_parts(runs, section, epochs=epochs, flags=flags, reference=reference,
                                    analysis=analysis, family=family))
        sections.append(section)
    return sections


def reference_label_of(labels: list[tuple[str, str]], declared: str) -> str | None:
    """The section's norm label that ``analysis.reference_norm`` names: a canonical norm name
    (``batch``), a label (``group(num_groups=8)``) or its short name (``BN``, ``bn``); None when absent.

    A label or short name that matches exactly wins over a match by norm name, so a suite with a plain
    ``batch`` row and a labelled variant (``{name: batch, label: "BN, inference weight 0.5", ...}``)
    compares against the plain row whatever order the labels sort in."""
    wanted = declared.strip().lower()
    for norm, label in labels:
        if wanted in (label.lower(), norm_display_name(norm, label).lower()):
            return label
    for norm, label in labels:
        if wanted == norm.lower():
            return label
    return None


def _epoch_parts(runs, section, *, epochs, flags, reference, analysis, family) -> dict[str, Any]:
    """Training loss per epoch, the declared convergence tests, BLN's inference flags, published vs ours."""
    labels = [(n["norm"], n["label"]) for n in section["norms"]]
    losses = run_epoch_losses(runs, epochs)
    return {
        "training_loss": epoch_bands(runs, losses, labels),
        "loss_convergence": convergence_tests(runs, losses, labels, section["batch_sizes"], section["reference_label"],
                                              section_id=section["id"], analysis=analysis, family=family),
        "inference_flags": section_flags(runs, flags, labels),
        "published": section_reference(reference, runs, losses, flags, labels, 1 - analysis.alpha, reference_label_of),
    }


def _section_numbers(runs, curves, key, section, *, analysis, family, scale, rng_for, warnings_list,
                     probes) -> dict[str, Any]:
    title, section_id = section["title"], section["id"]
    labels = sorted({(str(n), str(lbl)) for n, lbl in zip(runs["norm"], runs["norm_label"])},
                    key=lambda p: norm_sort_key(*p))
    batch_sizes = sorted({int(b) for b in runs["batch_size"]})
    cells: dict[tuple[int, str], dict[str, Any]] = {}
    for (batch_size, label), cell_runs in runs.groupby(["batch_size", "norm_label"], sort=False, dropna=False):
        batch_size, label = int(batch_size), str(label)
        rng = rng_for((*key, batch_size, label))
        cells[(batch_size, label)] = _cell(cell_runs, batch_size, label, rng, warnings_list, title, analysis)
    summaries = [cells[(b, lbl)] for _, lbl in labels for b in batch_sizes if (b, lbl) in cells]
    reference_label = reference_label_of(labels, analysis.reference_norm)
    pair_rng = lambda what: rng_for((*key, what))  # noqa: E731 - one generator per tested pair
    tests = dict(section_id=section_id, analysis=analysis, family=family)
    per_run = run_curves(runs, curves, scale)
    target, target_source = _target(runs, summaries, scale)
    return {
        "batch_sizes": batch_sizes,
        "norms": [{"norm": n, "label": lbl, "name": norm_display_name(n, lbl)} for n, lbl in labels],
        "reference_label": reference_label,
        "reference_name": next((c["norm_name"] for c in summaries if c["norm_label"] == reference_label), None),
        "summaries": summaries,
        "divergence": divergence_tests(cells, labels, batch_sizes, reference_label, section_id=section_id,
                                       family=family),
        "comparisons": reference_comparisons(cells, labels, batch_sizes, reference_label, rng_for=pair_rng, **tests),
        "glance": glance_tests(cells, labels, batch_sizes, rng_for=pair_rng, **tests),
        "batch_failure": batch_failure_tests(cells, labels, batch_sizes, **tests),
        "ranking": ranking_tests(cells, labels, batch_sizes, **tests),
        "curves": curve_bands(runs, per_run, labels),
        "convergence": {
            "target": target, "target_source": target_source, "target_fraction": TARGET_FRACTION,
            "cells": convergence_cells(runs, per_run, labels, target=target),
        },
        "pareto": section_pareto(runs, summaries),
        "probes": section_probes(runs, probes, labels),
        "_cells": cells, "_key": key,  # phase 2 only; popped by finish_sections
    }


def finish_sections(sections: list[dict[str, Any]], *, family: Family, analysis: AnalysisConfig,
                    rng_for: Callable[[CellKey], np.random.Generator]) -> None:
    """Phase 2, after ``family.adjust()``: every verdict of every section, in place."""
    for section in sections:
        cells = section.pop("_cells")
        labels = [(n["norm"], n["label"]) for n in section["norms"]]
        where, key = section["title"], section.pop("_key")
        finish_divergence(section["divergence"], analysis, where)
        finish_reference_comparisons(section["comparisons"], family, analysis, where)
        finish_glance(section["glance"], cells, labels, family=family, analysis=analysis,
                      reference_label=section["reference_label"])
        finish_batch_failures(section["batch_failure"], cells, family=family, analysis=analysis, where=where,
                              rng_for=lambda label, k=key: rng_for((*k, "critical batch size", label)))
        finish_ranking(section["ranking"], analysis, where)
        finish_convergence(section["loss_convergence"], family, analysis, where)


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


def _cell(cell_runs, batch_size, label, rng, warnings_list, title, analysis) -> dict[str, Any]:
    by_seed = accuracy_by_seed(cell_runs, analysis.diverged_as)
    repeated = repeated_seeds(cell_runs, analysis.diverged_as)
    if repeated:
        warnings_list.append({"kind": "note", "message": (
            f"{title}, {label} at batch size {batch_size}: seeds {repeated} appear more than once; "
            "the first run (by run id) of each is used")})
    seeds = sorted(by_seed)
    values = np.array([by_seed[s] for s in seeds], dtype=float)
    norm = str(cell_runs["norm"].iloc[0])
    n_completed, n_diverged = count_outcome(cell_runs, COMPLETED), count_outcome(cell_runs, DIVERGED)
    return {
        "batch_size": batch_size,
        "norm": norm,
        "norm_label": label,
        "norm_name": norm_display_name(norm, label),
        "n_runs": int(len(cell_runs)),
        "n_completed": n_completed,
        "n_diverged": n_diverged,
        "n_excluded": int(len(cell_runs) - np.isfinite(cell_runs["value"].to_numpy(dtype=float)).sum()),
        **stats.summarize(values, rng, interval=analysis.interval).to_dict(),
        "seeds": seeds,
        "values": [float(v) for v in values],
        "diverged_seeds": diverged_seeds(cell_runs),
        "divergence": cell_divergence(n_diverged, n_completed + n_diverged),
    }
