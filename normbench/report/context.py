"""Build the report context: ResultFrames + normbench.stats -> one plain dict that templates lay out.

All numbers a report shows are computed here (figures and templates only draw and format them),
so tests assert on this dict and the JSON format is this dict. Accuracies in the context are
percentages (frames store fractions); NaN marks "not available" and becomes null in JSON.

Outcome policy (stated in the report's methods list): a completed run contributes its final
test accuracy; a diverged run counts as 0 % - a failure of the configuration is a result and is
never dropped; undefined, failed and skipped runs contribute nothing and are listed as warnings.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from normbench import stats
from normbench.analysis import (
    ACCURACY_SCALE,
    ALPHA,
    POWER,
    RELEVANT_EFFECT,
    accuracy_values,
    cell_rng,
    is_training,
    plain_text,
    plain_value,
    value_note,
    verdict_direction,
)
from normbench.frames import RUN_COLUMNS, ResultFrames
from normbench.report.convergence import TARGET_FRACTION
from normbench.report.names import norm_sort_key
from normbench.report.sections import build_sections
from normbench.report.throughput import throughput_context
from normbench.spec import COMPLETED, OUTCOMES, SKIPPED

CONTEXT_VERSION = 2
REFERENCE_NORM = "batch"

# Settings that split the report into separate sections when they vary within one
# model x dataset x batch size (an lr sweep, two devices). A setting that only follows the batch
# size (lr or steps under a scaling rule) does not split: it is part of what "batch size" means.
SETTING_COLUMNS = ("model_label", "model_options", "dataset_options", "batching", "device", "optimizer", "lr",
                   "lr_scaling", "momentum", "weight_decay", "steps", "epochs", "samples")


def build_context(frames: ResultFrames, *, rng_seed: int = 0) -> dict[str, Any]:
    """Compute everything the report shows from ``frames``; returns a plain, JSON-able dict.

    Top-level keys: ``context_version``, ``rng_seed``, ``alpha``, ``power``, ``suite``,
    ``environment``, ``outcomes``, ``warnings``, ``methods``, ``verdicts``, ``norms``, ``sections``
    (training results), ``throughput`` (None unless the store holds throughput measurements:
    ``frames.throughput``). ``rng_seed`` (>= 0) seeds every bootstrap, so the same frames always
    give the same context. ``frames.probes`` adds probe curves to the sections when recorded.
    """
    runs = _checked_runs(frames.runs)
    warnings_list: list[dict[str, Any]] = []
    runs = _attach_values(runs, warnings_list)
    training = runs[runs["kind"].map(is_training)]
    other_kinds = sorted({str(k) for k in runs.loc[~runs.index.isin(training.index), "kind"]})
    if other_kinds:
        warnings_list.append(_note(f"runs of kind {', '.join(other_kinds)} are not part of this report yet"))
    _skipped_devices_note(runs, warnings_list)

    settings = _varying_settings(training)
    sections = build_sections(
        training, frames.curves, settings,
        reference=REFERENCE_NORM, alpha=ALPHA, scale=ACCURACY_SCALE,
        rng_for=lambda key: cell_rng(rng_seed, *key),
        warnings_list=warnings_list, probes=frames.probes,
    )
    return {
        "context_version": CONTEXT_VERSION,
        "rng_seed": int(rng_seed),
        "alpha": ALPHA,
        "power": {"power": POWER, "relevant_effect": RELEVANT_EFFECT, "unit": "accuracy points"},
        "suite": {
            "name": str(frames.suite_name or ""),
            "description": str(frames.suite_description or ""),
            "command": str(frames.command or ""),
            "yaml": str(frames.suite_yaml or ""),
        },
        "environment": {str(k): plain_value(v) for k, v in (frames.environment or {}).items()},
        "outcomes": _outcome_counts(runs),
        "warnings": warnings_list,
        "methods": _methods(),
        "verdicts": _verdicts(sections),
        "norms": _all_norms(sections),
        "sections": sections,
        "throughput": throughput_context(frames.throughput, warnings_list),
    }


def _verdicts(sections: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The findings worth a headline, in plain words: small-batch failures, rankings that differ,
    then significant differences from BN."""
    out: list[dict[str, Any]] = []
    for section in sections:
        for entry in section["batch_failure"]:
            if entry["critical_batch_size"] is not None:
                out.append({"kind": "batch_failure", "section": section["id"], "batch_size": entry["critical_batch_size"],
                            "norm_label": entry["norm_label"], "text": entry["verdict"], "direction": "worse"})
    for section in sections:
        overall = section["ranking"]["overall"]
        if overall["significant"]:
            out.append({"kind": "ranking", "section": section["id"], "batch_size": None,
                        "norm_label": overall["norms"][0]["norm_label"], "text": overall["verdict"],
                        "direction": "neutral"})
    for section in sections:
        for family in section["comparisons"]:
            for row in family["rows"]:
                if row["significant"]:
                    out.append({"kind": "comparison", "section": section["id"], "batch_size": family["batch_size"],
                                "norm_label": row["norm_label"], "text": row["verdict"],
                                "direction": verdict_direction(row)})
    return out


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


def _attach_values(runs: pd.DataFrame, warnings_list: list[dict[str, Any]]) -> pd.DataFrame:
    """Add ``value`` (accuracy in %, NaN = excluded; ``analysis.accuracy_values``) and list every run
    that is not a clean result."""
    runs = runs.assign(value=accuracy_values(runs))
    for row in runs.itertuples(index=False):
        note = value_note(row.outcome, row.final_test_accuracy)
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
    return varying


def _all_norms(sections: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Every norm label in the report, in canonical order (figures give each one fixed colour)."""
    seen = {(n["norm"], n["label"]): n for section in sections for n in section["norms"]}
    return [seen[k] for k in sorted(seen, key=lambda k: norm_sort_key(*k))]


def _methods() -> list[str]:
    return [
        "Accuracy is the final test accuracy in percent. A diverged run counts as 0 % (a failure of the "
        "configuration is a result and is never dropped; in rankings it takes the worst rank); undefined, failed "
        "and skipped runs are excluded and listed under Warnings.",
        f"Confidence intervals are 95 % bootstrap intervals of the mean over seeds ({stats.DEFAULT_RESAMPLES:,} "
        "seeded resamples; BCa for n >= 3, percentile for n = 2, none for n = 1, a single point when all seeds agree).",
        "IQM is the interquartile mean (mean of the middle 50 % of seeds, as in rliable).",
        "Convergence curves show the mean over seeds with a 95 % t-interval band at each evaluation step; "
        "a diverged run counts as 0 % after its last evaluation. AUC is the time-averaged test accuracy over "
        f"training (trapezoidal area over steps divided by the step span), with a 95 % t-interval. Time to target: the first evaluation at "
        f"or above {TARGET_FRACTION:.0%} of the best cell's mean final accuracy in the section; runs that never get "
        "there are censored (diverged ones at the end of training) and the median is the Kaplan-Meier median.",
        f"Every norm is compared with BN ({REFERENCE_NORM}) at the same model, dataset and batch size, paired "
        "by seed (same seed = same initial weights and mini-batch order). A Shapiro-Wilk test on the paired "
        "differences (alpha 0.05) chooses a paired t-test (effect size Cohen's d_z) or a Wilcoxon signed-rank "
        "test (exact null distribution, ties included; effect size matched-pairs rank-biserial r); with fewer "
        "than 3 pairs Wilcoxon is used.",
        f"p-values are Holm-corrected within each model x batch-size family; a difference is significant "
        f"when p_holm < {ALPHA}. 'P(better)' is the fraction of seeds on which the norm beats BN, ties "
        "counted half.",
        f"Power: for each comparison, the smallest mean difference a paired t-test with the seeds used detects "
        f"with {POWER:.0%} power at alpha {ALPHA} (noncentral t, observed SD of the differences; before the Holm "
        f"correction, so a lower bound). A 'no significant difference' is flagged underpowered when that exceeds "
        f"{RELEVANT_EFFECT:g} accuracy point, or when a Wilcoxon test with so few pairs cannot reach p < {ALPHA}.",
        "Small-batch failure: each norm at each batch size against the same norm at its largest batch size, "
        "paired by seed (same initial weights; the data order differs with the batch size), one-sided (worse at "
        "the smaller batch), same test choice as above, Holm-corrected over the norm's batch sizes. The critical "
        "batch size is the largest batch size that is significantly worse; its 95 % interval comes from 1,000 "
        "smoothed bootstrap resamples of the seeds (Silverman's shrunk smoothed bootstrap, so repeated seeds do not "
        "pose as independent evidence), repeating the whole procedure on each (given when some batch size fails and 5 "
        "or more seeds are complete).",
        "Rankings: norms ranked within blocks (1 = best; diverged = 0 % = worst; ties averaged), blocks being "
        "seeds (per batch size) or batch size x seed pairs (overall); only complete blocks. Friedman test "
        "(tie-corrected), then Nemenyi post-hoc; the critical difference diagram joins norms whose average "
        "ranks differ by less than the critical difference (Demsar 2006).",
        "Accuracy vs speed: mean final accuracy against the median training samples per second of each norm and "
        "batch size; the Pareto front joins the points no other point beats on both.",
    ]

