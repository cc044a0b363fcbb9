"""Plugin fixtures: the sample plugin module on sys.path, fake installed distributions, clean registries."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

SAMPLES = Path(__file__).parent / "samples"

# The helper module beside these tests (plugin_support) is importable like tests/norms' helpers:
# pytest's importlib mode does not put test folders on sys.path.
_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from plugin_support import forget_all_plugins  # noqa: E402  (importable once the folder is on sys.path)


@pytest.fixture
def plugins(monkeypatch):
    """`nb_test_plugins` importable; registries forget every plugin before and after the test."""
    monkeypatch.syspath_prepend(str(SAMPLES))
    forget_all_plugins()
    yield "nb_test_plugins"
    forget_all_plugins()
    sys.modules.pop("nb_test_plugins", None)
