"""Divergence as its own outcome in one report section: per cell the number and rate of diverged runs
with an exact (Clopper-Pearson) interval, and Fisher's exact test of each norm's rate against the
reference norm's at the same batch size (a hypothesis of the report's family)."""

from __future__ import annotations

import math
from typing import Any

from normbench import stats
from normbench.analysis import format_p
from normbench.analysis_config import AnalysisConfig
from normbench.family import Family

Cells = dict[tuple[int, str], dict[str, Any]]
RATE_TEST = "fisher"  # exact and conditional; declared in advance (Barnard has more power but is not the default)


def divergence_key(section_id: str, batch_size: int, a: str, b: str) -> str:
    """Hypothesis key of the divergence-rate test of cells ``a`` and ``b`` (order does not matter)."""
    first, second = sorted((a, b))
    return f"{section_id}|batch {batch_size}|{first} vs {second}|divergence"


def rate_test(cells: Cells, batch_size: int, label: str, other: str, *, section_id: str,
              family: Family) -> dict[str, Any]:
    """Fisher's exact test of ``label``'s divergence rate against ``other``'s, registered in ``family``.

    When no run of either cell diverged the test cannot reject (its smallest p is 1): it is reported
    as not tested and left out of the family's m (Tarone 1990: a test that cannot reach the level
    only dilutes the correction).
    """
    mine, theirs = cells[(batch_size, label)]["divergence"], cells[(batch_size, other)]["divergence"]
    result = stats.compare_divergence(mine["diverged"], mine["total"], theirs["diverged"], theirs["total"],
                                      test=RATE_TEST)
    p = result.p_value
    reason = result.reason
    if mine["diverged"] + theirs["diverged"] == 0:
        p, reason = math.nan, "no run of either cell diverged: nothing to test"
    row = {"against": other, "against_name": cells[(batch_size, other)]["norm_name"], "test": "Fisher's exact test",
           "p_value": p, "p_adjusted": math.nan, "rate_difference": result.rate_difference, "reason": reason}
    family.add(divergence_key(section_id, batch_size, label, other), "divergence", p, row)
    return row


def divergence_tests(cells: Cells, labels: list[tuple[str, str]], batch_sizes: list[int], reference_label: str | None,
                     *, section_id: str, family: Family) -> dict[str, Any]:
    """Per cell: diverged / trained runs, the rate and its 95 % exact interval, and the test against the reference."""
    rows = []
    for _, label in labels:
        for batch_size in batch_sizes:
            cell = cells.get((batch_size, label))
            if cell is None:
                continue
            row = {"batch_size": batch_size, "norm_label": label, "norm_name": cell["norm_name"], **cell["divergence"],
                   "comparison": None}
            if reference_label and label != reference_label and (batch_size, reference_label) in cells:
                row["comparison"] = rate_test(cells, batch_size, label, reference_label, section_id=section_id,
                                              family=family)
            rows.append(row)
    return {"rows": rows, "any": any(r["diverged"] for r in rows), "test": "Fisher's exact test (two-sided)"}


def finish_divergence(divergence: dict[str, Any], analysis: AnalysisConfig, where: str) -> None:
    """After the family is adjusted: which rates differ significantly from the reference's, in words."""
    for row in divergence["rows"]:
        test = row["comparison"]
        row["significant"] = bool(test and math.isfinite(test["p_adjusted"]) and test["p_adjusted"] < analysis.alpha)
        if not row["significant"]:
            continue
        more = test["rate_difference"] > 0
        row["direction"] = "worse" if more else "better"
        other = next(r for r in divergence["rows"]
                     if r["norm_label"] == test["against"] and r["batch_size"] == row["batch_size"])
        row["verdict"] = (f"{row['norm_name']} diverges {'more' if more else 'less'} often than {test['against_name']} "
                          f"at batch size {row['batch_size']} ({where}): {row['diverged']} of {row['total']} runs vs "
                          f"{other['diverged']} of {other['total']} (Fisher's exact test, p_adj {format_p(test['p_adjusted'])})")


def cell_divergence(diverged: int, total: int) -> dict[str, Any]:
    """``{diverged, total, rate, ci_low, ci_high, ci_method}`` of one cell (exact 95 % interval)."""
    rate = stats.divergence_rate(diverged, total)
    return {"diverged": rate.diverged, "total": rate.total, "rate": rate.rate, "ci_low": rate.ci_low,
            "ci_high": rate.ci_high, "ci_method": rate.ci_method}
