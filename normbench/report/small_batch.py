"""Small-batch failure per norm in one report section: each batch size's accuracy drop from the declared
reference batch size, the critical batch size (the largest batch size whose drop exceeds the margin
with significance) and how often resampled seeds reproduce it (stats.critical_batch_size_beyond_margin).

Phase 1 (:func:`batch_failure_tests`) computes every drop's one-sided test of drop > margin and
registers it in the report's family; phase 2 (:func:`finish_batch_failures`) reads the adjusted
p-values, names the critical batch size and computes its replication frequency at the family's
threshold (so the resamples make exactly the decisions the family made on the data).
"""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import Any, Callable

import numpy as np

from normbench import stats
from normbench.analysis import format_p
from normbench.analysis_config import AnalysisConfig
from normbench.family import Family

Cells = dict[tuple[int, str], dict[str, Any]]


def _table(cells: Cells, label: str, present: list[int]) -> np.ndarray:
    """Accuracy per (batch size, seed) of one norm, NaN where a seed has no value there."""
    seeds = sorted({s for b in present for s in cells[(b, label)]["seeds"]})
    table = np.full((len(present), len(seeds)), np.nan)
    for i, b in enumerate(present):
        for seed, value in zip(cells[(b, label)]["seeds"], cells[(b, label)]["values"]):
            table[i, seeds.index(seed)] = value
    return table


def _reference(present: list[int], analysis: AnalysisConfig) -> tuple[int, str]:
    declared = analysis.reference_batch_size
    if declared is None:
        return present[-1], "the largest batch size (analysis.reference_batch_size not declared)"
    if declared in present:
        return declared, "declared in the suite (analysis.reference_batch_size)"
    return present[-1], (f"the largest batch size: the declared reference_batch_size {declared} has no results "
                         "for this norm")


def batch_failure_tests(cells: Cells, labels: list[tuple[str, str]], batch_sizes: list[int], *,
                        analysis: AnalysisConfig, section_id: str, family: Family) -> list[dict[str, Any]]:
    """One entry per norm with results at two or more batch sizes; drop tests registered in ``family``."""
    out = []
    for _, label in labels:
        present = [b for b in batch_sizes if (b, label) in cells and cells[(b, label)]["n"] > 0]
        if len(present) < 2:
            continue
        reference, why = _reference(present, analysis)
        result = stats.critical_batch_size_beyond_margin(
            present, _table(cells, label, present), reference_batch_size=reference, margin=analysis.margin,
            alpha=analysis.alpha, test=analysis.test, correction="none")
        entry = {"norm_label": label, "norm_name": cells[(present[0], label)]["norm_name"],
                 "reference_batch_size": reference, "reference_source": why, "margin": analysis.margin,
                 "test": result.test, "batch_sizes": present, "drops": []}
        for drop in result.drops:
            row = {**asdict(drop), "p_adjusted": math.nan, "significant": False,
                   "tested": drop.batch_size < reference, "confidence": 1 - analysis.alpha}
            if row["tested"]:
                family.add(f"{section_id}|{label}|drop at batch {drop.batch_size}", "drop", drop.p_value, row)
            entry["drops"].append(row)
        out.append(entry)
    return out


def finish_batch_failures(entries: list[dict[str, Any]], cells: Cells, *, family: Family, analysis: AnalysisConfig,
                          rng_for: Callable[[str], np.random.Generator], where: str) -> None:
    """After the family is adjusted: significance, critical batch size, replication frequency, verdict."""
    for entry in entries:
        for row in entry["drops"]:
            row["significant"] = bool(row["tested"] and math.isfinite(row["p_adjusted"])
                                      and row["p_adjusted"] < analysis.alpha)
        failing = [r["batch_size"] for r in entry["drops"] if r["significant"]]
        entry["critical_batch_size"] = max(failing) if failing else None
        replication = stats.critical_batch_size_beyond_margin(
            entry["batch_sizes"], _table(cells, entry["norm_label"], entry["batch_sizes"]),
            reference_batch_size=entry["reference_batch_size"], margin=analysis.margin, alpha=family.threshold,
            test=analysis.test, correction="none", rng=rng_for(entry["norm_label"]))
        frequency, note = replication.replication_frequency, replication.note
        if replication.critical_batch_size != entry["critical_batch_size"]:  # a tie at the threshold's edge
            frequency, note = math.nan, "the resampling's answer on the data differs at the threshold's edge"
        entry.update(replication_frequency=frequency,
                     replication_distribution=[[v, f] for v, f in replication.replication_distribution],
                     n_resamples=replication.n_resamples, replication_note=note,
                     threshold=family.threshold)
        entry["verdict"] = failure_verdict(entry, where)


def replication_text(entry: dict[str, Any]) -> str:
    """``reproduced by 87 % of 1,000 seed resamples`` or why it was not computed."""
    if not math.isfinite(entry["replication_frequency"]):
        return f"replication frequency not computed: {entry['replication_note']}"
    return f"reproduced by {100 * entry['replication_frequency']:.0f} % of {entry['n_resamples']:,} seed resamples"


def failure_verdict(entry: dict[str, Any], where: str) -> str:
    """Plain words for one norm's small-batch result."""
    name, reference, margin = entry["norm_name"], entry["reference_batch_size"], entry["margin"]
    tested = [r for r in entry["drops"] if r["tested"]]
    if not tested:
        return f"{name} ({where}): no batch size below the reference batch size {reference} to test"
    critical = entry["critical_batch_size"]
    if critical is None:
        n = min(r["n"] for r in tested)
        return (f"{name} ({where}): no batch size loses more than {margin:g} point against batch size {reference} "
                f"with significance (one-sided, p_adj >= alpha; n = {n}); {replication_text(entry)}")
    row = next(r for r in tested if r["batch_size"] == critical)
    return (f"{name} fails at small batches ({where}): critical batch size {critical}, the largest whose drop from "
            f"batch size {reference} exceeds {margin:g} point significantly; at {critical} it loses {row['drop']:.1f} "
            f"points [{100 * row['confidence']:.0f} % CI {row['ci_low']:.1f}, {row['ci_high']:.1f}], p_adj "
            f"{format_p(row['p_adjusted'])}, n = {row['n']}; {replication_text(entry)}")
