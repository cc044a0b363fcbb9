"""Plain-words wording of comparison verdicts, and the report's verdict list (numbers come from the context).

Every sentence states the verdict of one family-adjusted test (``p_adj``: adjusted over the report's
one family, see :mod:`normbench.family`); its direction is the sign of the mean difference.
"""

from __future__ import annotations

import math
from typing import Any

from normbench.analysis import format_detectable, format_p

VERBS = {"better": "beats", "worse": "trails"}


def effect_symbol(effect_name: str) -> str:
    """How a verdict names an effect size: 'd_z' (Cohen's d_z) or 'r' (rank-biserial)."""
    return "d_z" if effect_name == "d_z" else "r"


def interval_text(row: dict[str, Any]) -> str:
    """``+2.1 points [95 % CI 1.0, 3.2]`` (the interval left out when there is none)."""
    text = f"{row['mean_difference']:+.1f} points"
    if math.isfinite(row.get("ci_low", math.nan)) and math.isfinite(row.get("ci_high", math.nan)):
        text += f" [{100 * row['confidence']:.0f} % CI {row['ci_low']:+.1f}, {row['ci_high']:+.1f}]"
    return text


def excluded_text(row: dict[str, Any]) -> str:
    """``, 1 run excluded`` when runs of the two cells did not enter the comparison ('' otherwise)."""
    count = row.get("n_excluded", 0)
    return f", {count} run{'s' if count != 1 else ''} excluded" if count else ""


def power_text(row: dict[str, Any]) -> str:
    """What the seeds could have detected at the level actually used (alpha / m of the family)."""
    level = row["level"]
    if row.get("cannot_reach"):
        return (f"the {row['test']} with {row['n']} seeds cannot reach the family's level p < {level:.2g} "
                f"(its smallest possible p is {row['min_p']:.3g})")
    detectable = row.get("detectable", math.nan)
    if not isinstance(detectable, float) or math.isnan(detectable):
        return ""
    text = (f"detectable at the family's level {level:.2g} with {100 * row['power']:.0f} % power: "
            f"{format_detectable(detectable)} points")
    if row.get("seeds_for_margin"):
        text += f"; about {row['seeds_for_margin']} seeds would detect {row['margin']:g} point"
    return text


def comparison_verdict(row: dict[str, Any], where: str) -> str:
    """One comparison row (after :func:`normbench.family.finish_comparison`) in plain words."""
    name, ref, n = row["norm_name"], row["reference_name"], row["n"]
    at = f"at batch size {row['batch_size']} ({where})"
    if not math.isfinite(row["p_value"]):
        return f"{name} vs {ref} {at}: not testable, {row['reason']}"
    numbers = f"p_adj {format_p(row['p_adjusted'])}, {effect_symbol(row['effect_name'])} = {row['effect_size']:.2f}, n = {n}"
    if not math.isfinite(row["effect_size"]):
        numbers = f"p_adj {format_p(row['p_adjusted'])}, n = {n}"
    direction = row["direction"]
    if direction in VERBS:
        return f"{name} {VERBS[direction]} {ref} {at}: {interval_text(row)}, {numbers}{excluded_text(row)}"
    if direction == "equivalent":
        inside = (f"; the difference is significant (p_adj {format_p(row['p_adjusted'])}) but inside the margin"
                  if row["within_margin"] else "")
        return (f"{name} and {ref} are equivalent within {row['margin']:g} point {at}: {interval_text(row)}, "
                f"TOST p_adj {format_p(row['equivalence_p_adjusted'])}, n = {n}{inside}{excluded_text(row)}")
    why = "mean difference and effect size disagree in sign; " if row.get("sign_conflict") else ""
    power = power_text(row)
    return (f"{name} vs {ref} {at}: inconclusive ({why}{interval_text(row)}, p_adj {format_p(row['p_adjusted'])}, "
            f"TOST p_adj {format_p(row['equivalence_p_adjusted'])}, n = {n}{excluded_text(row)})"
            + (f"; {power}" if power else ""))


def inconclusive_summary(rows: list[dict[str, Any]], where: str, reference_name: str) -> str | None:
    """One sentence for the section's inconclusive comparisons with the reference ('None' when there are none)."""
    weak = [r for r in rows if r["direction"] == "inconclusive" and math.isfinite(r["p_value"])]
    if not weak:
        return None
    finite = [r["detectable"] for r in weak if math.isfinite(r.get("detectable", math.nan))]
    seeds = sorted({r["n"] for r in weak})
    detect = (f"only differences of {min(finite):.1f}-{max(finite):.1f} points were detectable" if finite
              else "no difference could have been detected")
    needed = sorted(r["seeds_for_margin"] for r in weak if r.get("seeds_for_margin"))
    tail = (f"; detecting {weak[0]['margin']:g} point needs about {needed[0]}-{needed[-1]} seeds" if needed else "")
    return (f"{len(weak)} comparison(s) with {reference_name} are inconclusive ({where}): with "
            f"{', '.join(map(str, seeds))} seed(s), at the family's level {weak[0]['level']:.2g}, {detect}{tail}")


def collect_verdicts(sections: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The verdict list, section by section (model x dataset): small-batch failures, divergence, claims
    against the reference norm (better / worse / equivalent), the ranking, then one line for the
    inconclusive comparisons. Every entry carries ``direction`` in better/worse/equivalent/inconclusive."""
    out: list[dict[str, Any]] = []
    for section in sections:
        def add(kind: str, batch_size: Any, label: Any, text: str, direction: str) -> None:
            out.append({"kind": kind, "section": section["id"], "title": section["title"], "batch_size": batch_size,
                        "norm_label": label, "text": text, "direction": direction})

        for entry in section["batch_failure"]:
            if entry["critical_batch_size"] is not None:
                add("batch_failure", entry["critical_batch_size"], entry["norm_label"], entry["verdict"], "worse")
        for row in section["divergence"]["rows"]:
            if row.get("significant"):
                add("divergence", row["batch_size"], row["norm_label"], row["verdict"], row["direction"])
        rows = [r for family in section["comparisons"] for r in family["rows"]]
        for row in rows:
            if row["direction"] != "inconclusive":
                add("comparison", row["batch_size"], row["norm_label"], row["verdict"], row["direction"])
            elif row.get("sign_conflict"):
                add("comparison", row["batch_size"], row["norm_label"], row["verdict"], "inconclusive")
        for row in section.get("loss_convergence", {}).get("rows", []):
            if row["direction"] != "inconclusive":
                add("convergence", row["batch_size"], row["norm_label"], row["verdict"], row["direction"])
        ranking = section["ranking"]
        if ranking["omnibus_rejects"]:
            add("ranking", None, ranking["norms"][0]["norm_label"], ranking["verdict"], "better")
        summary = inconclusive_summary(rows, section["title"], section.get("reference_name") or "the reference")
        if summary:
            add("inconclusive", None, None, summary, "inconclusive")
    return out
