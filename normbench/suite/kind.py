"""Suite kinds: the strategy each kind (training, throughput) plugs into the one suite pipeline.

The pipeline (`normbench.suite.load.plan_suite`, `normbench.runner.run_suite`) is the same for every
kind: load → validate → check → expand → execute → store → report. A `SuiteKind` supplies the steps
that differ: its schema and `--set` rules, its checks and expansion, how its specs execute, and how
a result is stored. Kinds are looked up by the `kind:` field of a suite file (`training` by default).
"""

from __future__ import annotations

import abc
import importlib
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from pydantic import BaseModel, ValidationError

from normbench.suite.errors import Location, validation_suite_error

# The kind's module and attribute, imported when first asked for: the throughput kind stays out of
# training runs, and kinds may import the suite package without a cycle.
_KINDS = {
    "training": ("normbench.suite.training", "TRAINING"),
    "throughput": ("normbench.throughput.kind", "THROUGHPUT"),
}
DEFAULT_KIND = "training"

Execute = Callable[[list[Any]], Iterator[Any]]


@dataclass(frozen=True)
class RunOptions:
    """How `run` and `validate` treat absent devices and where specs execute (each kind reads what applies)."""

    skip_unavailable: bool = False  # training: runs on an absent device are stored as skipped, not an error
    strict: bool = False  # throughput: an absent device named in the suite is an error, not skipped
    executor: str = "local"  # training: serial, local or ray
    workers: int | None = None
    address: str | None = None
    fetch_data: bool = False  # training: download missing file-based datasets instead of stopping


class SuiteKind(abc.ABC):
    """The kind-specific steps of the suite pipeline; one instance per kind."""

    name: str  # the `kind:` value in a suite file
    schema: type[BaseModel]
    title: str  # what messages call a suite of this kind
    example_fields: str  # named when a file is not a mapping
    override_example: str  # shown when a --set is malformed
    dotted_override_example: str  # shown when a --set key is not a field path
    unit: str  # what one spec is, in the plural: runs, measurements
    valid_words: str  # `validate` prints "FILE: {valid_words}, N {unit}"
    progress_verb: str  # "training"
    progress_done: str  # "runs trained"

    # -- loading

    def validate(self, raw: dict[str, Any], *, source: str | Path = "<suite>") -> BaseModel:
        """Validate a raw mapping against the schema; field errors become one SuiteError."""
        try:
            return self.schema.model_validate(raw)
        except ValidationError as exc:
            raise validation_suite_error(
                exc, source, schema=self.schema, locate=lambda loc: self.user_location(loc, raw)
            ) from None

    def user_location(self, loc: Location, raw: dict[str, Any]) -> Location:
        """Pydantic's error location as the user wrote the field (the same, unless the schema normalizes)."""
        return loc

    @abc.abstractmethod
    def set_field(self, raw: dict[str, Any], key: str, parts: list[str], value: Any) -> None:
        """Set the field path `parts` (its first part a schema field) of `raw` to `value`, by this
        kind's `--set` rules; SuiteError for a path they do not allow."""

    @abc.abstractmethod
    def check(self, suite: Any, *, source: str | Path, options: RunOptions) -> dict[str, str]:
        """Raise SuiteError for anything that cannot run; return the devices whose specs are stored
        as skipped without executing, with the reason."""

    @abc.abstractmethod
    def expand(self, suite: Any) -> list[Any]:
        """Every spec of the suite, in a stable order."""

    # -- executing and storing

    @abc.abstractmethod
    def spec_id(self, spec: Any) -> str:
        """The stable id under which a spec's result is stored."""

    @abc.abstractmethod
    def executing(self, options: RunOptions) -> AbstractContextManager[Execute]:
        """A context yielding `execute(specs)`, an iterator of results as specs finish (entered
        before the suite is loaded, so that workers can start while it is validated)."""

    @abc.abstractmethod
    def environment(self, specs: Iterable[Any]) -> dict[str, Any]:
        """The environment recorded with the results."""

    def prepare_store(self, store: Any) -> None:
        """Create whatever the kind's results need in the store (nothing by default)."""

    @abc.abstractmethod
    def final_ids(self, store: Any) -> set[str]:
        """Ids of specs whose stored result is final (resume does not execute them again)."""

    def resume_notes(self, store: Any, kept: list[Any]) -> list[str]:
        """Notes about the specs resume keeps rather than executes (nothing by default)."""
        return []

    @abc.abstractmethod
    def write(self, store: Any, result: Any, env_id: int) -> None:
        """Store one result (one transaction)."""

    @abc.abstractmethod
    def skipped_result(self, spec: Any, reason: str) -> Any:
        """The result of a spec that is not executed (its device is absent)."""

    @abc.abstractmethod
    def describe(self, result: Any) -> str:
        """One line for the progress display."""

    def failure_notice(self, result: Any) -> str | None:
        """A line to print on its own for a failed result (rich markup), or None."""
        return None


def kind_named(name: str) -> SuiteKind:
    """The registered kind called `name`; KeyError for an unknown one."""
    module, attribute = _KINDS[name]
    return getattr(importlib.import_module(module), attribute)


def kind_of(raw: Any) -> SuiteKind:
    """The kind a raw suite declares in `kind:`; training for anything else (the schema then says why)."""
    name = raw.get("kind") if isinstance(raw, dict) else None
    return kind_named(name if isinstance(name, str) and name in _KINDS else DEFAULT_KIND)
