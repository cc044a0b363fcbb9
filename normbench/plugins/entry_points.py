"""Installed plugins: the entry-point groups `normbench.models`, `normbench.datasets`, `normbench.norms`.

A distribution declares, in its pyproject.toml::

    [project.entry-points."normbench.models"]
    my_net = "mypkg.nets:build_net"

Discovery reads the installed metadata only; an entry point is imported when it is first used, so
a broken plugin never stops a suite that does not name it.
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass
from typing import Any

GROUPS = {"model": "normbench.models", "dataset": "normbench.datasets", "norm": "normbench.norms"}


@dataclass(frozen=True)
class PluginEntryPoint:
    """One declared entry point: its name, target, group and the distribution declaring it."""

    name: str
    value: str  # `module:attr`
    group: str
    distribution: str
    version: str
    entry_point: Any  # importlib.metadata.EntryPoint, loaded on first use

    @property
    def origin(self) -> str:
        """`distribution 1.0`: where the entry point comes from, for listings and errors."""
        return f"{self.distribution} {self.version}".strip()

    def load(self) -> Any:
        """Import the target (exceptions propagate; the registry turns them into PluginError)."""
        return self.entry_point.load()

    @property
    def dist(self) -> Any:
        """The importlib.metadata distribution, for provenance."""
        return self.entry_point.dist


def discover(group: str) -> list[PluginEntryPoint]:
    """Entry points of ``group`` in installed distributions (one per name, value and distribution)."""
    found: dict[tuple[str, str, str], PluginEntryPoint] = {}
    for ep in importlib.metadata.entry_points(group=group):
        dist = ep.dist
        name = (dist.metadata["Name"] or "") if dist is not None else ""
        version = (dist.version or "") if dist is not None else ""
        # The same distribution can be seen twice (an editable install and a build on sys.path).
        found.setdefault((ep.name, ep.value, name), PluginEntryPoint(ep.name, ep.value, group, name, version, ep))
    return list(found.values())
