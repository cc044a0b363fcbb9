"""A run's own error as its stored outcome: one rule for training runs and throughput measurements.

A run that raises is a result to store, not a crash of the suite: a norm with no definition for its
input is `undefined` with the reason; any other error is `failed` with its text and traceback.
"""

from __future__ import annotations

import traceback

from normbench.spec import FAILED, UNDEFINED
from normbench.norms import NormUndefinedError

TRACEBACK_LIMIT = 8  # frames kept with a failed run's error: enough to locate it, short enough to read


def error_outcome(exc: Exception) -> tuple[str, str]:
    """(outcome, text) to store for an exception a run raised."""
    if isinstance(exc, NormUndefinedError):
        return UNDEFINED, str(exc)
    trace = "".join(traceback.format_exception(exc, limit=TRACEBACK_LIMIT))
    return FAILED, f"{type(exc).__name__}: {exc}\n{trace}"
