"""Suites: the training schema, the one loader for every suite kind, `--set` overrides, expansion.

- `schema`: the training suite's pydantic schema (`Suite` and its entries).
- `errors`: `SuiteError` and field-error messages (file, field, allowed values).
- `load`: read → override → validate → check → expand, for any kind (`plan_suite`, `load_suite`).
- `kind`: the `SuiteKind` strategy and the kind registry; `training`: the training kind.
- `expand`: training suites → RunSpecs.
"""

from normbench.suite.errors import SuiteError, validation_suite_error
from normbench.suite.expand import expand, norm_label, options_label, resolve_auto_device
from normbench.suite.kind import RunOptions, SuiteKind, kind_named, kind_of
from normbench.suite.load import (
    DICT_SOURCE,
    SuitePlan,
    SuiteSource,
    apply_suite_override,
    load_suite,
    parse_override,
    plan_suite,
    source_name,
    suite_kind,
)
from normbench.suite.schema import (
    SUITE_NAME_PATTERN,
    ModelEntry,
    NamedEntry,
    NormEntry,
    OptimizerConfig,
    PercentileProbe,
    ProbesConfig,
    SmoothnessProbe,
    StrictModel,
    Suite,
    SwapNormsConfig,
    check_device_names,
)
from normbench.suite.training import TRAINING, TrainingKind, apply_override, validate_suite

__all__ = [
    "DICT_SOURCE",
    "SuiteSource",
    "source_name",
    "SUITE_NAME_PATTERN",
    "TRAINING",
    "ModelEntry",
    "NamedEntry",
    "NormEntry",
    "OptimizerConfig",
    "PercentileProbe",
    "ProbesConfig",
    "RunOptions",
    "SmoothnessProbe",
    "StrictModel",
    "Suite",
    "SuiteError",
    "SwapNormsConfig",
    "SuiteKind",
    "SuitePlan",
    "TrainingKind",
    "apply_override",
    "apply_suite_override",
    "check_device_names",
    "expand",
    "kind_named",
    "kind_of",
    "load_suite",
    "norm_label",
    "options_label",
    "parse_override",
    "plan_suite",
    "resolve_auto_device",
    "suite_kind",
    "validate_suite",
    "validation_suite_error",
]
