"""Figures as self-contained PNG data URIs, byte-identical for the same drawing."""

from __future__ import annotations

import base64
import io

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

DPI = 96
_PNG_METADATA = {"Software": None}  # no version string: re-rendering elsewhere gives the same bytes


def to_data_uri(figure: Figure) -> str:
    """Encode ``figure`` as a ``data:image/png;base64,...`` string."""
    buffer = io.BytesIO()
    FigureCanvasAgg(figure).print_png(buffer, metadata=_PNG_METADATA)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
