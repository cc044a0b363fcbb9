"""The answer at a glance for one report section (model x dataset): every cell (norm x batch size)
marked best / equivalent to best / worse / inconclusive, and one plain sentence per regime of batch
sizes with the same recommendation.

At each batch size each norm is compared with the best of the *other* norms (the highest mean among
them), as in Hsu's multiple comparisons with the best: the norm with the highest mean is compared
with the runner-up, every other norm with the highest, so no norm is selected by its mean and then
tested against itself. The comparisons are the declared paired test and TOST, plus Fisher's test of
divergence rates; all are hypotheses of the report's one family (shared with the comparisons against
the reference norm where the pair is the same).
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from normbench.analysis_config import AnalysisConfig
from normbench.family import Family, finish_comparison
from normbench.report.divergence import rate_test
from normbench.report.paired import pair_row

Cells = dict[tuple[int, str], dict[str, Any]]
MARKS = ("best", "equivalent to best", "worse", "inconclusive")
# How a non-best cell's comparison with the best becomes its mark ("better" than the highest mean on
# the seeds both completed happens only when their seeds differ: not a claim to make at a glance).
_MARK_OF = {"worse": "worse", "equivalent": "equivalent to best", "better": "inconclusive", "inconclusive": "inconclusive"}


def _top(cells: Cells, batch_size: int, labels: list[str]) -> str | None:
    """The norm with the highest mean accuracy at ``batch_size`` (first in canonical order on ties)."""
    means = [(cells[(batch_size, lbl)]["mean"], -i, lbl) for i, lbl in enumerate(labels)
             if (batch_size, lbl) in cells and math.isfinite(cells[(batch_size, lbl)]["mean"])]
    return max(means)[2] if means else None


def glance_tests(cells: Cells, labels: list[tuple[str, str]], batch_sizes: list[int], *, section_id: str,
                 analysis: AnalysisConfig, family: Family,
                 rng_for: Callable[[str], np.random.Generator]) -> dict[str, Any]:
    """Per batch size: the highest-mean norm and every other norm's comparison with it (registered)."""
    order = [lbl for _, lbl in labels]
    columns = []
    for b in batch_sizes:
        present = [lbl for lbl in order if (b, lbl) in cells]
        top = _top(cells, b, order)
        rows, rates = [], []
        for lbl in present:
            if top is None or lbl == top:
                continue
            if cells[(b, lbl)]["n"] > 0:
                rows.append(pair_row(cells, b, lbl, top, section_id=section_id, analysis=analysis, family=family,
                                     rng_for=rng_for))
            rate = rate_test(cells, b, lbl, top, section_id=section_id, family=family)
            rate["norm_label"] = lbl  # the registered row itself: the family writes p_adjusted into it
            rates.append(rate)
        columns.append({"batch_size": b, "top": top, "rows": rows, "divergence": rates})
    return {"batch_sizes": batch_sizes, "columns": columns}


def _column_marks(column: dict[str, Any], alpha: float) -> dict[str, tuple[str, str]]:
    """(mark, why) per norm label of one batch size, from its finished comparison rows."""
    top = column["top"]
    rows = {r["norm_label"]: r for r in column["rows"]}
    rates = {r["norm_label"]: r for r in column["divergence"]}
    marks: dict[str, tuple[str, str]] = {}
    for label, row in rows.items():
        marks[label] = (_MARK_OF[row["direction"]], f"{row['direction']} vs the best of the others")
    for label, rate in rates.items():
        if math.isfinite(rate["p_adjusted"]) and rate["p_adjusted"] < alpha and rate["rate_difference"] > 0:
            marks[label] = ("worse", "diverges more often than the best of the others")
        marks.setdefault(label, ("inconclusive", "no completed run to compare"))
    if top is None:
        return marks
    if not rows:
        marks[top] = ("inconclusive", "no other norm to compare with")
        return marks
    # Best only when every other norm is shown worse or equivalent: the runner-up by cell means is
    # not enough, since a paired comparison may use fewer seeds (a diverged run excluded) than the means.
    unresolved = [r["norm_label"] for r in column["rows"] if r["direction"] not in ("worse", "equivalent")]
    fewer = [r for r in rates.values() if math.isfinite(r["p_adjusted"]) and r["p_adjusted"] < alpha
             and r["rate_difference"] < 0]
    if fewer:
        marks[top] = ("inconclusive", "another norm diverges significantly less often")
    elif not unresolved:
        marks[top] = ("best", "highest mean; every other norm is worse or equivalent")
    else:
        marks[top] = ("inconclusive", f"highest mean, but not shown better than or equivalent to {', '.join(unresolved)}")
    return marks


def finish_glance(glance: dict[str, Any], cells: Cells, labels: list[tuple[str, str]], *, family: Family,
                  analysis: AnalysisConfig, reference_label: str | None) -> None:
    """After the family is adjusted: the marks, the regimes and the section's sentence."""
    glance["cells"] = []
    for column in glance["columns"]:
        for row in column["rows"]:
            finish_comparison(row, family, analysis)
        marks = _column_marks(column, analysis.alpha)
        column["marks"] = {label: mark for label, (mark, _) in marks.items()}
        for _, label in labels:
            cell = cells.get((column["batch_size"], label))
            if cell is None:
                continue
            mark, why = marks.get(label, ("inconclusive", "no results"))
            empty = "" if cell["n"] else ("every run diverged" if cell["n_diverged"] else "no results")
            glance["cells"].append({"norm_label": label, "norm_name": cell["norm_name"],
                                    "batch_size": column["batch_size"], "mean": cell["mean"], "n": cell["n"],
                                    "n_diverged": cell["n_diverged"], "mark": mark, "why": why, "empty": empty})
    glance["regimes"] = regimes(glance, cells, labels, analysis=analysis, reference_label=reference_label)
    glance["sentence"] = "; ".join(r["text"] for r in glance["regimes"])


def _range_text(sizes: list[int], all_sizes: list[int]) -> str:
    if len(sizes) == len(all_sizes) and len(sizes) > 1:
        return "at every batch size"
    if len(sizes) == 1:
        return f"batch {sizes[0]}"
    if sizes[0] == all_sizes[0]:
        return f"batch <= {sizes[-1]}"
    if sizes[-1] == all_sizes[-1]:
        return f"batch >= {sizes[0]}"
    return f"batch {sizes[0]}-{sizes[-1]}"


def _recommendation(column: dict[str, Any], labels: list[tuple[str, str]]) -> tuple[str, ...]:
    marks = column["marks"]
    best = [lbl for _, lbl in labels if marks.get(lbl) == "best"]
    if not best:
        return ()
    return tuple(best + [lbl for _, lbl in labels if marks.get(lbl) == "equivalent to best"])


def regimes(glance: dict[str, Any], cells: Cells, labels: list[tuple[str, str]], *, analysis: AnalysisConfig,
            reference_label: str | None) -> list[dict[str, Any]]:
    """Consecutive batch sizes with the same recommendation, each with one plain sentence."""
    names = {lbl: c["norm_name"] for (_, lbl), c in cells.items()}
    groups: list[tuple[tuple[str, ...], list[dict[str, Any]]]] = []
    for column in glance["columns"]:
        if column["top"] is None:
            continue
        alone = "alone" if not (column["rows"] or column["divergence"]) else ""
        key = _recommendation(column, labels) or ("", column["top"], alone)
        if groups and groups[-1][0] == key:
            groups[-1][1].append(column)
        else:
            groups.append((key, [column]))
    all_sizes = [c["batch_size"] for c in glance["columns"] if c["top"] is not None]
    out = []
    for key, columns in groups:
        sizes = [c["batch_size"] for c in columns]
        if key[0]:
            text = f"{names[key[0]]} best"
            if len(key) > 1:
                text += f", {', '.join(names[k] for k in key[1:])} within {analysis.margin:g} point"
        elif key[2]:
            text = f"only {names[key[1]]} has results"
        else:
            top = key[1]
            means = ", ".join(f"{cells[(b, top)]['mean']:.1f} % at batch {b}" for b in sizes)
            text = f"no norm clearly best at these seeds (highest mean: {names[top]}, {means})"
        text = f"{_range_text(sizes, all_sizes)}: {text}" + _reference_clause(columns, names, reference_label, key)
        out.append({"batch_sizes": sizes, "recommended": list(key) if key[0] else [], "text": text})
    return out


def _reference_clause(columns: list[dict[str, Any]], names: dict[str, str], reference_label: str | None,
                      key: tuple[str, ...]) -> str:
    """'; BN loses 52.0 points at batch 1' when the reference norm is marked worse in this regime."""
    if reference_label is None or reference_label in key:
        return ""
    losses = [(-r["mean_difference"], c["batch_size"]) for c in columns for r in c["rows"]
              if r["norm_label"] == reference_label and c["marks"].get(reference_label) == "worse"
              and math.isfinite(r["mean_difference"])]
    if not losses:
        return ""
    points, batch_size = max(losses)
    return f"; {names[reference_label]} loses {points:.1f} points at batch {batch_size}"
