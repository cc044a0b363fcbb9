"""Which plugin a run's error came from: the innermost traceback frame inside a plugin's code.

A run stores its error as text; when a plugin raised it (a builder, a forward, a loader), the text
must say which plugin, so that the report's warnings point at the user's code rather than at
normbench. Frames are matched against each plugin's ``root`` (its top-level package directory or
its module file, from ``Provenance``).
"""

from __future__ import annotations

import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def blamed_plugin(exc: BaseException, plugins: Mapping[str, Mapping[str, Any]]) -> tuple[str, Mapping[str, Any]] | None:
    """(role, provenance) of the plugin whose code raised ``exc`` (or its cause), innermost frame first.

    A frame under one plugin's root is that plugin's; when several plugins share a root (one module
    holding a model and a norm), the one whose object the frame's function belongs to wins
    (`MyNorm.forward` for the norm `pkg.mod:MyNorm`), else the first in role order.
    """
    roots = [(role, info, str(Path(info["root"]))) for role, info in plugins.items() if info.get("root")]
    for filename, qualname in reversed(_frames(exc)):
        inside = [(role, info) for role, info, root in roots
                  if filename == root or filename.startswith(root.rstrip("/") + "/")]
        for role, info in inside:
            attribute = str(info.get("reference", "")).rpartition(":")[2]
            if qualname == attribute or qualname.startswith(attribute + "."):
                return role, info
        if inside:
            return inside[0]
    return None


def _frames(exc: BaseException) -> list[tuple[str, str]]:
    """(resolved file, qualified function name) of every frame of ``exc`` and the exceptions it was
    raised from or during, outermost first."""
    chain, seen = [], set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append(current)
        current = current.__cause__ or current.__context__
    frames = []
    for item in reversed(chain):
        for frame, _ in traceback.walk_tb(item.__traceback__):
            code = frame.f_code
            filename = str(Path(code.co_filename).resolve()) if code.co_filename else ""
            frames.append((filename, getattr(code, "co_qualname", code.co_name)))
    return frames


def plugin_label(role: str, info: Mapping[str, Any]) -> str:
    """`model plugin 'mypkg.nets:build_net' (mypkg 0.1.0)`: how run errors name a plugin."""
    version = f"{info.get('distribution')} {info.get('version')}" if info.get("distribution") else info.get("version")
    return f"{role} plugin {info.get('reference')!r} ({version})"
