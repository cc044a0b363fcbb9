"""Report figures drawn from the context dict (never from frames), returned as PNG data URIs.

Figures are built on ``matplotlib.figure.Figure`` with the Agg canvas directly instead of pyplot:
no global figure registry to leak or close, no change to the process-wide backend of whoever
imported normbench, and the same context always gives byte-identical PNGs. Seaborn provides the
style and the colour-blind palette; lines are drawn with plain ``Axes.plot`` because
``seaborn.lineplot`` costs ~20 ms per call in DataFrame bookkeeping (a 1,000-run report draws
hundreds of lines) and would only re-aggregate numbers the context already holds. Bands are the
context's own intervals, so a figure can never disagree with the tables next to it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import seaborn as sns
from matplotlib import ticker
from matplotlib.figure import Figure

from normbench.report.cd_diagram import cd_diagram
from normbench.report.encoding import DPI, to_data_uri
from normbench.report.glance_figure import glance_figure
from normbench.report.names import norm_sort_key
from normbench.report.probes import MAX_PANELS as MAX_PROBE_PANELS

PANEL_COLUMNS = 4
# A t band around a mean of bounded accuracies can cross 0 or 100 % when seeds disagree wildly (a
# diverged seed); drawing beyond the possible range only squashes the other curves, so bands are
# clipped to it when drawn. The context keeps the unclipped interval.
ACCURACY_RANGE = (0.0, 100.0)


def norm_palette(norms: list[dict[str, str]]) -> dict[str, Any]:
    """Fixed colour per norm label (context ``norms`` order), shared by every figure in a report."""
    colours = sns.color_palette("colorblind", n_colors=max(len(norms), 1))
    return {norm["label"]: colours[i % len(colours)] for i, norm in enumerate(norms)}


def convergence_figure(section: dict[str, Any], palette: dict[str, Any]) -> str | None:
    """Mean test accuracy vs step per norm with its 95 % band, one panel per batch size."""
    batch_sizes = [b for b in section["batch_sizes"] if any(c["batch_size"] == b for c in section["curves"])]
    if not batch_sizes:
        return None
    legend_width = _legend_width(section)
    figure, axes = _panels(len(batch_sizes), legend_width, sharey=True, gridspec_kw={"wspace": 0.08, "hspace": 0.5})
    columns = axes.shape[1]
    for index, (ax, batch_size) in enumerate(zip(axes.flat, batch_sizes)):
        for curve in (c for c in section["curves"] if c["batch_size"] == batch_size):
            colour = palette.get(curve["norm_label"], "grey")
            ax.plot(curve["step"], curve["mean"], color=colour, label=curve["norm_name"], linewidth=1.6)
            ax.fill_between(curve["step"], _clipped(curve["low"]), _clipped(curve["high"]), color=colour,
                            alpha=0.18, linewidth=0)
        ax.set_title(f"batch size {batch_size}", fontsize=10)
        ax.set_xlabel("step")
        ax.set_ylabel("test accuracy (%)" if index % columns == 0 else "")
    _legend(figure, axes.flat[0], legend_width)
    return to_data_uri(figure)


def training_loss_figure(section: dict[str, Any], palette: dict[str, Any]) -> str | None:
    """Mean training loss per epoch per norm with its 95 % band, one panel per batch size; the section's
    published runs (its declared reference) dashed in the colour of the norm they map to."""
    bands = section.get("training_loss") or []
    published = (section.get("published") or {}).get("curves") or []
    batch_sizes = sorted({c["batch_size"] for c in bands} | {c["batch_size"] for c in published})
    if not batch_sizes:
        return None
    legend_width = _legend_width(section)
    figure, axes = _panels(len(batch_sizes), legend_width, gridspec_kw={"wspace": 0.25, "hspace": 0.5})
    columns = axes.shape[1]
    for index, (ax, batch_size) in enumerate(zip(axes.flat, batch_sizes)):
        for band in (c for c in bands if c["batch_size"] == batch_size):
            colour = palette.get(band["norm_label"], "grey")
            ax.plot(band["epoch"], band["mean"], color=colour, label=band["norm_name"], linewidth=1.6)
            ax.fill_between(band["epoch"], band["low"], band["high"], color=colour, alpha=0.18, linewidth=0)
        for curve in (c for c in published if c["batch_size"] == batch_size):
            ax.plot(curve["epoch"], curve["train_loss"], color=palette.get(curve["norm_label"], "grey"),
                    linestyle="--", linewidth=1.3, label=None)
        ax.set_title(f"batch size {batch_size}", fontsize=10)
        ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel("training loss" if index % columns == 0 else "")
    if published:
        axes.flat[0].plot([], [], color="black", linestyle="--", linewidth=1.3, label="published")
    _legend(figure, axes.flat[0], legend_width)
    return to_data_uri(figure)


def accuracy_vs_batch_figure(section: dict[str, Any], palette: dict[str, Any]) -> str | None:
    """Final test accuracy vs batch size (log2 axis) per norm, mean with its 95 % t-interval band."""
    if not section["summaries"]:
        return None
    legend_width = _legend_width(section)
    with sns.axes_style("whitegrid"):
        figure = _figure(5.2, 3.4, legend_width)
        ax = figure.subplots()
    for norm in section["norms"]:
        cells = [c for c in section["summaries"] if c["norm_label"] == norm["label"] and c["n"] > 0]
        if not cells:
            continue
        colour = palette.get(norm["label"], "grey")
        x = [c["batch_size"] for c in cells]
        ax.plot(x, [c["mean"] for c in cells], color=colour, label=norm["name"], marker="o", linewidth=1.6)
        # NaN interval ends (n = 1) leave gaps in the band rather than a misleading zero-width one.
        ax.fill_between(x, _clipped([c["ci_low"] for c in cells]), _clipped([c["ci_high"] for c in cells]),
                        color=colour, alpha=0.18, linewidth=0)
    _mark_critical_batch_sizes(ax, section, palette)
    ax.set_xscale("log", base=2)
    ax.set_xticks(section["batch_sizes"], [str(b) for b in section["batch_sizes"]])
    ax.minorticks_off()
    ax.set_xlabel("batch size (log2)")
    ax.set_ylabel("final test accuracy (%)")
    _legend(figure, ax, legend_width)
    return to_data_uri(figure)


def _mark_critical_batch_sizes(ax: Any, section: dict[str, Any], palette: dict[str, Any]) -> None:
    """A large cross on each norm's critical batch size (the largest batch size whose drop from the reference
    exceeds the margin with significance)."""
    labelled = False
    for entry in section.get("batch_failure", []):
        critical = entry["critical_batch_size"]
        cell = next((c for c in section["summaries"]
                     if c["norm_label"] == entry["norm_label"] and c["batch_size"] == critical), None)
        if critical is None or cell is None:
            continue
        ax.plot([critical], [cell["mean"]], linestyle="none", marker="X", markersize=13,
                markerfacecolor=palette.get(entry["norm_label"], "grey"), markeredgecolor="black",
                markeredgewidth=1.0, zorder=5, label=None if labelled else "critical batch size")
        labelled = True


def pareto_figure(section: dict[str, Any], palette: dict[str, Any]) -> str | None:
    """Mean final accuracy against median training samples/s (log axis), Pareto front joined."""
    points = section["pareto"]["points"]
    if not points:
        return None
    legend_width = _legend_width(section)
    with sns.axes_style("whitegrid"):
        figure = _figure(5.2, 3.4, legend_width)
        ax = figure.subplots()
    front = sorted((p for p in points if p["on_front"]), key=lambda p: p["samples_per_s"])
    if front:
        # The front as a staircase: everything below-left of it is beaten on both axes.
        ax.step([p["samples_per_s"] for p in front], [p["accuracy"] for p in front], where="post",
                color="black", linewidth=1.0, linestyle="--", label="Pareto front", zorder=1)
    for norm in section["norms"]:
        mine = [p for p in points if p["norm_label"] == norm["label"]]
        if not mine:
            continue
        colour = palette.get(norm["label"], "grey")
        ax.scatter([p["samples_per_s"] for p in mine], [p["accuracy"] for p in mine], color=colour,
                   label=norm["name"], s=[60 if p["on_front"] else 28 for p in mine],
                   edgecolors=["black" if p["on_front"] else colour for p in mine], zorder=3)
        for p in mine:
            ax.annotate(f"b{p['batch_size']}", (p["samples_per_s"], p["accuracy"]), xytext=(4, 3),
                        textcoords="offset points", fontsize=7, color="#444444")
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f"{value:,.0f}"))
    ax.xaxis.set_minor_formatter(ticker.NullFormatter())
    ax.set_xlabel("training samples / s (median over seeds, log)")
    ax.set_ylabel("final test accuracy (%)")
    _legend(figure, ax, legend_width)
    return to_data_uri(figure)


MAX_BARS = 40  # rows per throughput chart; the tables list every measurement


def throughput_figures(throughput: dict[str, Any] | None) -> dict[str, str | None]:
    """Bar charts of a throughput section: layers (roofline fraction, or median time when no copy
    bandwidth was measured) and model steps (samples per second)."""
    if not throughput:
        return {"layers": None, "models": None}
    rows = throughput["layers"] + throughput["models"]
    labels = sorted({(r["norm"], r["norm_label"]) for r in rows}, key=lambda p: norm_sort_key(*p))
    palette = norm_palette([{"label": label} for _, label in labels])
    layers = throughput.get("chart_layers", throughput["layers"])[:MAX_BARS]
    roofline = any(math.isfinite(r["roofline_fraction"]) for r in layers)
    return {
        "layers": _bars(layers, [100 * r["roofline_fraction"] if roofline else r["median_ms"] for r in layers],
                        "% of copy bandwidth (roofline)" if roofline else "median time per call (ms)", palette,
                        # The caption names the slice shown (dtype, layout, mode, pass, threads).
                        label=lambda r: f"{r['short']} ({r['device']})"),
        "models": _bars(throughput["models"][:MAX_BARS], [r["items_per_s"] for r in throughput["models"][:MAX_BARS]],
                        "samples / s", palette),
    }


def _bars(rows: list[dict[str, Any]], values: list[float], xlabel: str, palette: dict[str, Any],
          label=lambda r: f"{r['what']} ({r['device']})") -> str | None:
    if not rows:
        return None
    height = 0.9 + 0.24 * len(rows)
    with sns.axes_style("whitegrid"):
        figure = Figure(figsize=(9.0, height), dpi=DPI)
        # Long row labels ("BN 32x64x32x32 float32 train forward_backward") need the left half.
        figure.subplots_adjust(left=0.45, right=0.97, top=1 - 0.3 / height, bottom=0.6 / height)
        ax = figure.subplots()
    positions = np.arange(len(rows))[::-1]
    ax.barh(positions, np.nan_to_num(values), color=[palette.get(r["norm_label"], "grey") for r in rows], height=0.7)
    ax.set_yticks(positions, [label(r) for r in rows], fontsize=8)
    ax.set_xlabel(xlabel)
    ax.set_ylim(-0.6, len(rows) - 0.4)
    return to_data_uri(figure)


def probe_figure(section: dict[str, Any], probe: dict[str, Any], palette: dict[str, Any]) -> str | None:
    """Mean probe value over steps per norm with its 95 % band; one panel per (key, batch size)."""
    panels = sorted({(c["key"], c["batch_size"]) for c in probe["curves"]})[:MAX_PROBE_PANELS]
    if not panels:
        return None
    legend_width = _legend_width(section)
    figure, axes = _panels(len(panels), legend_width, gridspec_kw={"wspace": 0.35, "hspace": 0.55})
    for ax, (key, batch_size) in zip(axes.flat, panels):
        for curve in (c for c in probe["curves"] if (c["key"], c["batch_size"]) == (key, batch_size)):
            colour = palette.get(curve["norm_label"], "grey")
            ax.plot(curve["step"], curve["mean"], color=colour, label=curve["norm_name"], linewidth=1.4)
            ax.fill_between(curve["step"], curve["low"], curve["high"], color=colour, alpha=0.18, linewidth=0)
        ax.set_title(f"{probe['probe']}: {key}, batch size {batch_size}", fontsize=9)
        ax.set_xlabel("step")
    _legend(figure, axes.flat[0], legend_width)
    return to_data_uri(figure)


def _clipped(values: list[float]) -> np.ndarray:
    return np.clip(np.asarray(values, dtype=float), *ACCURACY_RANGE)


# Fixed margins in inches instead of constrained layout: the layout solver measured ~0.35 s per
# figure (most of a 1,000-run report's drawing time) to place the same few labels every time.
_MARGINS = {"left": 0.65, "right": 0.15, "bottom": 0.55, "top": 0.35}


def _legend_width(section: dict[str, Any]) -> float:
    longest = max((len(n["name"]) for n in section["norms"]), default=4)
    return 0.7 + 0.075 * max(longest, 4)


def _figure(plot_width: float, plot_height: float, legend_width: float) -> Figure:
    width = plot_width + legend_width + _MARGINS["left"] + _MARGINS["right"]
    height = plot_height + _MARGINS["bottom"] + _MARGINS["top"]
    figure = Figure(figsize=(width, height), dpi=DPI)
    figure.subplots_adjust(left=_MARGINS["left"] / width, right=1 - (legend_width + _MARGINS["right"]) / width,
                           bottom=_MARGINS["bottom"] / height, top=1 - _MARGINS["top"] / height)
    return figure


def _panels(count: int, legend_width: float, **subplots: Any) -> tuple[Figure, np.ndarray]:
    # One panel per item, PANEL_COLUMNS to a row; the unused panels of the last row are hidden.
    columns = min(PANEL_COLUMNS, count)
    rows = math.ceil(count / columns)
    with sns.axes_style("whitegrid"):
        figure = _figure(3.2 * columns, 2.6 * rows, legend_width)
        axes = figure.subplots(rows, columns, squeeze=False, **subplots)
    for ax in axes.flat[count:]:
        ax.set_visible(False)
    return figure, axes


def _legend(figure: Figure, ax: Any, legend_width: float) -> None:
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        width, height = figure.get_size_inches()
        figure.legend(handles, labels, loc="upper left", frameon=False, title="norm", fontsize=9,
                      bbox_to_anchor=(1 - (legend_width + _MARGINS["right"] - 0.1) / width,
                                      1 - _MARGINS["top"] / height))


def report_figures(context: dict[str, Any]) -> dict[str, Any]:
    """Every figure of a report as data URIs (None where there is nothing to draw).

    ``{section id: {"glance", "convergence", "accuracy_vs_batch", "cd_diagram", "pareto", "probes": {probe: uri}},
    "throughput": {"layers": uri, "models": uri}}``. A fixed number of figures per section whatever
    the number of runs, so drawing cost grows with the number of sections, not runs.
    """
    palette = norm_palette(context["norms"])
    figures: dict[str, Any] = {
        section["id"]: {
            "glance": glance_figure(section),
            "convergence": convergence_figure(section, palette),
            "training_loss": training_loss_figure(section, palette),
            "accuracy_vs_batch": accuracy_vs_batch_figure(section, palette),
            "cd_diagram": cd_diagram(section["ranking"], palette),
            "pareto": pareto_figure(section, palette),
            "probes": {probe["probe"]: probe_figure(section, probe, palette) for probe in section["probes"]},
        }
        for section in context["sections"]
    }
    figures["throughput"] = throughput_figures(context.get("throughput"))
    return figures
