"""One registry mechanism for norms, models and datasets: names, aliases, options and lookup errors.

Each family keeps one ``Registry`` (``normbench/norms/registry.py``, ``models/registry.py``,
``data/registry.py``) and registers its built-ins with one line each. Plugins are further sources
of the same entries: installed entry points of the family's group (listed with the built-ins,
imported on first use; a name clashing with a built-in is an error, never an override) and import
paths ``package.module:attr`` (resolved when named, never listed). An entry records where it came
from (``source``) and, for a plugin, its ``provenance``, so listing, lookup, option checking and
their error messages are the same whatever provides the object.

The options an entry takes are read from its signature: every parameter that can be passed by
keyword, except the family's protocol arguments (``reserved``: a norm's ``num_features``, a model's
``norm``, ``input_shape`` and ``num_classes``). An object taking ``**options`` checks its own,
unless the registration lists them (``options=`` name → default).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from normbench.options import Owner, check_known_options
from normbench.plugins.entry_points import PluginEntryPoint, discover
from normbench.plugins.source import (
    PluginError,
    Provenance,
    forget_distributions,
    import_object,
    is_import_path,
    provenance_of,
)

T = TypeVar("T", bound=Callable[..., Any])

_PLAIN = (type(None), bool, int, float, str)


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered object: its canonical name, aliases, where it came from and its options."""

    name: str
    obj: T
    aliases: tuple[str, ...] = ()
    source: str = "builtin"
    #: option name → default (None where the default is not plain data); None: the object checks its own
    options: Mapping[str, Any] | None = field(default=None)
    #: where a plugin's code comes from (None for built-ins)
    provenance: Provenance | None = None

    @property
    def is_plugin(self) -> bool:
        """Whether the entry comes from an entry point or an import path rather than normbench."""
        return self.provenance is not None


def signature_options(obj: Callable[..., Any], reserved: Iterable[str] = ()) -> dict[str, Any] | None:
    """Options of ``obj`` (a class or function) with their defaults; None when it takes ``**options``.

    A default that is not plain data (a sentinel such as BN's convention-dependent momentum, or no
    default at all) is reported as None.
    """
    skip = set(reserved)
    params = inspect.signature(obj).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    keyword = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return {p.name: _plain_default(p.default) for p in params if p.kind in keyword and p.name not in skip}


def _plain_default(value: Any) -> Any:
    if isinstance(value, _PLAIN) or (isinstance(value, (tuple, list)) and all(isinstance(v, _PLAIN) for v in value)):
        return value
    return None


class Registry(Generic[T]):
    """Objects of one kind (``"norm"``, ``"model"``, ``"dataset"``) by name, with aliases and options."""

    def __init__(
        self,
        kind: str,
        *,
        reserved: Iterable[str] = (),
        ignore_case: bool = False,
        listing: Literal["sorted", "registered"] = "sorted",
        names_label: str | None = None,
        group: str | None = None,
    ) -> None:
        """``reserved``: protocol arguments that are not options; ``ignore_case``: names match in any
        case and with surrounding blanks; ``listing``: order of :meth:`available`; ``names_label``:
        how error messages introduce the names (default ``available <kind>s``); ``group``: the
        entry-point group whose installed plugins join the built-ins (none: built-ins only)."""
        self.kind = kind
        self.reserved = tuple(reserved)
        self.ignore_case = ignore_case
        self.listing = listing
        self.names_label = names_label or f"available {kind}s"
        self.group = group
        self._entries: dict[str, Entry[T]] = {}
        self._aliases: dict[str, str] = {}
        self._imported: dict[str, Entry[T]] = {}  # import path → entry, resolved when first named
        self._declared: dict[str, PluginEntryPoint] | None = None  # entry points not loaded yet
        self._problems: dict[str, str] = {}  # entry-point name → why it cannot be used (a clash)

    def register(
        self,
        name: str,
        obj: T,
        *,
        aliases: Iterable[str] = (),
        options: Mapping[str, Any] | None = None,
        source: str = "builtin",
    ) -> T:
        """Add ``obj`` under ``name`` (and ``aliases``); a name already taken is an error, never an override."""
        aliases = tuple(aliases)
        for key in (name, *aliases):
            if key in self._entries or key in self._aliases:
                raise ValueError(f"{self.kind} {key!r} is already registered (by {self.entry(key).source})")
            if self.ignore_case and key != key.strip().lower():
                raise ValueError(f"{self.kind} {key!r}: names of this registry are lower case without blanks")
        if options is None:
            options = signature_options(obj, self.reserved)
        self._entries[name] = Entry(name, obj, aliases, source, None if options is None else dict(options))
        self._aliases.update(dict.fromkeys(aliases, name))
        return obj

    def available(self) -> list[str]:
        """Canonical names, sorted or in registration order (the registry's ``listing``); installed
        entry points follow the built-ins (in that order, or sorted together)."""
        declared = self._entry_points()
        names = list(self._entries) + [n for n in sorted(declared) if n not in self._entries]
        return sorted(names) if self.listing == "sorted" else names

    def problems(self) -> dict[str, str]:
        """Entry points that cannot be used (a name clash), by name, with the reason."""
        self._entry_points()
        return dict(self._problems)

    def registered(self, name: str) -> Entry[T] | None:
        """The entry already registered under the canonical ``name`` (a built-in, or an entry point
        loaded before), without resolving, loading or checking anything; listings use it."""
        return self._entries.get(name)

    def forget_plugins(self) -> None:
        """Drop what was found of plugins (entry points, import paths), so the next lookup looks again:
        after installing a plugin in a running session, and in tests."""
        self._entries = {name: e for name, e in self._entries.items() if not e.is_plugin}
        self._imported, self._declared, self._problems = {}, None, {}
        forget_distributions()

    def declared_entry_point(self, name: str) -> PluginEntryPoint | None:
        """The entry point that provides ``name``, if an installed plugin does."""
        return self._entry_points().get(name)

    def aliases(self) -> dict[str, str]:
        """Alias → canonical name, in registration order."""
        return dict(self._aliases)

    def names_help(self) -> str:
        """What exists, as error messages list it: names, then aliases if any."""
        text = f"{self.names_label}: {', '.join(self.available())}"
        if self._aliases:
            text += "; aliases: " + ", ".join(f"{a} -> {c}" for a, c in self._aliases.items())
        return text

    def __contains__(self, name: object) -> bool:
        try:
            self.canonical(name)
        except ValueError:
            return False
        return True

    def canonical(self, name: Any) -> str:
        """The canonical name for ``name`` or an alias of it, or the import path itself (imported and
        checked now); ``ValueError`` listing what exists, ``PluginError`` for a plugin that cannot load."""
        if not isinstance(name, str):
            raise ValueError(f"{self.kind} name must be a string, got {name!r}; {self.names_help()}")
        if is_import_path(name):
            return self._import(name.strip()).name
        key = name.strip().lower() if self.ignore_case else name
        key = self._aliases.get(key, key)
        declared = self._entry_points()
        if key in self._problems:
            raise PluginError(self._problems[key])
        if key not in self._entries:
            if key not in declared:
                raise ValueError(f"unknown {self.kind} {name!r}; {self.names_help()}")
            self._load_entry_point(key)
        return key

    def entry(self, name: str) -> Entry[T]:
        """The entry for ``name``, an alias of it, or an import path."""
        key = self.canonical(name)
        return self._imported[key] if key in self._imported else self._entries[key]

    def provenance(self, name: str) -> Provenance | None:
        """Where a plugin's code comes from; None for built-ins and for names that do not resolve."""
        if not isinstance(name, str):
            return None
        try:
            return self.entry(name).provenance
        except ValueError:
            return None

    def _import(self, path: str) -> Entry[T]:
        """The entry of an import path, imported on first use (PluginError when it cannot be)."""
        if path not in self._imported:
            obj = import_object(self.kind, path)
            provenance = provenance_of(obj, source="import path", reference=path)
            self._imported[path] = Entry(path, obj, (), "import path", signature_options(obj, self.reserved),
                                         provenance)
        return self._imported[path]

    def _entry_points(self) -> dict[str, PluginEntryPoint]:
        """Installed entry points of the registry's group by name (read once), recording clashes."""
        if self._declared is None:
            self._declared = {}
            for declared in discover(self.group) if self.group else []:
                name = declared.name.strip().lower() if self.ignore_case else declared.name
                clash = self._clash(name, declared)
                if clash:
                    self._problems[name] = clash
                else:
                    self._declared[name] = declared
        return self._declared

    def _clash(self, name: str, declared: PluginEntryPoint) -> str | None:
        """Why an entry point cannot take ``name`` (a built-in's name, another plugin's, or no name)."""
        where = f"entry point {declared.name!r} = {declared.value!r} of {declared.origin} (group {declared.group})"
        if name in self._entries or name in self._aliases:
            owner = (f"the built-in {self.kind} {name!r}" if name in self._entries
                     else f"the built-in alias {name!r} of {self.kind} {self._aliases[name]!r}")
            return (f"{self.kind} {name!r}: {where} clashes with {owner}; a plugin cannot replace a built-in: "
                    f"rename the entry point in {declared.distribution}'s pyproject.toml or uninstall it")
        other = self._declared.get(name) if self._declared is not None else None
        if other is not None or name in self._problems:
            others = other.origin if other is not None else "another distribution"
            self._declared.pop(name, None)
            return (f"{self.kind} {name!r} is declared by two installed plugins ({others} and {declared.origin}); "
                    "uninstall one, or name the one you mean by its import path")
        if not name or is_import_path(name) or name != name.strip():
            return f"{where}: its name is not usable (no blanks or colons)"
        return None

    def _load_entry_point(self, name: str) -> Entry[T]:
        """Import an entry point's target and register it (PluginError naming it when that fails)."""
        declared = self._entry_points()[name]
        try:
            obj = declared.load()
        except Exception as exc:  # the plugin's import-time error, shown as such
            raise PluginError(f"{self.kind} {name!r} (entry point {declared.value!r} of {declared.origin}): cannot "
                              f"load it: {type(exc).__name__}: {exc}") from None
        if not callable(obj):
            raise PluginError(f"{self.kind} {name!r} (entry point {declared.value!r} of {declared.origin}) is a "
                              f"{type(obj).__name__}, not a class or function")
        provenance = provenance_of(obj, source="entry point", reference=f"{name} = {declared.value}",
                                   distribution=declared.dist)
        self._entries[name] = Entry(name, obj, (), f"entry point of {declared.origin}",
                                    signature_options(obj, self.reserved), provenance)
        return self._entries[name]

    def get(self, name: str) -> T:
        """The registered object for ``name`` or an alias of it."""
        return self.entry(name).obj

    def owner(self, name: str) -> Owner:
        """How option errors name this entry, e.g. ``norm 'batch'``."""
        return Owner(self.kind, self.canonical(name))

    def options(self, name: str) -> dict[str, Any] | None:
        """Option name → default for ``name``; None when the object checks its own options."""
        options = self.entry(name).options
        return None if options is None else dict(options)

    def check_options(self, name: str, given: Iterable[str]) -> None:
        """Raise ``ValueError`` naming any option ``name`` does not take and listing those it does."""
        allowed = self.options(name)
        if allowed is not None:
            check_known_options(self.owner(name), given, allowed)

    def create(self, name: str, options: Mapping[str, Any], *args: Any, **protocol: Any) -> Any:
        """Check ``options`` by name, then call the object with the protocol arguments and the options."""
        self.check_options(name, options)
        return self.get(name)(*args, **protocol, **options)
