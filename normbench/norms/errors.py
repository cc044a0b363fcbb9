"""Errors raised by the norm layers: undefined statistics at forward time."""

from __future__ import annotations


class NormUndefinedError(ValueError):
    """A layer's statistics are undefined for the input it got (e.g. BN on one value per channel).

    Subclasses ``ValueError`` so callers that already catch bad-input errors keep working; the
    training loop catches it specifically and records the run as ``undefined`` with ``str(err)``
    as the reason.
    """
