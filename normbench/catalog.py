"""`normbench list`: what the registries hold (built-ins and installed plugins) and which suites ship with normbench."""

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


def catalog(what: str) -> list[str]:
    """Lines describing the norms, models, datasets or suites available; installed plugins (entry
    points) are listed with the distribution they come from."""
    if what in _REGISTRIES:
        registry = _registry(what)
        return [_entry_line(registry, name) for name in registry.available()]
    if what == "suites":
        return [_suite_line(p) for p in suite_files()] or ["no suites/ directory found here"]
    raise ValueError(f"unknown listing {what!r}; allowed: norms, models, datasets, suites")


def catalog_problems(what: str) -> list[str]:
    """Why some installed plugins of that kind cannot be used (a name clashing with a built-in)."""
    return list(_registry(what).problems().values()) if what in _REGISTRIES else []


_REGISTRIES = {
    "norms": ("normbench.norms.registry", "NORMS"),
    "models": ("normbench.models.registry", "MODELS"),
    "datasets": ("normbench.data.registry", "DATASETS"),
}


def _registry(what: str):
    import importlib

    module, attribute = _REGISTRIES[what]
    return getattr(importlib.import_module(module), attribute)


def _entry_line(registry, name: str) -> str:
    """`batch  (alias: bn)  options: eps, …` (norms list their options), or `my_net  (plugin: mypkg 0.1.0, mypkg.nets:build_net)` for an entry point."""
    declared = registry.declared_entry_point(name)
    if declared is not None:
        return f"{name}  (plugin: {declared.origin}, {declared.value})"
    entry = registry.registered(name)
    aliases = entry.aliases if entry is not None else ()
    line = name + (f"  (alias: {', '.join(aliases)})" if aliases else "")
    options = entry.options if entry is not None and registry.kind == "norm" else {}
    return line + (f"  options: {', '.join(options)}" if options else "")
