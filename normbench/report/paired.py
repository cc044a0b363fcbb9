"""Paired comparisons between two cells of one report section (same batch size, paired by seed): every
norm against the reference norm, and the pair helper the glance's comparisons with the best use.

Phase 1 (``reference_comparisons``, ``pair_row``) computes the declared test and TOST and registers
both in the report's family; phase 2 (``finish_reference_comparisons``) runs after the family is
adjusted and draws each row's verdict.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from normbench.analysis import aligned_by_seed, comparison_row
from normbench.analysis_config import AnalysisConfig
from normbench.family import Family, finish_comparison, register_comparison
from normbench.report.verdicts import comparison_verdict

Cells = dict[tuple[int, str], dict[str, Any]]


def pair_key(section_id: str, batch_size: int, a: str, b: str) -> str:
    """The hypothesis key of comparing cells ``a`` and ``b`` at one batch size (order does not matter)."""
    first, second = sorted((a, b))
    return f"{section_id}|batch {batch_size}|{first} vs {second}"


def pair_row(cells: Cells, batch_size: int, label: str, other: str, *, section_id: str, analysis: AnalysisConfig,
             family: Family, rng_for: Callable[[str], np.random.Generator]) -> dict[str, Any]:
    """``label`` against ``other`` at ``batch_size`` on their common seeds (d = label - other), registered.

    The generator comes from the unordered pair, so the same pair tested from either side (glance
    and reference) draws the same permutations and is one hypothesis of the family.
    """
    mine, theirs = cells[(batch_size, label)], cells[(batch_size, other)]
    by_seed = dict(zip(mine["seeds"], mine["values"]))
    other_by_seed = dict(zip(theirs["seeds"], theirs["values"]))
    common, a, b = aligned_by_seed(by_seed, other_by_seed)
    key = pair_key(section_id, batch_size, label, other)
    row = {
        "norm_label": label, "norm_name": mine["norm_name"], "reference_label": other,
        "reference_name": theirs["norm_name"], "batch_size": batch_size,
        **comparison_row(a, b, analysis, rng=rng_for(key)),
        "seeds": common, "n_unpaired": len(set(by_seed) ^ set(other_by_seed)),
        "n_excluded": mine["n_excluded"] + theirs["n_excluded"], "hypothesis": key,
    }
    register_comparison(family, key, row)
    return row


def reference_comparisons(cells: Cells, labels: list[tuple[str, str]], batch_sizes: list[int],
                          reference_label: str | None, *, section_id: str, analysis: AnalysisConfig, family: Family,
                          rng_for: Callable[[str], np.random.Generator]) -> list[dict[str, Any]]:
    """Per batch size: every norm against the reference norm (rows registered in ``family``)."""
    out = []
    for batch_size in batch_sizes:
        entry: dict[str, Any] = {"batch_size": batch_size, "reference_label": reference_label, "rows": [], "note": ""}
        reference = cells.get((batch_size, reference_label)) if reference_label else None
        if reference is None:
            entry["note"] = (f"no {analysis.reference_norm} runs at batch size {batch_size}: nothing to compare "
                             "against (analysis.reference_norm)")
            out.append(entry)
            continue
        entry["reference_name"] = reference["norm_name"]
        for _, label in labels:
            if label != reference_label and (batch_size, label) in cells:
                entry["rows"].append(pair_row(cells, batch_size, label, reference_label, section_id=section_id,
                                              analysis=analysis, family=family, rng_for=rng_for))
        out.append(entry)
    return out


def finish_reference_comparisons(comparisons: list[dict[str, Any]], family: Family, analysis: AnalysisConfig,
                                 where: str) -> None:
    """After the family is adjusted: each row's verdict (direction, power) and its sentence."""
    for entry in comparisons:
        for row in entry["rows"]:
            finish_comparison(row, family, analysis)
            row["verdict"] = comparison_verdict(row, where)
