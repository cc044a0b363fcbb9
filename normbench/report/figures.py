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

import base64
import io
import math
from typing import Any

import numpy as np
import seaborn as sns
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

DPI = 96
PANEL_COLUMNS = 4
_PNG_METADATA = {"Software": None}  # no version string: re-rendering elsewhere gives the same bytes
# A t band around a mean of bounded accuracies can cross 0 or 100 % when seeds disagree wildly (a
# diverged seed); drawing beyond the possible range only squashes the other curves, so bands are
# clipped to it when drawn. The context keeps the unclipped interval.
ACCURACY_RANGE = (0.0, 100.0)


def norm_palette(norms: list[dict[str, str]]) -> dict[str, Any]:
    """Fixed colour per norm label (context ``norms`` order), shared by every figure in a report."""
    colours = sns.color_palette("colorblind", n_colors=max(len(norms), 1))
    return {norm["label"]: colours[i % len(colours)] for i, norm in enumerate(norms)}


def to_data_uri(figure: Figure) -> str:
    """Encode ``figure`` as a ``data:image/png;base64,...`` string."""
    buffer = io.BytesIO()
    FigureCanvasAgg(figure).print_png(buffer, metadata=_PNG_METADATA)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def convergence_figure(section: dict[str, Any], palette: dict[str, Any]) -> str | None:
    """Mean test accuracy vs step per norm with its 95 % band, one panel per batch size."""
    batch_sizes = [b for b in section["batch_sizes"] if any(c["batch_size"] == b for c in section["curves"])]
    if not batch_sizes:
        return None
    columns = min(PANEL_COLUMNS, len(batch_sizes))
    rows = math.ceil(len(batch_sizes) / columns)
    legend_width = _legend_width(section)
    with sns.axes_style("whitegrid"):
        figure = _figure(3.2 * columns, 2.6 * rows, legend_width)
        axes = figure.subplots(rows, columns, squeeze=False, sharey=True,
                               gridspec_kw={"wspace": 0.08, "hspace": 0.5})
    for ax in axes.flat[len(batch_sizes):]:
        ax.set_visible(False)
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


def accuracy_vs_batch_figure(section: dict[str, Any], palette: dict[str, Any]) -> str | None:
    """Final test accuracy vs batch size (log2 axis) per norm, mean with its bootstrap CI band."""
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
    ax.set_xscale("log", base=2)
    ax.set_xticks(section["batch_sizes"], [str(b) for b in section["batch_sizes"]])
    ax.minorticks_off()
    ax.set_xlabel("batch size (log2)")
    ax.set_ylabel("final test accuracy (%)")
    _legend(figure, ax, legend_width)
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


def _legend(figure: Figure, ax: Any, legend_width: float) -> None:
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        width, height = figure.get_size_inches()
        figure.legend(handles, labels, loc="upper left", frameon=False, title="norm", fontsize=9,
                      bbox_to_anchor=(1 - (legend_width + _MARGINS["right"] - 0.1) / width,
                                      1 - _MARGINS["top"] / height))


def report_figures(context: dict[str, Any]) -> dict[str, dict[str, str | None]]:
    """Every figure of a report: ``{section id: {"convergence": uri, "accuracy_vs_batch": uri}}``.

    Two figures per section whatever the number of runs, so drawing cost grows with the number of
    sections, not runs.
    """
    palette = norm_palette(context["norms"])
    return {
        section["id"]: {
            "convergence": convergence_figure(section, palette),
            "accuracy_vs_batch": accuracy_vs_batch_figure(section, palette),
        }
        for section in context["sections"]
    }
