"""The `throughput` suite kind: honest timings of norm layers, models and folded conv+BN (issue 6).

A suite with ``kind: throughput`` runs through the same pipeline as training suites
(``normbench.suite.load.plan_suite``, ``normbench.runner.run_suite``) with ``THROUGHPUT``
(``normbench.throughput.kind``) as its kind: the shared loader → ``check_throughput_suite`` →
``expand_throughput`` → ``run_throughput`` (one spec at a time, in the driver) →
``write_throughput_result`` on the store's connection → ``throughput_frame`` for reports.
See docs/throughput.md. Importing this package does not import torch (the store and the report
use it); the measuring functions load torch when first used.
"""

from normbench.throughput.kind import (
    THROUGHPUT,
    ThroughputKind,
    apply_throughput_override,
    load_throughput_suite,
    validate_throughput_suite,
)
from normbench.throughput.load import check_throughput_suite, expand_throughput, layer_spec
from normbench.throughput.schema import ThroughputSuite
from normbench.throughput.spec import NOISE_THRESHOLD, ThroughputResult, ThroughputSpec
from normbench.throughput.store import (
    create_throughput_tables,
    final_throughput_ids,
    throughput_frame,
    throughput_samples_frame,
    write_throughput_result,
)
from normbench.throughput.tables import folding_speedup, norm_step_cost

_LAZY = {
    "run_throughput": "normbench.throughput.run",
    "run_throughput_spec": "normbench.throughput.run",
    "device_info": "normbench.throughput.device",
    "throughput_environment": "normbench.throughput.device",
}


def __getattr__(name: str):
    # The measuring side needs torch; load it only when asked for, so reading results stays light.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'normbench.throughput' has no attribute {name!r}")


__all__ = [
    "NOISE_THRESHOLD",
    "THROUGHPUT",
    "ThroughputKind",
    "ThroughputResult",
    "ThroughputSpec",
    "ThroughputSuite",
    "apply_throughput_override",
    "check_throughput_suite",
    "create_throughput_tables",
    "device_info",
    "expand_throughput",
    "final_throughput_ids",
    "folding_speedup",
    "layer_spec",
    "load_throughput_suite",
    "norm_step_cost",
    "run_throughput",
    "run_throughput_spec",
    "throughput_environment",
    "throughput_frame",
    "throughput_samples_frame",
    "validate_throughput_suite",
    "write_throughput_result",
]
