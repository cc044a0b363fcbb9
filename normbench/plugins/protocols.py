"""The call protocols a plugin must follow, and the signature check that names what does not fit.

* a model builder: ``build(*, norm, input_shape, num_classes, **options) -> nn.Module``;
* an existing model with ``swap_norms: true``: ``factory(**options) -> nn.Module`` (normbench then
  replaces its norm layers; it takes no ``norm``/``input_shape``/``num_classes`` of normbench's);
* a dataset loader: ``load(**options) -> Dataset``;
* a norm: ``Cls(num_features, **options)`` with ``forward(x, mask=None)``.

The check binds placeholder protocol arguments and the suite's options to the object's signature,
so a wrong signature is exit 2 at validation with the signature shown, not a TypeError mid-run.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from normbench.plugins.source import EXTENDING_DOC, PluginError


@dataclass(frozen=True)
class Protocol:
    """How normbench calls one kind of plugin: positional and keyword protocol arguments."""

    kind: str
    call: str  # the protocol as documented, e.g. `build(*, norm, input_shape, num_classes, **options)`
    section: str  # the docs/extending.md section that explains it
    positional: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()

    @property
    def reserved(self) -> tuple[str, ...]:
        """Protocol arguments: never options."""
        return self.positional + self.keywords

    def check_signature(self, name: str, obj: Any, options: Iterable[str] = ()) -> None:
        """PluginError when ``obj`` cannot be called with the protocol arguments and ``options``."""
        try:
            signature = inspect.signature(obj)
        except (TypeError, ValueError):  # a builtin without a readable signature: the call will tell
            return
        positional = [1] * len(self.positional)
        keywords = dict.fromkeys(self.keywords)
        try:
            signature.bind_partial(*positional, **keywords)
        except TypeError as exc:
            raise PluginError(
                f"{self.kind} {name!r} does not follow the {self.kind} protocol {self.call}: {exc}; its signature "
                f"is {signature} (see {EXTENDING_DOC}, {self.section!r})"
            ) from None
        try:
            signature.bind(*positional, **keywords, **dict.fromkeys(options))
        except TypeError as exc:
            raise PluginError(
                f"{self.kind} {name!r} cannot be called with options {sorted(options) or 'none'}: {exc}; its "
                f"signature is {signature} (give each required parameter under `options`)"
            ) from None


MODEL_BUILDER = Protocol("model", "build(*, norm, input_shape, num_classes, **options) -> nn.Module",
                         "A model", keywords=("norm", "input_shape", "num_classes"))
SWAPPED_MODEL = Protocol("model", "factory(**options) -> nn.Module (with swap_norms: true)",
                         "An existing model: swap_norms")
DATASET_LOADER = Protocol("dataset", "load(**options) -> Dataset", "A dataset")
NORM_CLASS = Protocol("norm", "Cls(num_features, **options) with forward(x, mask=None)", "A norm",
                      positional=("num_features",))
