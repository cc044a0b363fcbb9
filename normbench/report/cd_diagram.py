"""Critical-difference diagram (Demsar 2006, fig. 1): average ranks on an axis, the Nemenyi critical
difference as a bar, and thick lines joining norms that are not significantly different."""

from __future__ import annotations

import math
from typing import Any

import seaborn as sns
from matplotlib.figure import Figure

from normbench.report.encoding import DPI, to_data_uri

_ROW_HEIGHT = 0.28  # inches per label row


def cd_diagram(ranking: dict[str, Any], palette: dict[str, Any]) -> str | None:
    """Draw one ranking (``section["ranking"]``); None when there is nothing to rank.

    Cliques (the bars) are the context's, gated on the Friedman test: without a rejection they join
    every norm, so the diagram draws no difference the omnibus test did not find.

    Rank 1 (best) is on the left. The better half of the norms is labelled on the left, the
    other half on the right, each on its own row so labels never overlap.
    """
    norms = ranking["norms"]
    k = len(norms)
    if k < 2 or not all(math.isfinite(n["average_rank"]) for n in norms):
        return None
    cd = ranking["critical_difference"]
    cliques = ranking["cliques"]
    left = norms[: (k + 1) // 2]
    right = norms[(k + 1) // 2:]
    rows = max(len(left), len(right))
    # One data unit of 0.3 per row; the figure grows by the same amount so text keeps its size.
    height = 1.6 + _ROW_HEIGHT * (rows + len(cliques))
    with sns.axes_style("white"):
        figure = Figure(figsize=(8.0, height), dpi=DPI)
        # The rank axis takes the middle of the figure; labels run into the side margins (no clipping),
        # which leave ~2.2 inches - room for about 28 characters of a norm label each side.
        ax = figure.add_axes((0.28, 0.02, 0.44, 0.96))
    span = max(k - 1, 1)
    low, high = 1.0, float(k)
    pad = 0.1 * span
    ax.set_xlim(low - pad, high + pad)
    top = 0.0
    ax.axis("off")
    _rank_axis(ax, k, cd, top)

    # Clique bars just under the axis, one row each.
    for i, clique in enumerate(cliques):
        ranks = [n["average_rank"] for n in norms if n["norm_label"] in clique]
        y = top - 0.18 - 0.3 * i
        ax.plot([min(ranks) - 0.03, max(ranks) + 0.03], [y, y], color="black", linewidth=3.0,
                solid_capstyle="round")

    first_row = top - 0.3 - 0.3 * len(cliques)
    for side, group in (("left", left), ("right", right)):
        ordered = group if side == "left" else list(reversed(group))
        for row, norm in enumerate(ordered):
            y = first_row - 0.3 * row
            x = norm["average_rank"]
            colour = palette.get(norm["norm_label"], "grey")
            end = low - 0.2 * span if side == "left" else high + 0.2 * span
            ax.plot([x, x, end], [top, y, y], color=colour, linewidth=1.4, clip_on=False)
            ax.text(end + (-0.03 if side == "left" else 0.03) * span, y,
                    f"{norm['norm_name']} ({x:.2f})", ha="right" if side == "left" else "left",
                    va="center", fontsize=9, clip_on=False)
    ax.set_ylim(first_row - 0.3 * rows, 1.2)
    return to_data_uri(figure)


def _rank_axis(ax: Any, k: int, cd: float, top: float) -> None:
    """Rank axis 1..k with ticks and numbers at height ``top``, and the CD bar above it."""
    low, high = 1.0, float(k)
    ax.plot([low, high], [top, top], color="black", linewidth=1.0)
    for r in range(1, k + 1):
        ax.plot([r, r], [top, top + 0.08], color="black", linewidth=1.0)
        ax.text(r, top + 0.14, str(r), ha="center", va="bottom", fontsize=9)
    ax.text((low + high) / 2, top + 0.5, "average rank (1 = best)", ha="center", va="bottom", fontsize=9,
            color="#444444")
    if math.isfinite(cd):
        ax.plot([low, low + cd], [top + 0.85, top + 0.85], color="black", linewidth=1.6, clip_on=False)
        ax.text(low + cd / 2, top + 0.9, f"CD = {cd:.2f}", ha="center", va="bottom", fontsize=8)
