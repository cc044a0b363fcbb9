"""Shared setup for the statistics tests."""

import warnings

import pytest


@pytest.fixture
def no_warnings():
    """Turn every warning into an error: statistics calls must be silent, degenerate cases included."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield
