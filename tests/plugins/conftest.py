"""Plugin fixtures: the sample plugin module on sys.path, fake installed distributions, clean registries."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

SAMPLES = Path(__file__).parent / "samples"

# The helper module (helpers/plugin_support.py) is made importable as tests/norms' helpers are
# (pytest's importlib mode puts no test folder on sys.path), from a folder without a conftest.py, so
# that `from conftest import …` elsewhere (tests/throughput) never finds this one.
_HELPERS = str(Path(__file__).resolve().parent / "helpers")
if _HELPERS not in sys.path:
    sys.path.insert(0, _HELPERS)

from plugin_support import forget_all_plugins  # noqa: E402  (importable once the folder is on sys.path)


@pytest.fixture
def plugins(monkeypatch):
    """`nb_test_plugins` importable; registries forget every plugin before and after the test."""
    monkeypatch.syspath_prepend(str(SAMPLES))
    forget_all_plugins()
    yield "nb_test_plugins"
    forget_all_plugins()
    sys.modules.pop("nb_test_plugins", None)
