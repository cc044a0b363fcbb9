"""Build the report context: ResultFrames + normbench.stats -> one plain dict that templates lay out.

All numbers a report shows are computed here (figures and templates only draw and format them),
so tests assert on this dict and the JSON format is this dict. Accuracies in the context are
percentages (frames store fractions); NaN marks "not available" and becomes null in JSON.

The analysis is the one the suite declared (its ``analysis:`` block in the stored suite YAML,
``normbench.analysis_config``; defaults when absent), and every test whose outcome can become a
sentence belongs to the report's one family (``normbench.family``): sections are built (tests
registered), the family is adjusted, then the verdicts are drawn.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from normbench.analysis import (
    ACCURACY_SCALE,
    accuracy_values,
    cell_rng,
    is_training,
    plain_text,
    plain_value,
    value_note,
)
from normbench.analysis_config import BCA_CAVEAT, AnalysisConfig, declared_analysis
from normbench.family import Family
from normbench.frames import RUN_COLUMNS, ResultFrames
from normbench.reference.declared import declared_reference
from normbench.report.methods import epoch_methods, methods
from normbench.report.names import norm_sort_key
from normbench.report.sections import build_sections, finish_sections
from normbench.report.throughput import throughput_context
from normbench.report.verdicts import collect_verdicts
from normbench.spec import COMPLETED, DIVERGED, OUTCOMES, SKIPPED

CONTEXT_VERSION = 4
FAMILY_NAME = "verdicts"

# Settings that split the report into separate sections when they vary within one
# model x dataset x batch size (an lr sweep, two devices). A setting that only follows the batch
# size (lr or steps under a scaling rule) does not split: it is part of what "batch size" means.
SETTING_COLUMNS = ("model_label", "model_options", "dataset_options", "batching", "device", "optimizer", "lr",
                   "lr_scaling", "lr_schedule", "momentum", "weight_decay", "steps", "epochs", "samples")


def build_context(frames: ResultFrames, *, rng_seed: int = 0) -> dict[str, Any]:
    """Compute everything the report shows from ``frames``; returns a plain, JSON-able dict.

    Top-level keys: ``context_version``, ``rng_seed``, ``alpha``, ``power``, ``analysis`` (the
    declared analysis and its ``source``), ``family`` (name, correction, size m, counts by kind),
    ``suite``, ``environment``, ``outcomes``, ``warnings``, ``methods``, ``verdicts``, ``norms``,
    ``sections`` (training results, each with its ``glance``), ``throughput`` (None unless the store
    holds throughput measurements). ``rng_seed`` (>= 0) seeds every resampling, so the same frames
    always give the same context. ``frames.probes`` adds probe curves to the sections when recorded.
    """
    analysis, source = declared_analysis(frames.suite_yaml)
    family = Family(FAMILY_NAME, analysis.correction, analysis.alpha)
    runs = _checked_runs(frames.runs)
    warnings_list: list[dict[str, Any]] = _analysis_notes(analysis, source)
    runs = _attach_values(runs, warnings_list, analysis)
    training = runs[runs["kind"].map(is_training)]
    other_kinds = sorted({str(k) for k in runs.loc[~runs.index.isin(training.index), "kind"]})
    if other_kinds:
        warnings_list.append(_note(f"runs of kind {', '.join(other_kinds)} are not part of this report yet"))
    _skipped_devices_note(runs, warnings_list)

    config, reference_data, reference_note = declared_reference(frames.suite_yaml)
    if reference_note:
        warnings_list.append(_note(reference_note))
    rng_for = lambda key: cell_rng(rng_seed, *key)  # noqa: E731 - one generator per resampled thing
    sections = build_sections(training, frames.curves, _varying_settings(training), analysis=analysis,
                              family=family, scale=ACCURACY_SCALE, rng_for=rng_for, warnings_list=warnings_list,
                              probes=frames.probes, epochs=frames.epochs, flags=frames.inference_flags,
                              reference=(config, reference_data) if config is not None else None)
    family.adjust()
    finish_sections(sections, family=family, analysis=analysis, rng_for=rng_for)
    _reference_notes(sections, analysis, warnings_list)
    return {
        "context_version": CONTEXT_VERSION,
        "rng_seed": int(rng_seed),
        "alpha": analysis.alpha,
        "power": {"power": analysis.power, "margin": analysis.margin, "unit": "accuracy points"},
        "analysis": {**analysis.model_dump(), "source": source},
        "family": family.summary(),
        "suite": {
            "name": str(frames.suite_name or ""),
            "description": str(frames.suite_description or ""),
            "command": str(frames.command or ""),
            "yaml": str(frames.suite_yaml or ""),
        },
        "environment": {str(k): plain_value(v) for k, v in (frames.environment or {}).items()},
        "outcomes": _outcome_counts(runs),
        "warnings": warnings_list,
        "methods": methods(analysis, source, family.summary()) + epoch_methods(
            analysis, losses=any(s["training_loss"] for s in sections),
            flags=any(s["inference_flags"] for s in sections), published=any(s["published"] for s in sections)),
        "reference": _reference_summary(config, reference_data),
        "verdicts": collect_verdicts(sections),
        "norms": _all_norms(sections),
        "sections": sections,
        "throughput": throughput_context(frames.throughput, warnings_list),
    }


def _reference_summary(config: Any, data: dict[str, Any] | None) -> dict[str, Any] | None:
    """The declared published reference: its name, citation and the mapping (None when not declared)."""
    if config is None or data is None:
        return None
    return {"source": config.source, "name": data.get("name", config.source), "citation": data.get("citation", {}),
            "mapping": config.model_dump()}


def _analysis_notes(analysis: AnalysisConfig, source: str) -> list[dict[str, Any]]:
    notes = []
    if source.startswith("defaults ("):
        notes.append(_note(f"analysis: {source}"))
    if analysis.interval == "bca":
        notes.append(_note(BCA_CAVEAT))
    return notes


def _reference_notes(sections: list[dict[str, Any]], analysis: AnalysisConfig,
                     warnings_list: list[dict[str, Any]]) -> None:
    """Say where the declared reference norm or batch size is missing, so nothing is picked silently."""
    for section in sections:
        if section["reference_label"] is None:
            warnings_list.append(_note(f"{section['title']}: no runs of the declared reference norm "
                                       f"{analysis.reference_norm!r}; no comparisons against it"))
        fallback = sorted({e["norm_name"] for e in section["batch_failure"]
                           if e["reference_source"].startswith("the largest batch size: the declared")})
        if fallback:
            warnings_list.append(_note(
                f"{section['title']}: the declared reference_batch_size {analysis.reference_batch_size} has no results "
                f"for {', '.join(fallback)}; their small-batch drops are measured from their largest batch size"))


def _skipped_devices_note(runs: pd.DataFrame, warnings_list: list[dict[str, Any]]) -> None:
    skipped = runs[runs["outcome"] == SKIPPED]
    for device, group in skipped.groupby("device", sort=True):
        reasons = sorted({str(e) for e in group["error"] if plain_value(e)})
        why = f": {'; '.join(reasons)}" if reasons else ""
        warnings_list.append(_note(f"device {device} skipped for {len(group)} run(s){why}"))


def _checked_runs(runs: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in RUN_COLUMNS if c not in runs.columns]
    if missing:
        raise ValueError(f"runs frame lacks columns {missing}; expected normbench.frames.RUN_COLUMNS")
    return runs.sort_values("run_id", kind="stable").reset_index(drop=True)


def _attach_values(runs: pd.DataFrame, warnings_list: list[dict[str, Any]], analysis: AnalysisConfig) -> pd.DataFrame:
    """Add ``value`` (accuracy in % under ``diverged_as``, NaN = excluded; ``analysis.accuracy_values``)
    and ``in_curves`` (completed with an accuracy, or diverged), and list every run that is not a clean result."""
    values = accuracy_values(runs, analysis.diverged_as)
    runs = runs.assign(value=values, in_curves=np.isfinite(values) | (runs["outcome"] == DIVERGED).to_numpy())
    for row in runs.itertuples(index=False):
        note = value_note(row.outcome, row.final_test_accuracy, analysis.diverged_as)
        # A completed run of another kind (throughput) has no accuracy to miss.
        if note and (row.outcome != COMPLETED or is_training(row.kind)):
            warnings_list.append(_run_warning(row, note))
    accuracy = pd.to_numeric(runs["final_test_accuracy"], errors="coerce").astype(float).to_numpy()
    outside = np.isfinite(accuracy) & ((accuracy < 0) | (accuracy > 1))
    if outside.any():
        warnings_list.append(_note(
            f"{int(outside.sum())} run(s) report a final test accuracy outside [0, 1]; "
            "the report assumes fractions and shows them x100"))
    return runs


def _run_warning(row: Any, effect: str) -> dict[str, Any]:
    return {
        "kind": "run", "run_id": str(row.run_id), "model": str(row.model), "dataset": str(row.dataset),
        "norm_label": str(row.norm_label), "batch_size": plain_value(row.batch_size), "seed": plain_value(row.seed),
        "outcome": str(row.outcome), "reason": plain_text(row.error),
        "effect": effect,
    }


def _note(message: str) -> dict[str, Any]:
    return {"kind": "note", "message": message}


def _outcome_counts(runs: pd.DataFrame) -> dict[str, int]:
    counts = {outcome: int((runs["outcome"] == outcome).sum()) for outcome in OUTCOMES}
    for outcome in sorted(set(map(str, runs["outcome"])) - set(OUTCOMES)):
        counts[outcome] = int((runs["outcome"].astype(str) == outcome).sum())
    counts["total"] = int(len(runs))
    return counts


def _varying_settings(training: pd.DataFrame) -> list[str]:
    if training.empty:
        return []
    varying = []
    group_keys = [training["model"], training["dataset"], training["batch_size"]]
    for column in SETTING_COLUMNS:
        keyed = training[column].map(lambda v: json.dumps(plain_value(v), sort_keys=True, default=str))
        if (keyed.groupby(group_keys, dropna=False).nunique() > 1).any():
            varying.append(column)
    if {"model_label", "model_options"} <= set(varying):
        # a label that names each model's options says the same in fewer words: titles keep the label
        options = training["model_options"].map(lambda v: json.dumps(plain_value(v), sort_keys=True, default=str))
        if (options.groupby(training["model_label"], dropna=False).nunique() <= 1).all():
            varying.remove("model_options")
    return varying


def _all_norms(sections: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Every norm label in the report, in canonical order (figures give each one fixed colour)."""
    seen = {(n["norm"], n["label"]): n for section in sections for n in section["norms"]}
    return [seen[k] for k in sorted(seen, key=lambda k: norm_sort_key(*k))]
