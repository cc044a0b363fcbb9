"""Derived throughput tables for reports: a norm's per-iteration cost, and what folding conv+BN saves.

Pure pandas on `ResultFrames.throughput` (THROUGHPUT_COLUMNS); no torch. Only `completed` rows
enter; a cell whose reference row is missing (e.g. the `none` model was skipped) is left out.
"""

from __future__ import annotations

import pandas as pd

# What must match for two model rows to differ only in their norm.
_MODEL_CELL = ["suite", "label", "shape", "dtype", "memory_format", "operation", "device", "threads"]
_CONV_CELL = ["suite", "label", "shape", "dtype", "memory_format", "device", "threads"]


def norm_step_cost(frame: pd.DataFrame, reference: str = "none") -> pd.DataFrame:
    """Per model cell and norm: median step time, and its ratio to the same model with `reference`.

    Columns: the cell keys, norm_label, median_s, reference_median_s, ratio (> 1: the norm costs
    time), extra_s (median_s − reference_median_s), noisy (either row flagged).
    """
    models = frame[(frame["subject"] == "model") & (frame["outcome"] == "completed")]
    base = models[models["norm"] == reference][_MODEL_CELL + ["median_s", "noisy"]]
    base = base.rename(columns={"median_s": "reference_median_s", "noisy": "reference_noisy"})
    merged = models[_MODEL_CELL + ["norm_label", "median_s", "noisy"]].merge(base, on=_MODEL_CELL, how="inner")
    merged["ratio"] = merged["median_s"] / merged["reference_median_s"]
    merged["extra_s"] = merged["median_s"] - merged["reference_median_s"]
    merged["noisy"] = merged["noisy"].fillna(False).astype(bool) | merged["reference_noisy"].fillna(False).astype(bool)
    return merged.drop(columns="reference_noisy").reset_index(drop=True)


def folding_speedup(frame: pd.DataFrame) -> pd.DataFrame:
    """Per conv+BN case: unfolded and folded median, and speedup = unfolded / folded (> 1: folding helps)."""
    convs = frame[(frame["subject"] == "conv_bn") & (frame["outcome"] == "completed")]
    wide = convs.pivot_table(index=_CONV_CELL, columns="variant", values="median_s", aggfunc="first")
    if wide.empty or not {"folded", "unfolded"} <= set(wide.columns):
        return pd.DataFrame(columns=[*_CONV_CELL, "unfolded_s", "folded_s", "speedup"])
    wide = wide.dropna(subset=["folded", "unfolded"]).reset_index()
    wide = wide.rename(columns={"unfolded": "unfolded_s", "folded": "folded_s"})
    wide["speedup"] = wide["unfolded_s"] / wide["folded_s"]
    wide.columns.name = None
    return wide[[*_CONV_CELL, "unfolded_s", "folded_s", "speedup"]]
