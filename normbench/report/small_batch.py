"""Small-batch failure per norm in one report section: each batch size against the norm's own
largest batch size, the critical batch size with its bootstrap interval, and plain-words verdicts."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from normbench import stats
from normbench.analysis import format_p
from normbench.report.verdicts import effect_symbol

Cells = dict[tuple[int, str], dict[str, Any]]


def batch_failures(
    cells: Cells,
    labels: list[tuple[str, str]],
    batch_sizes: list[int],
    *,
    alpha: float,
    rng_for: Callable[[str], np.random.Generator],
    where: str,
) -> list[dict[str, Any]]:
    """One entry per norm label with results at two or more batch sizes (see stats.critical_batch_size).

    ``cells`` maps (batch size, norm label) to the section's cell dicts (``seeds``/``values`` with
    diverged runs already at 0 %); ``rng_for(label)`` gives the norm's bootstrap generator.
    """
    if len(batch_sizes) < 2:
        return []
    out = []
    for _, label in labels:
        present = [b for b in batch_sizes if (b, label) in cells and cells[(b, label)]["n"] > 0]
        if len(present) < 2:
            continue
        seeds = sorted({s for b in present for s in cells[(b, label)]["seeds"]})
        table = np.full((len(present), len(seeds)), np.nan)
        for i, b in enumerate(present):
            for seed, value in zip(cells[(b, label)]["seeds"], cells[(b, label)]["values"]):
                table[i, seeds.index(seed)] = value
        result = stats.critical_batch_size(present, table, rng_for(label), alpha=alpha)
        name = cells[(present[0], label)]["norm_name"]
        entry = {"norm_label": label, "norm_name": name, **stats.failure_summary(result)}
        entry["verdict"] = failure_verdict(entry, where)
        out.append(entry)
    return out


def failure_verdict(entry: dict[str, Any], where: str) -> str:
    """Plain words for one norm's small-batch result."""
    name, reference = entry["norm_name"], entry["reference_batch_size"]
    rows = entry["rows"]
    worse = [r for r in rows if r["significant"]]
    if not worse:
        n = min((r["n"] for r in rows), default=0)
        return (f"{name} ({where}): no batch size is significantly worse than its batch size {reference} "
                f"(one-sided, Holm; n = {n})")
    critical = next(r for r in rows if r["batch_size"] == entry["critical_batch_size"])
    effect = effect_symbol(critical["effect_name"])
    sizes = ", ".join(str(r["batch_size"]) for r in worse)
    interval = entry["interval_text"]
    interval_part = (f"; 95 % bootstrap interval {interval}" if entry["interval"] else
                     f"; interval not estimable: {entry['interval_note']}")
    return (f"{name} fails at small batches ({where}): significantly worse than at batch size {reference} at "
            f"batch size {sizes} (critical batch size {entry['critical_batch_size']}{interval_part}); at "
            f"{critical['batch_size']}: {critical['mean_difference']:+.1f} points, p_holm {format_p(critical['p_holm'])}, "
            f"{effect} = {critical['effect_size']:.2f}, n = {critical['n']}")
