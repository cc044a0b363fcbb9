"""Probe curves of one report section (activation percentiles, train/eval gap, gradient norms,
smoothness): the hook for ``normbench.probes`` records, empty when none are stored.

The training loop's ``ProbeRecorder`` produces rows ``(step, probe, key, value)`` per run; the store
is expected to hand them over as ``ResultFrames.probes`` with :data:`PROBE_COLUMNS`. Until it does
(or for runs without probes), :func:`section_probes` returns an empty list and the report shows no
probe section at all - nothing is estimated or filled in.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from normbench import stats
from normbench.report.names import norm_display_name

PROBE_COLUMNS = ("run_id", "step", "probe", "key", "value")
MAX_PANELS = 12  # keys x batch sizes drawn per probe; the context keeps every curve regardless


def section_probes(runs: pd.DataFrame, probes: pd.DataFrame | None, labels: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Per probe recorded by the section's contributing runs: mean over seeds with a 95 % t band at
    each step, per (key, batch size, norm). ``[]`` when ``probes`` is absent, malformed or empty."""
    if probes is None or len(probes) == 0 or not set(PROBE_COLUMNS) <= set(probes.columns):
        return []
    contributing = runs[runs["in_curves"].to_numpy(dtype=bool)]
    rows = probes[probes["run_id"].isin(contributing["run_id"])]
    if rows.empty:
        return []
    rows = rows.assign(step=pd.to_numeric(rows["step"], errors="coerce"),
                       value=pd.to_numeric(rows["value"], errors="coerce").astype(float)).dropna(subset=["step"])
    info = contributing.drop_duplicates("run_id").set_index("run_id")
    rows = rows.assign(batch_size=info.loc[rows["run_id"], "batch_size"].to_numpy(),
                       norm_label=info.loc[rows["run_id"], "norm_label"].to_numpy())
    out = []
    for probe, by_probe in rows.groupby("probe", sort=True):
        curves = []
        for (key, batch_size), group in by_probe.groupby(["key", "batch_size"], sort=True):
            grid = group.pivot_table(index="run_id", columns="step", values="value", aggfunc="last")
            run_labels = info.loc[grid.index, "norm_label"].to_numpy()
            steps = [int(s) if float(s).is_integer() else float(s) for s in grid.columns]
            for norm, label in labels:
                values = grid.to_numpy(dtype=float)[run_labels == label]
                if values.shape[0] == 0:
                    continue
                band = stats.mean_confidence_band(values)
                curves.append({"key": str(key), "batch_size": int(batch_size), "norm_label": label,
                               "norm_name": norm_display_name(norm, label), "step": steps,
                               "mean": band["mean"].tolist(), "low": band["low"].tolist(),
                               "high": band["high"].tolist(), "n": [int(c) for c in band["n"]]})
        out.append({"probe": str(probe), "keys": sorted({c["key"] for c in curves}), "curves": curves})
    return out
