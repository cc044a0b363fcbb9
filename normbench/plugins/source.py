"""Where a plugin comes from: import paths (`package.module:attr`), loading them with clear errors, provenance.

A suite may name a model, dataset or norm by import path instead of a registered name. Importing
runs the plugin's module, so every failure (a missing package, a syntax error, an exception at
import time) becomes one ``PluginError`` naming the path and the error, which suite validation
reports as exit 2 before anything runs. ``Provenance`` records which code a run used (module, file,
distribution version or a hash of the file); it is stored with each run but never hashed into its
id (docs/extending.md, "Provenance and run ids").
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import inspect
import os
import re
import sys
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

_IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]*"
_IMPORT_PATH = re.compile(rf"^{_IDENTIFIER}(\.{_IDENTIFIER})*:{_IDENTIFIER}(\.{_IDENTIFIER})*$")
EXTENDING_DOC = "docs/extending.md"


class PluginError(ValueError):
    """A plugin cannot be imported or loaded, or does not follow its protocol; the message names it."""


def is_import_path(name: Any) -> bool:
    """Whether ``name`` is meant as an import path (it holds a colon; registered names never do)."""
    return isinstance(name, str) and ":" in name


def split_import_path(kind: str, path: str) -> tuple[str, str]:
    """``mypkg.nets:build_net`` → (``mypkg.nets``, ``build_net``); PluginError when malformed."""
    path = path.strip()
    if not _IMPORT_PATH.match(path):
        raise PluginError(
            f"{kind} {path!r} is not a valid import path: write package.module:attribute, "
            f"e.g. mypkg.nets:build_net (see {EXTENDING_DOC})"
        )
    module, _, attribute = path.partition(":")
    return module, attribute


def import_object(kind: str, path: str) -> Any:
    """Import ``package.module`` and return its (dotted) attribute; PluginError naming the path and
    the error when the module cannot be imported, lacks the attribute, or it is not callable."""
    module_name, attribute = split_import_path(kind, path)
    _current_directory_on_path()
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # any error while importing someone else's module is theirs to see
        raise PluginError(
            f"{kind} {path!r}: cannot import module {module_name!r}: {type(exc).__name__}: {exc} "
            f"(is the package installed in this environment, or its directory on PYTHONPATH? see {EXTENDING_DOC})"
        ) from None
    obj: Any = module
    for part in attribute.split("."):
        if not hasattr(obj, part):
            where = getattr(module, "__file__", None) or module_name
            raise PluginError(f"{kind} {path!r}: module {module_name!r} ({where}) has no attribute {attribute!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise PluginError(f"{kind} {path!r} is a {type(obj).__name__}, not a class or function ({EXTENDING_DOC})")
    return obj


def _current_directory_on_path() -> None:
    """Let `mynets:build` find `./mynets.py`, as `python -m` would: the console script does not put the
    working directory on sys.path. Appended, so installed packages are never shadowed."""
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.append(cwd)


@dataclass(frozen=True)
class Provenance:
    """Which code a plugin is: how it was named, its module and file, and its version.

    ``version`` is the distribution's version when the module belongs to an installed distribution,
    else ``sha256:<12 hex>`` of the source file; ``source_sha256`` is the file's hash in either case
    (an editable install keeps its version while its source changes). ``root`` is the directory of
    the top-level package (or the module file itself): a traceback frame under it is the plugin's.
    """

    source: str  # "import path" or "entry point"
    reference: str  # the import path, or `group: name = module:attr`
    module: str
    file: str
    distribution: str
    version: str
    source_sha256: str
    root: str

    def to_dict(self) -> dict[str, str]:
        """Plain data for the stored spec."""
        return asdict(self)

    def describe(self) -> str:
        """One line for reports: `mypkg.nets:build_net (mypkg 0.1.0, /…/nets.py, sha256 1a2b…)`."""
        version = f"{self.distribution} {self.version}" if self.distribution else self.version
        return f"{self.reference} ({version}; {self.file or 'no source file'})"


def provenance_of(obj: Any, *, source: str, reference: str, distribution: Any = None) -> Provenance:
    """The provenance of a loaded plugin object; ``distribution`` is the entry point's, when known."""
    module_name = getattr(obj, "__module__", None) or reference.partition(":")[0]
    module = sys.modules.get(module_name)
    file = _source_file(obj, module)
    digest = file_sha256(file) if file else ""
    dist_name, version = _distribution_of(module_name, distribution)
    if not dist_name:
        version = f"sha256:{digest[:12]}" if digest else "unknown"
    return Provenance(source=source, reference=reference, module=module_name, file=file, distribution=dist_name,
                      version=version, source_sha256=digest, root=_package_root(module_name, file))


def _source_file(obj: Any, module: Any) -> str:
    try:
        file = inspect.getsourcefile(obj) or inspect.getfile(obj)
    except (TypeError, OSError):
        file = getattr(module, "__file__", None) or ""
    return str(Path(file).resolve()) if file else ""


def file_sha256(path: str) -> str:
    """Hex sha256 of a file's bytes ('' when it cannot be read)."""
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return ""


def _distribution_of(module_name: str, distribution: Any) -> tuple[str, str]:
    """(distribution name, version) of the installed distribution holding the module, or ('', '')."""
    if distribution is not None:
        return distribution.metadata["Name"] or "", distribution.version or ""
    names = _top_level_distributions().get(module_name.partition(".")[0], [])
    for name in names:
        try:
            return name, importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "", ""


@lru_cache(maxsize=1)
def _top_level_distributions() -> dict[str, list[str]]:
    # Scans every installed distribution once per process; plugins are resolved a handful of times.
    return importlib.metadata.packages_distributions()


def forget_distributions() -> None:
    """Read the installed distributions again on the next lookup (after installing a plugin)."""
    _top_level_distributions.cache_clear()


def _package_root(module_name: str, file: str) -> str:
    """The top-level package's directory, or the module's own file for a top-level module."""
    top = sys.modules.get(module_name.partition(".")[0])
    top_file = getattr(top, "__file__", None)
    if top_file and Path(top_file).name == "__init__.py":
        return str(Path(top_file).resolve().parent)
    return str(Path(top_file).resolve()) if top_file else file
