"""The one suite loader for every kind: read the file, YAML errors, `--set` overrides, validate, check, expand.

A suite is a YAML file or, from Python, a mapping with the same fields (named `<dict>` in error
messages). Errors are SuiteErrors naming the file, the field and the fix; nothing is written before
a suite passes. The kind (`normbench.suite.kind`) supplies the schema and the rules that differ.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import yaml
from pydantic import BaseModel

from normbench.suite.errors import SuiteError
from normbench.suite.kind import RunOptions, SuiteKind, kind_of

# What a suite can be given as: a YAML file's path, or the mapping itself (the Python API).
SuiteSource = Union[str, Path, Mapping[str, Any]]
DICT_SOURCE = "<dict>"  # how messages name a suite given as a mapping

_FIELD_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


@dataclass(frozen=True)
class SuitePlan:
    """A suite loaded, checked and expanded: what `run` executes and `validate` counts."""

    kind: SuiteKind
    suite: Any  # the kind's schema instance
    yaml_text: str  # the suite as run (the file, or the overridden suite dumped)
    specs: list[Any]
    skip_devices: dict[str, str]  # device → why its specs are stored as skipped without executing

    @property
    def summary(self) -> str:
        """`valid, 40 runs` / `valid throughput suite, 12 measurements`."""
        return f"{self.kind.valid_words}, {len(self.specs)} {self.kind.unit}"


def plan_suite(
    source: SuiteSource, overrides: list[str] | None = None, options: RunOptions = RunOptions(),
    *, kind: SuiteKind | None = None,
) -> SuitePlan:
    """Load, check and expand a suite (file or mapping) of any kind; raises SuiteError on any problem."""
    kind = kind or suite_kind(source)
    suite, yaml_text = load_suite(source, overrides, kind=kind)
    skip_devices = kind.check(suite, source=source_name(source), options=options)
    return SuitePlan(kind=kind, suite=suite, yaml_text=yaml_text, specs=kind.expand(suite), skip_devices=skip_devices)


def source_name(source: SuiteSource) -> str | Path:
    """How messages name a suite: its path, or `<dict>` for a mapping."""
    if isinstance(source, Mapping):
        return DICT_SOURCE
    if not isinstance(source, (str, Path)):
        raise SuiteError(f"a suite is a YAML file's path or a mapping of its fields; got a {type(source).__name__}")
    return Path(source)


def suite_kind(source: SuiteSource) -> SuiteKind:
    """The kind a suite declares; training when the file cannot be read (the loader then says why)."""
    if isinstance(source, Mapping):
        return kind_of(dict(source))
    source_name(source)  # refuses anything but a path or a mapping
    try:
        raw = yaml.safe_load(Path(source).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        raw = None
    return kind_of(raw)


def load_suite(
    source: SuiteSource, overrides: list[str] | None = None, *, kind: SuiteKind | None = None
) -> tuple[BaseModel, str]:
    """Read (or copy), override and validate a suite; returns the suite and its YAML text as used.

    The kind is the suite's `kind:` unless given. A mapping is never modified. Raises SuiteError
    with the file (or `<dict>`), field and allowed values on any problem.
    """
    name = source_name(source)
    if isinstance(source, Mapping):
        raw, text = copy.deepcopy(dict(source)), None
    else:
        text = _read_text(Path(source))
        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise SuiteError(f"{name}: invalid YAML: {_yaml_problem(exc)}") from None
    kind = kind or kind_of(raw)
    if not isinstance(raw, dict):
        raise SuiteError(f"{name}: a {kind.title} must be a YAML mapping with fields such as {kind.example_fields}")
    for override in overrides or []:
        apply_suite_override(kind, raw, override)
    suite = kind.validate(raw, source=name)
    if text is not None and not overrides:
        return suite, text
    return suite, yaml.safe_dump(suite.model_dump(mode="json", exclude_none=True), sort_keys=False)


def _read_text(path: Path) -> str:
    if not path.is_file():
        raise SuiteError(f"{path}: no such suite file (list shipped suites with `normbench list suites`)")
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SuiteError(f"{path}: cannot read the suite file: {exc}") from None


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """The parser's problem and where it is (`... at line 2, column 8`) when it knows."""
    if not isinstance(exc, yaml.MarkedYAMLError):
        return str(exc)
    problem = exc.problem or str(exc)
    if exc.problem_mark is not None:
        return f"{problem} at line {exc.problem_mark.line + 1}, column {exc.problem_mark.column + 1}"
    return problem


def apply_suite_override(kind: SuiteKind, raw: dict[str, Any], override: str) -> None:
    """Apply one `key=value` override to a raw suite of `kind` in place; the value is parsed as YAML
    (`[2,64]`, `5`, `adam`). Unknown top-level fields are refused here, the rest by the kind's rules."""
    key, parts, value = parse_override(override, example=kind.override_example,
                                       dotted_example=kind.dotted_override_example)
    if parts[0] not in kind.schema.model_fields:
        raise SuiteError(
            f"--set {key}: unknown {kind.title} field {parts[0]!r}; allowed: {', '.join(kind.schema.model_fields)}"
        )
    kind.set_field(raw, key, parts, value)


def parse_override(override: str, *, example: str, dotted_example: str) -> tuple[str, list[str], Any]:
    """`key=value` → (key, its dotted parts, the value parsed as YAML); SuiteError when malformed.
    `example` and `dotted_example` (e.g. `seeds=5`, `optimizer.lr=0.1`) go into the messages."""
    if "=" not in override:
        raise SuiteError(f"--set {override!r}: expected key=value, e.g. --set {example}")
    key, _, text = override.partition("=")
    key = key.strip()
    if not _FIELD_PATH.match(key):
        raise SuiteError(f"--set {override!r}: {key!r} is not a field path (use dots: {dotted_example})")
    try:
        value = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError as exc:
        raise SuiteError(f"--set {key}: the value {text!r} is not valid YAML: {_yaml_problem(exc)}") from None
    return key, key.split("."), value
