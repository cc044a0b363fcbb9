"""All norms at once in one report section: a Friedman test over independent blocks (one per seed,
``stats.seed_blocks``: the same seeds run at every batch size, so (batch size x seed) blocks would
count one lucky seed once per batch size), with Nemenyi pairs and the critical-difference cliques
gated by the omnibus test's family-adjusted p-value."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from normbench import stats
from normbench.analysis import format_p
from normbench.analysis_config import AnalysisConfig
from normbench.family import Family

Cells = dict[tuple[int, str], dict[str, Any]]
# A norm takes part in the ranking when it has results in at least this share of the
# (batch size, seed) slots; the others are listed as not ranked.
MIN_BLOCK_COVERAGE = 0.5


def _rank_value(cell: dict[str, Any] | None, seed: int, analysis: AnalysisConfig) -> float:
    """A run's value in a ranking: its accuracy, -inf for a diverged run under worst_rank, else NaN."""
    if cell is None:
        return math.nan
    if seed in cell["seeds"]:
        return cell["values"][cell["seeds"].index(seed)]
    if analysis.diverged_as == "worst_rank" and seed in cell["diverged_seeds"]:
        return -math.inf
    return math.nan


def _table(cells: Cells, labels: list[str], batch_sizes: list[int], seeds: list[int],
           analysis: AnalysisConfig) -> np.ndarray:
    """Values of shape (batch sizes, norms, seeds) for ``stats.seed_blocks``."""
    return np.array([[[_rank_value(cells.get((b, lbl)), s, analysis) for s in seeds] for lbl in labels]
                     for b in batch_sizes], dtype=float).reshape(len(batch_sizes), len(labels), len(seeds))


def ranking_tests(cells: Cells, labels: list[tuple[str, str]], batch_sizes: list[int], *, analysis: AnalysisConfig,
                  section_id: str, family: Family) -> dict[str, Any]:
    """Friedman over seed blocks with Nemenyi pairs; the omnibus p-value is registered in ``family``."""
    names = {lbl: next(c["norm_name"] for (b, x), c in cells.items() if x == lbl) for _, lbl in labels
             if any(x == lbl for (_, x) in cells)}
    seeds = sorted({s for c in cells.values() for s in c["seeds"] + c["diverged_seeds"]})
    all_labels = [lbl for _, lbl in labels if lbl in names]
    table = _table(cells, all_labels, batch_sizes, seeds, analysis)
    slots = max(len(batch_sizes) * len(seeds), 1)
    coverage = {lbl: float(np.sum(~np.isnan(table[:, i, :]))) / slots for i, lbl in enumerate(all_labels)}
    taking_part = [lbl for lbl in all_labels if coverage[lbl] >= MIN_BLOCK_COVERAGE]
    blocks = stats.seed_blocks(table[:, [all_labels.index(lbl) for lbl in taking_part], :])
    ranking = stats.rank_norms(blocks.values.reshape(blocks.n_blocks, len(taking_part)), taking_part,
                               alpha=analysis.alpha)
    result = ranking.friedman
    entry = {
        "test": "Friedman", "blocks": "seed", "statistic": result.statistic, "p_value": result.p_value,
        "p_adjusted": math.nan, "k": result.k, "n_blocks": result.n_blocks, "n_blocks_dropped": blocks.dropped,
        "reason": result.reason, "alpha": analysis.alpha, "posthoc": "Nemenyi",
        "critical_difference": ranking.critical_difference,
        "norms": sorted(({"norm_label": lbl, "norm_name": names[lbl], "average_rank": r}
                         for lbl, r in zip(taking_part, result.average_ranks)), key=lambda n: n["average_rank"]),
        "excluded": [{"norm_label": lbl, "norm_name": names[lbl], "coverage": coverage[lbl]}
                     for lbl in all_labels if lbl not in taking_part],
        "pairs": [{"a": p.a, "a_name": names[p.a], "b": p.b, "b_name": names[p.b], "p": p.p, "significant": False,
                   "rank_difference": abs(result.average_ranks[taking_part.index(p.a)]
                                          - result.average_ranks[taking_part.index(p.b)])} for p in ranking.pairs],
        "omnibus_rejects": False, "cliques": [list(c) for c in ranking.cliques],
    }
    family.add(f"{section_id}|ranking", "ranking", result.p_value, entry)
    return entry


def finish_ranking(entry: dict[str, Any], analysis: AnalysisConfig, where: str) -> None:
    """After the family is adjusted: gate the pairs and the cliques on the omnibus test, and say it in words."""
    rejects = bool(math.isfinite(entry["p_adjusted"]) and entry["p_adjusted"] < analysis.alpha)
    entry["omnibus_rejects"] = rejects
    for pair in entry["pairs"]:
        pair["significant"] = bool(rejects and math.isfinite(pair["p"]) and pair["p"] < analysis.alpha)
    if not rejects:
        # No omnibus rejection: the diagram may not draw differences, so every norm is one clique.
        entry["cliques"] = [[n["norm_label"] for n in entry["norms"]]] if len(entry["norms"]) >= 2 else []
    entry["verdict"] = ranking_verdict(entry, where)


def ranking_verdict(entry: dict[str, Any], where: str) -> str:
    """Plain words for the section's ranking."""
    scope = f"Ranking of norms over {entry['n_blocks']} seed blocks ({where})"
    if not math.isfinite(entry["p_value"]):
        return f"{scope}: not testable, {entry['reason']}"
    if not entry["omnibus_rejects"]:
        return (f"{scope}: no significant differences (Friedman p {format_p(entry['p_value'])}, "
                f"p_adj {format_p(entry['p_adjusted'])})")
    best = entry["norms"][0]
    beaten = [p for p in entry["pairs"] if p["significant"] and best["norm_label"] in (p["a"], p["b"])]
    others = ", ".join(p["b_name"] if p["a"] == best["norm_label"] else p["a_name"] for p in beaten)
    tail = f"; ranked significantly better than {others} (Nemenyi)" if others else ""
    return (f"{scope}: norms differ (Friedman chi2 = {entry['statistic']:.2f}, p_adj {format_p(entry['p_adjusted'])}); "
            f"best average rank {best['norm_name']} ({best['average_rank']:.2f}){tail}")
