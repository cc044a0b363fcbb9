"""A run's own error as its stored outcome: one rule for training runs and throughput measurements.

A run that raises is a result to store, not a crash of the suite: a norm with no definition for its
input is `undefined` with the reason; any other error is `failed` with its text and traceback.
"""

from __future__ import annotations

import traceback
from collections.abc import Mapping
from typing import Any

from normbench.norms import NormUndefinedError
from normbench.plugins.blame import blamed_plugin, plugin_label
from normbench.spec import FAILED, UNDEFINED

TRACEBACK_LIMIT = 8  # frames kept with a failed run's error: enough to locate it, short enough to read


def error_outcome(exc: Exception, plugins: Mapping[str, Mapping[str, Any]] | None = None) -> tuple[str, str]:
    """(outcome, text) to store for an exception a run raised.

    ``plugins`` (role → provenance, as in ``RunSpec.plugin_provenance``): the plugin whose code
    raised is named first in the text; when none of them is in the traceback, the text ends by
    naming the run's plugins, so a failure is never silently attributed to normbench.
    """
    if isinstance(exc, NormUndefinedError):
        return UNDEFINED, str(exc)
    trace = "".join(traceback.format_exception(exc, limit=TRACEBACK_LIMIT))
    message = f"{type(exc).__name__}: {exc}"
    if plugins:
        blamed = blamed_plugin(exc, plugins)
        if blamed is not None:
            message = f"{plugin_label(*blamed)} raised {message}"
        else:
            message += f" (this run uses {', '.join(plugin_label(r, i) for r, i in plugins.items())})"
    return FAILED, f"{message}\n{trace}"
