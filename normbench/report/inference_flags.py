"""BLN's inference flags in one report section: the 16-combination table, the pick on validation, and
what picking on the test set (as Ziaee & Cano did) would have claimed.

Per BLN run the store holds its model under all 16 combinations (normbench/flag_search.py). The
report picks, per run, the combination with the lowest **validation** loss and reports its test
accuracy (the honest number), and, for comparison, the combination with the lowest **test** loss
(the authors' rule: their reported BLN row is the test-loss minimum; ties go to the first row in
their order, TTTT ... FFFF). The difference, test-picked minus validation-picked test accuracy per
seed, is the optimism of choosing on the test set. All of this is description - means with
t-intervals over seeds, no hypothesis of the report's family.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from normbench import stats
from normbench.analysis import ACCURACY_SCALE, finite_number
from normbench.report.names import norm_display_name

FLAG_COLUMNS = ("batch_moving_mean", "batch_moving_var", "feature_moving_mean", "feature_moving_var")


def flags_text(row: Any) -> str:
    """``TTFF``: the four flags in the authors' order (T = population statistic at inference)."""
    return "".join("T" if bool(row[flag]) else "F" for flag in FLAG_COLUMNS)


def ordered_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """A run's 16 rows in the authors' order (TTTT first, the first flag varying slowest)."""
    return rows.sort_values(list(FLAG_COLUMNS), ascending=False, kind="stable").reset_index(drop=True)


def pick(rows: pd.DataFrame, loss_column: str) -> pd.Series | None:
    """The row with the lowest finite ``loss_column``, the first in the authors' order on ties; None if none."""
    ordered = ordered_rows(rows)
    losses = pd.to_numeric(ordered[loss_column], errors="coerce").to_numpy(dtype=float)
    finite = np.isfinite(losses)
    if not finite.any():
        return None
    return ordered.iloc[int(np.flatnonzero(losses == losses[finite].min())[0])]


def section_flags(runs: pd.DataFrame, flags: pd.DataFrame | None, labels: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Per (batch size, norm) cell with flag tables: picks per seed, their summaries, the 16-row table."""
    if flags is None or flags.empty:
        return []
    mine = flags[flags["run_id"].isin(set(runs["run_id"]))]
    if mine.empty:
        return []
    info = runs.drop_duplicates("run_id").set_index("run_id")
    order = {label: i for i, (_, label) in enumerate(labels)}
    cells = []
    keys = sorted({(int(info.at[r, "batch_size"]), str(info.at[r, "norm_label"])) for r in mine["run_id"]},
                  key=lambda k: (order.get(k[1], 99), k[0]))
    for batch_size, label in keys:
        ids = sorted(r for r in set(mine["run_id"])
                     if int(info.at[r, "batch_size"]) == batch_size and str(info.at[r, "norm_label"]) == label)
        cells.append(_cell(mine, info, ids, batch_size, label))
    return cells


def _cell(flags: pd.DataFrame, info: pd.DataFrame, ids: list[str], batch_size: int, label: str) -> dict[str, Any]:
    seeds = []
    for run_id in ids:
        rows = flags[flags["run_id"] == run_id]
        by_val, by_test = pick(rows, "val_loss"), pick(rows, "test_loss")
        seeds.append({
            "seed": int(info.at[run_id, "seed"]), "run_id": run_id,
            "configured": finite_number(info.at[run_id, "final_test_accuracy"]) * ACCURACY_SCALE,
            "validation_pick": flags_text(by_val) if by_val is not None else None,
            "validation_picked": _accuracy(by_val),
            "test_pick": flags_text(by_test) if by_test is not None else None,
            "test_picked": _accuracy(by_test),
        })
    for seed in seeds:
        seed["optimism"] = seed["test_picked"] - seed["validation_picked"]
    norm = str(info.at[ids[0], "norm"])
    return {
        "batch_size": batch_size, "norm_label": label, "norm_name": norm_display_name(norm, label),
        "has_validation": any(s["validation_pick"] is not None for s in seeds),
        "seeds": seeds,
        "summary": {key: _interval([s[key] for s in seeds])
                    for key in ("configured", "validation_picked", "test_picked", "optimism")},
        "table": _table(flags[flags["run_id"].isin(ids)], seeds),
    }


def _accuracy(row: pd.Series | None) -> float:
    return math.nan if row is None else finite_number(row["test_accuracy"]) * ACCURACY_SCALE


def _interval(values: list[float]) -> dict[str, Any]:
    finite = np.array([v for v in values if math.isfinite(v)], dtype=float)
    interval = stats.mean_interval(finite)
    return {"n": interval.n, "mean": interval.mean, "ci_low": interval.ci_low, "ci_high": interval.ci_high}


def _table(flags: pd.DataFrame, seeds: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """16 rows in the authors' order: mean validation and test accuracy over seeds, and picks."""
    flags = flags.assign(flags=[flags_text(row) for _, row in flags.iterrows()])
    out = []
    for text in ordered_rows(flags.drop_duplicates("flags"))["flags"]:
        rows = flags[flags["flags"] == text]
        val = pd.to_numeric(rows["val_accuracy"], errors="coerce").to_numpy(dtype=float) * ACCURACY_SCALE
        test = pd.to_numeric(rows["test_accuracy"], errors="coerce").to_numpy(dtype=float) * ACCURACY_SCALE
        out.append({
            "flags": text,
            "val_accuracy": float(np.nanmean(val)) if np.isfinite(val).any() else math.nan,
            "test_accuracy": float(np.nanmean(test)) if np.isfinite(test).any() else math.nan,
            "test_loss_finite": int(np.isfinite(pd.to_numeric(rows["test_loss"], errors="coerce")).sum()),
            "validation_picks": sum(s["validation_pick"] == text for s in seeds),
            "test_picks": sum(s["test_pick"] == text for s in seeds),
        })
    return out
