"""Plugin provenance across resumed runs: the environment lines a report shows, and what changed.

Run ids do not hash a plugin's version (docs/extending.md, "Provenance and run ids"), so a resumed
suite keeps runs made with an older version of a plugin. That choice is only safe when it is
visible: ``provenance_changes`` compares the provenance stored with each kept run with the
provenance the suite resolves to now, and the runner prints what differs.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any


def version_text(info: Mapping[str, Any]) -> str:
    """`mypkg 0.1.0` for a distribution, else the file hash `sha256:…`."""
    return f"{info.get('distribution')} {info.get('version')}" if info.get("distribution") else str(info.get("version"))


def environment_lines(specs: Iterable[Any]) -> dict[str, str]:
    """`plugin: <role> <reference>` → `<version> · <file> · sha256 <12 hex>` for every plugin of ``specs``."""
    lines = {}
    for spec in specs:
        for role, info in spec.plugin_provenance.items():
            digest = str(info.get("source_sha256") or "")[:12]
            lines[f"plugin: {role} {info.get('reference')}"] = " · ".join(
                part for part in (version_text(info), info.get("file"), f"sha256 {digest}" if digest else "") if part)
    return dict(sorted(lines.items()))


def provenance_changes(stored_specs: Mapping[str, str], specs: Iterable[Any]) -> list[str]:
    """Notes for kept runs whose stored plugin provenance differs from the current one.

    ``stored_specs``: run id → the spec JSON stored with a final run; ``specs``: the suite's specs
    now (those whose ids are in ``stored_specs`` are the runs resume keeps).
    """
    changes: Counter[tuple[str, str, str, str]] = Counter()
    for spec in specs:
        text = stored_specs.get(spec.run_id)
        if text is None:
            continue
        before = (json.loads(text).get("plugins") or {})
        for role, now in spec.plugin_provenance.items():
            then = before.get(role) or {}
            was, is_ = _identity(then), _identity(now)
            if was != is_:
                changes[(role, str(now.get("reference")), was, is_)] += 1
    return [
        f"{count} stored run(s) used {role} plugin {reference!r} at {was}; it is now {is_}. Run ids do not include "
        "plugin versions, so those runs are kept, not retrained: use --fresh (or another --out) to retrain them"
        for (role, reference, was, is_), count in sorted(changes.items())
    ]


def _identity(info: Mapping[str, Any]) -> str:
    """A plugin version as notes show it: the version, plus the source hash when it identifies more."""
    if not info:
        return "an unrecorded version"
    digest = str(info.get("source_sha256") or "")[:12]
    text = version_text(info)
    return f"{text} (source sha256 {digest})" if digest and digest not in text else text
