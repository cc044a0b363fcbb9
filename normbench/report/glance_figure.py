"""The answer at a glance as a heatmap: norms x batch sizes, coloured by mean final accuracy, each cell
labelled with its mean and its mark (best / equivalent to best / worse / inconclusive)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from normbench.report.encoding import DPI, to_data_uri

# Short cell labels; the caption spells them out. Plain text: every font draws it.
MARK_LABELS = {"best": "best", "equivalent to best": "≈ best", "worse": "worse", "inconclusive": "?"}
_OUTLINE = {"best": ("black", 2.6), "equivalent to best": ("black", 1.2)}


def glance_figure(section: dict[str, Any]) -> str | None:
    """Heatmap of one section's glance cells; None when no cell has a mean accuracy."""
    norms, sizes = section["norms"], section["batch_sizes"]
    cells = {(c["norm_label"], c["batch_size"]): c for c in section["glance"].get("cells", [])}
    means = np.array([[cells.get((n["label"], b), {}).get("mean", math.nan) for b in sizes] for n in norms], dtype=float)
    if not np.isfinite(means).any():
        return None
    left = 0.3 + 0.075 * max(len(n["name"]) for n in norms)  # inches for the norm names
    width = left + 1.05 * len(sizes) + 1.1
    height = 0.9 + 0.42 * len(norms)
    with sns.axes_style("white"):
        figure = Figure(figsize=(width, height), dpi=DPI)
        figure.subplots_adjust(left=left / width, right=1 - 1.1 / width, top=1 - 0.45 / height, bottom=0.08 / height)
        ax = figure.subplots()
    finite = means[np.isfinite(means)]
    image = ax.imshow(np.ma.masked_invalid(means), cmap="viridis", aspect="auto",
                      vmin=float(finite.min()), vmax=float(max(finite.max(), finite.min() + 1e-9)))
    for i, norm in enumerate(norms):
        for j, b in enumerate(sizes):
            _annotate(ax, i, j, cells.get((norm["label"], b)), image)
    ax.set_xticks(range(len(sizes)), [f"batch {b}" for b in sizes], fontsize=9)
    ax.xaxis.tick_top()
    ax.set_yticks(range(len(norms)), [n["name"] for n in norms], fontsize=9)
    ax.tick_params(length=0)
    colorbar = figure.colorbar(image, ax=ax, fraction=0.08, pad=0.04)
    colorbar.set_label("mean final test accuracy (%)", fontsize=8)
    return to_data_uri(figure)


def _annotate(ax: Any, i: int, j: int, cell: dict[str, Any] | None, image: Any) -> None:
    if cell is None or not math.isfinite(cell["mean"]):
        text = cell["empty"].replace("every run ", "") if cell else "n/a"
        ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, facecolor="#eeeeee", edgecolor="white"))
        ax.text(j, i, text, ha="center", va="center", fontsize=8, color="#555555")
        return
    shade = image.norm(cell["mean"])
    colour = "black" if shade > 0.6 else "white"
    ax.text(j, i, f"{cell['mean']:.1f}\n{MARK_LABELS[cell['mark']]}", ha="center", va="center", fontsize=8,
            color=colour, fontweight="bold" if cell["mark"] == "best" else "normal")
    if cell["mark"] in _OUTLINE:
        edge, width = _OUTLINE[cell["mark"]]
        ax.add_patch(Rectangle((j - 0.47, i - 0.47), 0.94, 0.94, fill=False, edgecolor=edge, linewidth=width))
