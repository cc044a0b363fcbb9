"""`normbench list`: what the registries hold and which suites ship with normbench."""

from __future__ import annotations

from pathlib import Path

import yaml


def shipped_suite_dirs() -> list[Path]:
    """Where shipped suites are looked for: ./suites, then the checkout normbench runs from."""
    candidates = [Path.cwd() / "suites", Path(__file__).resolve().parent.parent / "suites"]
    seen, dirs = set(), []
    for path in candidates:
        resolved = path.resolve()
        if resolved.is_dir() and resolved not in seen:
            seen.add(resolved)
            dirs.append(path)
    return dirs


def suite_files() -> list[Path]:
    """Every shipped suite file (first directory wins on equal names)."""
    found: dict[str, Path] = {}
    for directory in shipped_suite_dirs():
        for path in sorted(directory.glob("*.yaml")):
            found.setdefault(path.name, path)
    return list(found.values())


def _suite_line(path: Path) -> str:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        description = data.get("description", "") if isinstance(data, dict) else ""
    except (OSError, yaml.YAMLError) as exc:
        description = f"(unreadable: {exc})"
    return f"{path}  {description}"


def _norm_line(name: str, aliases, options) -> str:
    """``batch  (alias: bn)  options: eps, momentum, …``: a norm as `normbench list norms` shows it."""
    line = name + (f"  (alias: {', '.join(aliases)})" if aliases else "")
    return line + (f"  options: {', '.join(options)}" if options else "")


def catalog(what: str) -> list[str]:
    """Lines describing the norms, models, datasets or suites available."""
    if what == "norms":
        from normbench.norms.registry import NORMS

        entries = [NORMS.entry(name) for name in NORMS.available()]
        return [_norm_line(e.name, e.aliases, e.options) for e in entries]
    if what == "models":
        from normbench.models import available_models

        return list(available_models())
    if what == "datasets":
        from normbench.data import available_datasets

        return list(available_datasets())
    if what == "suites":
        return [_suite_line(p) for p in suite_files()] or ["no suites/ directory found here"]
    raise ValueError(f"unknown listing {what!r}; allowed: norms, models, datasets, suites")
