"""normbench: which normalization layer should I use here? Evidence from declared suites.

The Python API is imported on first use (``import normbench`` stays free of torch, which the
statistics modules never import): ``normbench.run``, ``normbench.load``, ``normbench.validate``
and ``normbench.swap_norms`` / ``normbench.SwapReport``; ``normbench.api`` also has ``report``,
``compare`` and ``execute`` (``normbench.report`` and ``normbench.compare`` name subpackages).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "run": "normbench.api",
    "load": "normbench.api",
    "validate": "normbench.api",
    "swap_norms": "normbench.swap",
    "SwapReport": "normbench.swap",
}
__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'normbench' has no attribute {name!r}")
