"""Throughput section of a report, present only when the store holds throughput measurements.

Input is ``ResultFrames.throughput`` (one row per measured spec, ``normbench.frames.THROUGHPUT_COLUMNS``,
summaries of the raw samples already computed by the throughput runner). This module groups what
is there - layers with their roofline fractions and their time against torch's own module for the
same layer ("normbench / native", the wrapper tax; the module's name or why there is none goes
with it), eager and compiled rows (``compile``, with the compile time), whole-model steps, conv+BN
folded vs unfolded - and lists noisy timings and skipped devices as warnings; with no rows it
returns None and the report has no throughput section.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from typing import Any

import numpy as np
import pandas as pd

from normbench.analysis import finite_number, plain_text
from normbench.report.names import norm_display_name, norm_sort_key
from normbench.spec import COMPLETED

LAYER, MODEL, CONV_BN = "layer", "model", "conv_bn"
_TEXT = ("subject", "name", "label", "norm", "norm_label", "dtype", "memory_format", "mode", "operation", "variant",
         "device", "device_name", "method", "outcome", "reason", "bytes_model", "peak_memory_method", "compile",
         "native_module", "native_note")
_NUMBERS = ("batch_size", "numel", "threads", "n_samples", "median_s", "iqr_s", "iqr_over_median", "items_per_s",
            "bytes_moved", "achieved_gbps", "copy_gbps", "roofline_fraction", "peak_memory_bytes", "native_median_s",
            "native_ratio", "compile_time_s")


def throughput_context(throughput: pd.DataFrame | None, warnings_list: list[dict[str, Any]]) -> dict[str, Any] | None:
    """``{"layers", "models", "conv_bn": [rows], "devices": [...], counts}`` or None without measurements.

    Rows are completed measurements in canonical norm order; skipped/failed/undefined ones become
    warnings with their reason, noisy ones (IQR/median > 10 %, flagged by the runner) too.
    """
    if throughput is None or len(throughput) == 0 or "subject" not in throughput.columns:
        return None
    rows = [_row(record) for record in throughput.to_dict("records")]
    done = [r for r in rows if r["outcome"] == COMPLETED]
    for r in rows:
        if r["outcome"] != COMPLETED:
            warnings_list.append({"kind": "note", "message": (
                f"throughput {r['outcome']}: {r['what']} on {r['device']}" + (f": {r['reason']}" if r["reason"] else ""))})
    warnings_list.extend(_noise_notes(done))
    conv = [r for r in done if r["subject"] == CONV_BN]
    layers = sorted((r for r in done if r["subject"] == LAYER), key=_order)
    chart_layers, chart_selection = _headline(layers)
    return {
        "n_measured": len(rows), "n_completed": len(done), "n_noisy": sum(r["noisy"] for r in done),
        "devices": sorted({str(r["device"]) for r in done}),
        "layers": layers,
        "chart_layers": chart_layers, "chart_selection": chart_selection,
        "models": sorted((r for r in done if r["subject"] == MODEL), key=_order),
        "conv_bn": sorted(conv, key=_order),
        "folding": _folding(conv),
    }


NOISY_LISTED = 5  # noisy measurements named one by one; the rest are counted (the tables mark every one)


def _noise_notes(done: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One note per device: how many timings are noisy (IQR/median > 10 %), naming the worst few."""
    notes = []
    for device in sorted({r["device"] for r in done}):
        on_device = [r for r in done if r["device"] == device]
        noisy = sorted((r for r in on_device if r["noisy"]), key=lambda r: -_finite(r["iqr_over_median"]))
        if not noisy:
            continue
        worst = "; ".join(f"{r['what']}: IQR is {100 * r['iqr_over_median']:.0f} % of the median"
                          for r in noisy[:NOISY_LISTED])
        more = f" and {len(noisy) - NOISY_LISTED} more" if len(noisy) > NOISY_LISTED else ""
        notes.append({"kind": "note", "message": (
            f"noisy timing on {device}: {len(noisy)} of {len(on_device)} measurements have an IQR above 10 % of "
            f"their median (marked in the tables; compare their medians with care). Worst: {worst}{more}")})
    return notes


def _headline(layers: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str]:
    """The layer measurements the chart shows: one comparable slice (float32, contiguous, train
    mode, forward + backward where measured, else the most common value; the most threads), so
    that bars differ only in norm and shape."""
    if not layers:
        return [], ""
    choice = {key: _preferred([r[key] for r in layers], preferred) for key, preferred in (
        ("dtype", "float32"), ("memory_format", "contiguous"), ("mode", "train"), ("operation", "forward_backward"),
        ("compile", "eager"))}
    picked = [r for r in layers if all(r[k] == v for k, v in choice.items())]
    threads = [r["threads"] for r in picked if math.isfinite(r["threads"])]
    compiled_too = any(r["compile"] != "eager" for r in layers)  # name the compile mode only when it varies
    text = ", ".join(v for k, v in choice.items() if k != "compile" or compiled_too)
    if threads:
        picked = [r for r in picked if r["threads"] == max(threads)]
        text += f", {max(threads):.0f} thread(s)"
    return picked, text


def _preferred(values: list[str], preferred: str) -> str:
    return preferred if preferred in values else Counter(values).most_common(1)[0][0]


def _row(record: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {key: plain_text(record.get(key)) for key in _TEXT}
    row.update({key: finite_number(record.get(key)) for key in _NUMBERS})
    row["shape"] = _shape(record.get("shape"))
    row["noisy"] = bool(record.get("noisy")) if record.get("noisy") is not None else False
    row["compile"] = row["compile"] or "eager"  # rows stored before compiled variants existed were eager
    row["native"] = row["native_module"] or row["native_note"]  # what the ratio is against, or why none
    row["norm_name"] = norm_display_name(row["norm"], row["norm_label"]) if row["norm"] else row["norm_label"]
    row["median_ms"] = 1000 * row["median_s"] if math.isfinite(row["median_s"]) else math.nan
    subject_name = {LAYER: row["norm_name"], MODEL: f"{row['label'] or row['name']} / {row['norm_name']}",
                    CONV_BN: f"{row['label'] or 'conv+BN'} {row['variant']}"}.get(row["subject"], row["name"])
    row["short"] = " ".join(p for p in (subject_name, "x".join(map(str, row["shape"])) if row["shape"] else "") if p)
    row["what"] = " ".join(str(part) for part in (
        subject_name, "x".join(map(str, row["shape"])) if row["shape"] else "", row["dtype"],
        row["memory_format"] if row["memory_format"] not in ("", "contiguous") else "", row["mode"], row["operation"],
        f"{row['threads']:.0f} thr" if math.isfinite(row["threads"]) and row["device"].startswith("cpu") else "",
        row["compile"] if row["compile"] != "eager" else "")
        if part)
    return row


def _folding(conv: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Folded vs unfolded conv+BN inference at otherwise equal settings: the speedup of folding."""
    pairs: dict[tuple, dict[str, dict[str, Any]]] = {}
    for r in conv:
        key = (r["label"], tuple(r["shape"]), r["dtype"], r["memory_format"], r["device"], r["threads"])
        pairs.setdefault(key, {})[r["variant"]] = r
    out = []
    for (label, shape, dtype, memory_format, device, threads), variants in pairs.items():
        if {"folded", "unfolded"} <= set(variants):
            folded, unfolded = variants["folded"]["median_s"], variants["unfolded"]["median_s"]
            out.append({"label": label, "shape": list(shape), "dtype": dtype, "memory_format": memory_format,
                        "device": device, "threads": threads, "folded_ms": 1000 * folded, "unfolded_ms": 1000 * unfolded,
                        "speedup": unfolded / folded if folded > 0 else math.nan})
    return out


def _order(row: dict[str, Any]) -> tuple:
    # Layers are labelled by their norm: order them canonically (BN first), not alphabetically.
    label = "" if row["subject"] == LAYER else row["label"] or row["name"]
    return (row["device"], label, norm_sort_key(row["norm"], row["norm_label"]),
            row["shape"], row["dtype"], row["memory_format"], row["mode"], row["operation"], row["variant"],
            row["compile"] != "eager", row["compile"])


def _finite(value: float) -> float:
    return value if math.isfinite(value) else 0.0


def _shape(value: Any) -> list[int]:
    if isinstance(value, (list, tuple, np.ndarray)):
        return [int(v) for v in value]
    if isinstance(value, str) and value:
        try:
            return [int(v) for v in json.loads(value)]
        except (ValueError, TypeError):
            return []
    return []
