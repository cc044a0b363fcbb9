"""Plain-words wording shared by every verdict the report prints (numbers come from the context)."""

from __future__ import annotations

import math
from typing import Any

from normbench.analysis import format_detectable, format_p, verdict_direction


def effect_symbol(effect_name: str) -> str:
    """How a verdict names an effect size: 'd_z' (Cohen's d_z) or 'r' (rank-biserial)."""
    return "d_z" if effect_name == "d_z" else "r"


def verdict(row: dict[str, Any], batch_size: int, where: str) -> str:
    """Plain-words verdict of one comparison row against the reference norm.

    Needs the row's ``p_holm``, ``significant`` and, for non-significant rows, the power fields
    ``mde`` and ``underpowered`` (see ``normbench.stats.detectable_difference``).
    """
    name, ref, n = row["norm_name"], row["reference_name"], row["n"]
    if row["test"] == "none" and not math.isfinite(row["p_value"]):
        return f"{name} vs {ref} at batch size {batch_size} ({where}): not testable, {row['reason']}"
    if not row["significant"]:
        text = f"{name} vs {ref} at batch size {batch_size} ({where}): no significant difference (n = {n})"
        if row.get("underpowered"):
            mde = row.get("mde", math.nan)
            if isinstance(mde, float) and math.isinf(mde):
                text += f"; underpowered: {row.get('power_note') or 'no effect could reach significance'}"
            else:
                text += f"; underpowered: only differences of {format_detectable(mde)} points or more were detectable"
        return text
    verb = "beats" if verdict_direction(row) == "better" else "trails"
    effect = effect_symbol(row["effect_name"])
    return (f"{name} {verb} {ref} at batch size {batch_size} ({where}): accuracy {row['mean_difference']:+.1f} "
            f"points, p_holm {format_p(row['p_holm'])}, {effect} = {row['effect_size']:.2f}, n = {n}")
