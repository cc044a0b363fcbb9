"""`normbench compare`'s wrapper-tax gate: is a normbench layer slower than torch's own module?

A throughput measurement of a layer with a torch twin (``normbench/throughput/native.py``) stores
two raw series timed in alternating blocks of one process: ``subject`` (normbench's layer) and
``native`` (torch's module), sample i of each from the same round. The tax of a layer is
normbench / native time per call. It is a property of NEW alone (both series on one machine, in
one process), so it gates on any runner, unlike the slowdown between two result sets.

Declared test, no pre-test: the paired t-test on the per-round log ratios
``log(subject_i) - log(native_i)``, one-sided against ``log(1 + native_tax)`` (H0: the tax is at
most the threshold; rejecting says the layer costs more than ``1 + native_tax`` times torch's own
module). The rows are one family corrected together (the declared correction). Off unless
``--fail-on native_tax=…`` is given.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from normbench import analysis, stats
from normbench.analysis_config import AnalysisConfig
from normbench.family import correct_rows
from normbench.spec import COMPLETED

SUBJECT, NATIVE = "subject", "native"  # the two sample series a layer measurement stores


def native_tax_rows(frames: Any, label: Any) -> list[dict[str, Any]]:
    """One row per completed measurement of NEW with a native twin: the tax (ratio of median
    times), its per-round log ratios and the one-sided test against no tax yet (p filled by
    :func:`judge_native_tax`). ``label(identity)`` names a measurement as the other rows do."""
    table, samples = frames.throughput, frames.throughput_samples
    if table.empty or samples.empty or "native_ratio" not in table.columns:
        return []
    series = {(str(k[0]), str(k[1])): g.sort_values("sample_index")["time_s"].to_numpy(dtype=float)
              for k, g in samples.groupby(["spec_id", "series"])}
    rows = []
    for record in table[table["outcome"] == COMPLETED].to_dict("records"):
        own, twin = series.get((str(record["spec_id"]), SUBJECT)), series.get((str(record["spec_id"]), NATIVE))
        if own is None or twin is None or min(own.size, twin.size) < 2:
            continue
        n = min(own.size, twin.size)
        log_ratio = np.log(own[:n]) - np.log(twin[:n])
        rows.append({"label": label(record), "native_module": analysis.plain_value(record.get("native_module")),
                     "ratio": float(np.median(own) / np.median(twin)), "n": int(n),
                     "log_ratios": [float(v) for v in log_ratio]})
    return rows


def judge_native_tax(rows: list[dict[str, Any]], threshold: float, declared: AnalysisConfig,
                     alpha: float) -> list[str]:
    """Test each row's tax against ``1 + threshold``, correct the rows as one family, and return
    a failure line for each significant one."""
    bound = math.log1p(threshold)
    for row in rows:
        shifted = np.asarray(row["log_ratios"]) - bound
        test = stats.paired_test(shifted, np.zeros_like(shifted), test="t", alternative="greater")
        row.update(threshold=threshold, test="paired t on log(normbench / native), one-sided",
                   statistic=test.statistic, p_value=test.p_value)
    correct_rows("native tax", "native tax", rows, declared.correction, alpha)
    failures = []
    for row in rows:
        row["fails"] = row["significant"]
        if row["fails"]:
            failures.append(f"native tax {row['label']}: normbench / {row['native_module']} = {row['ratio']:.3f} "
                            f"> {1 + threshold:g} (p_adj {analysis.format_p(row['p_adjusted'])}, n = {row['n']})")
    return failures

