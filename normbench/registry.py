"""One registry mechanism for norms, models and datasets: names, aliases, options and lookup errors.

Each family keeps one ``Registry`` (``normbench/norms/registry.py``, ``models/registry.py``,
``data/registry.py``) and registers its built-ins with one line each. An entry records where it
came from (``source``: ``"builtin"`` today; import paths such as ``pkg.mod:attr`` and installed
entry points are further sources of the same entries), so listing, lookup, option checking and
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
    ) -> None:
        """``reserved``: protocol arguments that are not options; ``ignore_case``: names match in any
        case and with surrounding blanks; ``listing``: order of :meth:`available`; ``names_label``:
        how error messages introduce the names (default ``available <kind>s``)."""
        self.kind = kind
        self.reserved = tuple(reserved)
        self.ignore_case = ignore_case
        self.listing = listing
        self.names_label = names_label or f"available {kind}s"
        self._entries: dict[str, Entry[T]] = {}
        self._aliases: dict[str, str] = {}

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
        """Canonical names, sorted or in registration order (the registry's ``listing``)."""
        return sorted(self._entries) if self.listing == "sorted" else list(self._entries)

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
        """The canonical name for ``name`` or an alias of it; ``ValueError`` listing what exists."""
        if not isinstance(name, str):
            raise ValueError(f"{self.kind} name must be a string, got {name!r}; {self.names_help()}")
        key = name.strip().lower() if self.ignore_case else name
        key = self._aliases.get(key, key)
        if key not in self._entries:
            raise ValueError(f"unknown {self.kind} {name!r}; {self.names_help()}")
        return key

    def entry(self, name: str) -> Entry[T]:
        """The entry for ``name`` or an alias of it."""
        return self._entries[self.canonical(name)]

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
