"""All norms at once in one report section: Friedman test over blocks, Nemenyi post-hoc and the
critical difference (what the CD diagram draws), overall and per batch size."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from normbench import stats
from normbench.analysis import format_p, is_significant

Cells = dict[tuple[int, str], dict[str, Any]]
# A norm takes part in a ranking when it has results in at least this share of the blocks; blocks
# then keep only seeds where every taking part norm has a result (Friedman needs complete blocks).
MIN_BLOCK_COVERAGE = 0.5


def section_ranking(cells: Cells, labels: list[tuple[str, str]], batch_sizes: list[int], *, alpha: float,
                    where: str) -> dict[str, Any]:
    """``{"overall": ranking over (batch size, seed) blocks, "by_batch_size": [ranking per batch size]}``."""
    names = {label: _name(cells, label) for _, label in labels}
    overall = ranking([(b, s) for b in batch_sizes for s in _seeds(cells, b, labels)], cells,
                      [lbl for _, lbl in labels], names, alpha=alpha)
    overall["blocks"] = "batch size x seed"
    overall["verdict"] = ranking_verdict(overall, where, "across batch sizes")
    by_batch = []
    for b in batch_sizes:
        entry = ranking([(b, s) for s in _seeds(cells, b, labels)], cells, [lbl for _, lbl in labels], names,
                        alpha=alpha)
        entry["batch_size"] = b
        entry["blocks"] = "seed"
        entry["verdict"] = ranking_verdict(entry, where, f"at batch size {b}")
        by_batch.append(entry)
    return {"overall": overall, "by_batch_size": by_batch}


def ranking(blocks: list[tuple[int, int]], cells: Cells, labels: list[str], names: dict[str, str], *,
            alpha: float) -> dict[str, Any]:
    """Friedman + Nemenyi + CD over ``blocks`` (batch size, seed) for the norms that cover them."""
    lookup = {
        label: {(b, s): v for b in {blk[0] for blk in blocks} if (b, label) in cells
                for s, v in zip(cells[(b, label)]["seeds"], cells[(b, label)]["values"])}
        for label in labels
    }
    coverage = {label: sum(blk in lookup[label] for blk in blocks) / len(blocks) if blocks else 0.0
                for label in labels}
    taking_part = [lbl for lbl in labels if coverage[lbl] >= MIN_BLOCK_COVERAGE and coverage[lbl] > 0]
    excluded = [{"norm_label": lbl, "norm_name": names[lbl], "coverage": coverage[lbl]}
                for lbl in labels if lbl not in taking_part]
    complete = [blk for blk in blocks if all(blk in lookup[lbl] for lbl in taking_part)]
    table = np.array([[lookup[lbl][blk] for lbl in taking_part] for blk in complete], dtype=float)
    table = table.reshape(len(complete), len(taking_part))
    result = stats.friedman(table)
    k, n = result.k, result.n_blocks
    cd = stats.critical_difference(k, n, alpha=alpha) if k >= 2 and n >= 1 else math.nan
    p_matrix = stats.nemenyi(result.average_ranks, n) if math.isfinite(result.p_value) else np.full((k, k), np.nan)
    pairs = []
    for i in range(k):
        for j in range(i + 1, k):
            pairs.append({"a": taking_part[i], "a_name": names[taking_part[i]], "b": taking_part[j],
                          "b_name": names[taking_part[j]],
                          "rank_difference": abs(result.average_ranks[i] - result.average_ranks[j]),
                          "p_nemenyi": float(p_matrix[i, j]),
                          "significant": is_significant(p_matrix[i, j], alpha)})
    norms = [{"norm_label": lbl, "norm_name": names[lbl], "average_rank": r}
             for lbl, r in zip(taking_part, result.average_ranks)]
    norms.sort(key=lambda entry: entry["average_rank"])
    cliques = stats.cd_cliques(result.average_ranks, cd)
    return {
        "test": "Friedman", "statistic": result.statistic, "p_value": result.p_value, "k": k, "n_blocks": n,
        "significant": is_significant(result.p_value, alpha),
        "reason": result.reason, "norms": norms, "excluded": excluded, "critical_difference": cd,
        "alpha": alpha, "posthoc": "Nemenyi", "pairs": pairs,
        "cliques": [[taking_part[i] for i in clique] for clique in cliques],
        "n_blocks_dropped": len(blocks) - len(complete),
    }


def ranking_verdict(entry: dict[str, Any], where: str, scope: str) -> str:
    """Plain words for one ranking."""
    if not math.isfinite(entry["p_value"]):
        return f"Ranking of norms {scope} ({where}): not testable, {entry['reason']}"
    if not entry["significant"]:
        return (f"Ranking of norms {scope} ({where}): no significant differences (Friedman p "
                f"{format_p(entry['p_value'])}, {entry['n_blocks']} blocks)")
    best = entry["norms"][0]
    beaten = [p for p in entry["pairs"] if p["significant"] and best["norm_label"] in (p["a"], p["b"])]
    others = ", ".join(p["b_name"] if p["a"] == best["norm_label"] else p["a_name"] for p in beaten)
    tail = f"; significantly better ranked than {others} (Nemenyi)" if others else ""
    return (f"Ranking of norms {scope} ({where}): norms differ (Friedman chi2 = {entry['statistic']:.2f}, "
            f"p {format_p(entry['p_value'])}, {entry['n_blocks']} blocks); best average rank {best['norm_name']} "
            f"({best['average_rank']:.2f}){tail}")


def _seeds(cells: Cells, batch_size: int, labels: list[tuple[str, str]]) -> list[int]:
    return sorted({s for _, lbl in labels if (batch_size, lbl) in cells for s in cells[(batch_size, lbl)]["seeds"]})


def _name(cells: Cells, label: str) -> str:
    return next((c["norm_name"] for (b, lbl), c in cells.items() if lbl == label), label)
