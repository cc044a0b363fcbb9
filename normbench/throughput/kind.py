"""The throughput suite kind: its `--set` rules and error locations, and specs measured one at a time in the driver.

Loading, running, storing and reporting go through the same pipeline as training suites
(`normbench.suite.load`, `normbench.runner`); this module supplies what differs.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

from normbench.suite import RunOptions, SuiteError, SuiteKind, load_suite
from normbench.suite.errors import Location
from normbench.suite.kind import Execute
from normbench.suite.load import apply_suite_override
from normbench.throughput.load import check_throughput_suite, expand_throughput
from normbench.throughput.schema import ThroughputSuite

_SECTIONS = ("layers", "models", "fused_conv_bn")


class ThroughputKind(SuiteKind):
    """Suites that time layers and models: measured one spec at a time in the driver, because
    concurrent measurements on shared cores would time each other."""

    name = "throughput"
    schema = ThroughputSuite
    title = "throughput suite"
    example_fields = "name, kind, layers"
    override_example = "timing.min_run_time=0.5"
    dotted_override_example = "timing.min_run_time=0.5"
    unit = "measurements"
    valid_words = "valid throughput suite"
    progress_verb = "measuring"
    progress_done = "measurements taken"

    def user_location(self, loc: Location, raw: dict[str, Any]) -> Location:
        return _single_grid_loc(_without_union_tags(loc), raw)

    def set_field(self, raw: dict[str, Any], key: str, parts: list[str], value: Any) -> None:
        """Dotted keys reach into sections (`layers.shapes=[[8,4,4,4]]`), in every grid of a list.
        Unknown nested fields are left to the schema, which names the allowed ones."""
        _set_path(raw, parts, value, key)

    def check(self, suite: ThroughputSuite, *, source: str | Path, options: RunOptions) -> dict[str, str]:
        """Registry and device checks. Specs on an absent device are measured, and skip themselves
        with the reason, so none are skipped before executing."""
        check_throughput_suite(suite, source=source, strict=options.strict)
        return {}

    def expand(self, suite: ThroughputSuite) -> list:
        return expand_throughput(suite)

    def spec_id(self, spec) -> str:
        return spec.spec_id

    @contextmanager
    def executing(self, options: RunOptions) -> Iterator[Execute]:
        from normbench.throughput.run import run_throughput

        yield run_throughput

    def environment(self, specs: Iterable) -> dict[str, Any]:
        from normbench.env import capture_environment
        from normbench.throughput.device import throughput_environment

        return {**capture_environment(), **throughput_environment(sorted({s.device for s in specs}))}

    def prepare_store(self, store) -> None:
        from normbench.throughput.store import create_throughput_tables

        create_throughput_tables(store.conn)

    def final_ids(self, store) -> set[str]:
        from normbench.throughput.store import final_throughput_ids

        return final_throughput_ids(store.conn)

    def write(self, store, result, env_id: int) -> None:
        from normbench.throughput.store import write_throughput_result

        write_throughput_result(store.conn, result, env_id)

    def skipped_result(self, spec, reason: str):
        from normbench.env import now_iso
        from normbench.spec import SKIPPED
        from normbench.throughput.spec import ThroughputResult

        stamp = now_iso()
        return ThroughputResult(spec=spec, outcome=SKIPPED, reason=reason, started_at=stamp, finished_at=stamp)

    def describe(self, result) -> str:
        if result.median_s:
            detail = f"{result.median_s * 1e3:.3f} ms"
        else:
            detail = result.reason.splitlines()[0][:100] if result.reason else ""
        return f"{result.spec.describe()}: {result.outcome} {detail}".rstrip()


def _without_union_tags(loc: Location) -> Location:
    # pydantic names the union branch it tried (`list[...]`, `dict[...]`); users never wrote those.
    return tuple(item for item in loc if not (isinstance(item, str) and ("[" in item or item.startswith("function-"))))


def _single_grid_loc(loc: Location, raw: dict[str, Any]) -> Location:
    # A section written as one mapping (or a list of one) is read as a list of one grid; name its
    # fields as the user wrote them (`layers.shapes`, not `layers[0].shapes`).
    if len(loc) >= 2 and loc[0] in _SECTIONS and loc[1] == 0:
        value = raw.get(loc[0])
        if isinstance(value, dict) or (isinstance(value, list) and len(value) == 1):
            return (loc[0], *loc[2:])
    return loc


def _set_path(container: dict[str, Any], parts: list[str], value: Any, key: str) -> None:
    """Set `parts` in nested mappings; a list of grids gets the rest of the path in every grid."""
    head, rest = parts[0], parts[1:]
    if not rest:
        container[head] = value
        return
    child = container.get(head)
    if child is None:
        child = container[head] = {}
    if isinstance(child, list) and child and all(isinstance(item, dict) for item in child):
        for item in child:  # e.g. --set layers.dtypes=[float32] on a suite with several layer grids
            _set_path(item, rest, value, key)
        return
    if not isinstance(child, dict):
        raise SuiteError(f"--set {key}: {head} is not a section with fields, so {key} cannot be set")
    _set_path(child, rest, value, key)


THROUGHPUT = ThroughputKind()


def load_throughput_suite(
    path: str | Path, overrides: list[str] | None = None, *, strict: bool = False
) -> tuple[ThroughputSuite, str]:
    """Read, override, validate and check a throughput suite; returns it and its YAML text as used.

    `strict` (or `strict: true` in the file) turns an explicitly named device that is absent here
    into an error; otherwise its specs are stored as skipped with the reason. Raises SuiteError.
    """
    suite, text = load_suite(path, overrides, kind=THROUGHPUT)
    THROUGHPUT.check(suite, source=Path(path), options=RunOptions(strict=strict))
    return suite, text


def validate_throughput_suite(raw: dict[str, Any], *, source: str | Path = "<suite>") -> ThroughputSuite:
    """Validate a raw mapping against the throughput schema; field errors become one SuiteError."""
    return THROUGHPUT.validate(raw, source=source)


def apply_throughput_override(raw: dict[str, Any], override: str) -> None:
    """Apply one `key=value` override to a raw throughput suite in place (the value is parsed as YAML)."""
    apply_suite_override(THROUGHPUT, raw, override)
