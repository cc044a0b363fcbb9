"""Accuracy and divergence in `normbench compare`: the declared paired test of each matched cell,
one-sided (new below base), a pooled row with one value per seed, Fisher's test of divergence rates,
each metric one family (``normbench.family``), and the smallest drop the seeds could detect."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd

from normbench import analysis, stats
from normbench.analysis_config import AnalysisConfig
from normbench.family import Family, correct_rows
from normbench.spec import COMPLETED, DIVERGED


def cell_label(cell: dict[str, Any]) -> str:
    """``model/dataset/norm label/b<batch size>/device`` of one cell."""
    return f"{cell['model']}/{cell['dataset']}/{cell['norm_label']}/b{cell['batch_size']}/{cell['device']}"


def _spread(values: list[float]) -> float:
    return float(np.std(values, ddof=1)) if len(values) >= 2 else math.nan


def accuracy_row(key: str, base: pd.DataFrame, new: pd.DataFrame, declared: AnalysisConfig,
                 rng: np.random.Generator) -> dict[str, Any] | None:
    """One matched training cell: new against base, paired by seed where possible, one-sided (new lower)."""
    cell = json.loads(key)
    if not analysis.is_training(cell["kind"]):
        return None
    before = analysis.accuracy_by_seed(base, declared.diverged_as)
    after = analysis.accuracy_by_seed(new, declared.diverged_as)
    if not before and not after:
        return None
    common, a, b = analysis.aligned_by_seed(after, before)
    row: dict[str, Any] = {
        "cell": cell, "label": cell_label(cell), "n_base": len(before), "n_new": len(after),
        "base_mean": float(np.mean(list(before.values()))) if before else math.nan,
        "new_mean": float(np.mean(list(after.values()))) if after else math.nan,
        "n_diverged_base": analysis.count_outcome(base, DIVERGED), "n_diverged_new": analysis.count_outcome(new, DIVERGED),
        # What the difference of two runs varies by when nothing about the code pairs them: the SD of
        # one run, sqrt(2) times over. The power statement falls back on it when the observed
        # differences have no spread (identical results say nothing about the noise of a change).
        "planning_sd": math.sqrt(2) * _spread(list(before.values())),
    }
    if len(common) >= 2:
        test = stats.paired_test(a, b, test=declared.test, alternative="less", rng=rng)
        row.update(paired=True, seeds=common, test=test.test, statistic=test.statistic, p_value=test.p_value,
                   effect_size=test.effect_size, effect_name="d_z", n=test.n, change=test.mean_difference,
                   sd_difference=test.sd_difference, min_p=test.min_p, base_values=b,
                   differences=[float(v) for v in stats.snapped_differences(a, b)])
        return row
    result = stats.unpaired_comparison(list(after.values()), list(before.values()), test="welch")
    # Welch's t is symmetric: the one-sided p of "new below base" is half the two-sided p on that side.
    p = result.p_value / 2 if result.mean_difference < 0 else 1 - result.p_value / 2
    row.update(paired=False, seeds=[], test=result.test, statistic=result.statistic, p_value=p,
               effect_size=result.effect_size, effect_name=result.effect_name, n=result.n_a + result.n_b,
               change=result.mean_difference, sd_difference=math.nan, min_p=0.0, base_values=[], differences=[])
    return row


def pooled_row(rows: list[dict[str, Any]], declared: AnalysisConfig, rng: np.random.Generator) -> dict[str, Any] | None:
    """Every paired cell at once, one value per seed: the seed's mean difference over the cells it is paired in.

    Cells share seeds (same initial weights), so the seeds, not the (cell, seed) pairs, are the
    independent units; a broad small regression spread over many cells shows up here.
    """
    paired = [r for r in rows if r["paired"]]
    by_seed: dict[int, list[float]] = {}
    base_by_seed: dict[int, list[float]] = {}
    for row in paired:
        for seed, d, base in zip(row["seeds"], row["differences"], row["base_values"]):
            by_seed.setdefault(seed, []).append(d)
            base_by_seed.setdefault(seed, []).append(base)
    if len(paired) < 2 or len(by_seed) < 2:
        return None
    seeds = sorted(by_seed)
    means = [float(np.mean(by_seed[s])) for s in seeds]
    test = stats.paired_test(means, [0.0] * len(means), test=declared.test, alternative="less", rng=rng)
    return {
        "cell": None, "label": f"all {len(paired)} paired cells (pooled, one value per seed)", "paired": True,
        "seeds": seeds, "n_base": sum(r["n_base"] for r in paired), "n_new": sum(r["n_new"] for r in paired),
        "base_mean": float(np.mean([r["base_mean"] for r in paired])),
        "new_mean": float(np.mean([r["new_mean"] for r in paired])),
        "n_diverged_base": sum(r["n_diverged_base"] for r in paired),
        "n_diverged_new": sum(r["n_diverged_new"] for r in paired),
        "planning_sd": math.sqrt(2) * _spread([float(np.mean(base_by_seed[s])) for s in seeds]),
        "test": test.test, "statistic": test.statistic, "p_value": test.p_value, "effect_size": test.effect_size,
        "effect_name": "d_z", "n": test.n, "change": test.mean_difference, "sd_difference": test.sd_difference,
        "min_p": test.min_p, "base_values": [], "differences": means,
    }


def judge_accuracy(rows: list[dict[str, Any]], thresholds: dict[str, float], declared: AnalysisConfig, *,
                   require_power: bool) -> tuple[list[str], dict[str, Any]]:
    """Correct the accuracy family, mark failing rows, and state what drop the seeds could detect.

    Returns (failure lines, power summary). A row fails when its one-sided p_adjusted < alpha and
    its change is below ``-accuracy_drop``. ``detectable``: the smallest true drop the declared test
    finds with the declared power at the family's per-comparison level (observed SD of the
    differences; ``planning_sd`` when they have none).
    """
    alpha, threshold = thresholds["alpha"], thresholds["accuracy_drop"]
    family = correct_rows("accuracy", "regression", rows, declared.correction, alpha)
    failures = []
    for row in rows:
        row["beyond_threshold"] = bool(row["change"] < -threshold)
        row["fails"] = row["significant"] and row["beyond_threshold"]
        row["detectable"], row["sd_source"] = _detectable(row, declared, family.per_comparison_alpha)
        if row["fails"]:
            failures.append(f"accuracy {row['label']}: {row['change']:+.2f} points (p_adj "
                            f"{analysis.format_p(row['p_adjusted'])}, {row['test']}, one-sided, n = {row['n']})")
    power = power_summary(rows, threshold, declared, family)
    if require_power and power["enough"] is False:
        failures.append(f"power: {power['text']}")
    return failures, power


def _detectable(row: dict[str, Any], declared: AnalysisConfig, level: float) -> tuple[float, str]:
    if not row["paired"]:
        return math.nan, "unpaired seeds: not computed"
    sd, source = row["sd_difference"], "observed SD of the differences"
    if not (math.isfinite(sd) and sd > 0):
        sd, source = row["planning_sd"], "no spread in the differences: sqrt(2) x base SD over seeds"
    return stats.smallest_detectable_effect(row["n"], sd, alpha=level, power=declared.power, test=declared.test,
                                            alternative="less"), source


def power_summary(rows: list[dict[str, Any]], threshold: float, declared: AnalysisConfig,
                  family: Family) -> dict[str, Any]:
    """The accuracy metric's smallest detectable drop: in any one paired cell (the largest over cells)
    and averaged over all cells (the pooled row), against the threshold."""
    cells = [r["detectable"] for r in rows if r["paired"] and r["cell"] is not None]
    pooled = next((r["detectable"] for r in rows if r["cell"] is None), math.nan)
    known = [d for d in cells if not math.isnan(d)]
    worst = max(known) if known else math.nan
    seeds = sorted({r["n"] for r in rows if r["paired"] and r["cell"] is not None})
    enough = None if not known else bool(worst <= threshold)
    text = "no paired cell: the detectable drop is not known"
    if known and math.isinf(worst):
        text = (f"with {', '.join(map(str, seeds))} paired seed(s) the declared {declared.test} test cannot reach the "
                f"per-comparison level {family.per_comparison_alpha:.2g} in some cell: no drop there, however large, is "
                f"sure to fail this gate; the threshold is {threshold:g} point")
    elif known:
        text = (f"with {', '.join(map(str, seeds))} paired seed(s) this gate detects ({100 * declared.power:.0f} % power, "
                f"one-sided at the per-comparison level {family.per_comparison_alpha:.2g}) a drop of "
                f"{analysis.format_detectable(worst)} points in any one cell")
        if math.isfinite(pooled):
            text += f" and {analysis.format_detectable(pooled)} points averaged over all cells"
        text += f"; the threshold is {threshold:g} point"
        if not enough:
            text += ": a single-cell drop between the two may pass unnoticed"
    return {"threshold": threshold, "level": family.per_comparison_alpha, "power": declared.power,
            "largest_cell_detectable": worst, "pooled_detectable": pooled, "enough": enough, "text": text,
            "family_size": family.size}


def divergence_row(key: str, base: pd.DataFrame, new: pd.DataFrame) -> dict[str, Any] | None:
    """Fisher's exact test that a matched training cell diverges more often in NEW; None when no run diverged."""
    cell = json.loads(key)
    if not analysis.is_training(cell["kind"]):
        return None
    counts = [(analysis.count_outcome(runs, DIVERGED), analysis.count_outcome(runs, DIVERGED)
               + analysis.count_outcome(runs, COMPLETED)) for runs in (new, base)]
    (div_new, total_new), (div_base, total_base) = counts
    if div_new + div_base == 0 or not (total_new and total_base):
        return None
    result = stats.compare_divergence(div_new, total_new, div_base, total_base, alternative="greater")
    return {"cell": cell, "label": cell_label(cell), "diverged_base": div_base, "total_base": total_base,
            "diverged_new": div_new, "total_new": total_new, "test": "Fisher's exact test (one-sided, new more)",
            "p_value": result.p_value}


def judge_divergence(rows: list[dict[str, Any]], declared: AnalysisConfig, alpha: float) -> list[str]:
    """Correct the divergence family; a cell fails when NEW diverges significantly more often."""
    correct_rows("divergence", "divergence", rows, declared.correction, alpha)
    failures = []
    for row in rows:
        row["fails"] = row["significant"]
        if row["fails"]:
            failures.append(f"divergence {row['label']}: {row['diverged_new']} of {row['total_new']} runs diverged "
                            f"(base {row['diverged_base']} of {row['total_base']}), p_adj "
                            f"{analysis.format_p(row['p_adjusted'])}")
    return failures
