"""Published results shipped with normbench, for the "published vs ours" comparisons of the report.

Each reference is a YAML file in this package (``bln2022.yaml``: Ziaee & Çano 2022) with a
``citation`` block (paper, arXiv id, repository and commit), ``quantities`` saying what every
number is, ``norms`` mapping the published norms onto normbench's, ``protocols`` (the authors'
setup per task) and ``runs`` (per task, norm and batch size: per-epoch curves, the test result
and, for BLN, the 16-row table of inference flags).
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import yaml

_SUFFIX = ".yaml"


def available_references() -> list[str]:
    """Names accepted by :func:`load_reference`, sorted."""
    files = resources.files(__name__).iterdir()
    return sorted(f.name[: -len(_SUFFIX)] for f in files if f.name.endswith(_SUFFIX))


def load_reference(name: str) -> dict[str, Any]:
    """The reference ``name`` as a plain dict (a fresh copy each call); ``ValueError`` listing the names."""
    if name not in available_references():
        raise ValueError(f"unknown reference {name!r}; available references: {', '.join(available_references())}")
    text = resources.files(__name__).joinpath(name + _SUFFIX).read_text(encoding="utf-8")
    # libyaml's loader where installed: ~10x faster than the pure-Python one on this file
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def find_run(reference: dict[str, Any], *, task: str, norm: str, batch_size: int) -> dict[str, Any]:
    """The published run of ``task``/``norm``/``batch_size``; ``KeyError`` naming the runs that exist."""
    for run in reference["runs"]:
        if (run["task"], run["norm"], run["batch_size"]) == (task, norm, batch_size):
            return run
    known = ", ".join(f"{r['task']}/{r['norm']}/{r['batch_size']}" for r in reference["runs"])
    raise KeyError(f"no published run {task}/{norm}/{batch_size} in {reference['name']!r}; published: {known}")
