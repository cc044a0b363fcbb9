"""Shared helpers for the throughput tests: tiny suites and fast timing settings.

Timings here check mechanics, not speed: tiny shapes, one thread (another process on a shared
core stalls every multi-threaded parallel region), and a few milliseconds of measurement.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:  # --import-mode=importlib does not put test folders on sys.path
    sys.path.insert(0, _HERE)

FAST_TIMING = {"min_run_time": 0.003, "max_run_time": 0.05, "min_samples": 3, "warmup": 1, "warmup_time": 0.0}


@pytest.fixture
def write_suite(tmp_path):
    """Write a suite mapping (or raw text) to a YAML file and return its path."""

    def write(content, name: str = "suite.yaml") -> Path:
        path = tmp_path / name
        path.write_text(content if isinstance(content, str) else yaml.safe_dump(content, sort_keys=False))
        return path

    return write


def tiny_suite(**changes) -> dict:
    """A small valid throughput suite on CPU, one thread, fast timing."""
    suite = {
        "name": "tiny",
        "kind": "throughput",
        "devices": ["cpu"],
        "threads": [1],
        "timing": dict(FAST_TIMING),
        "layers": {
            "norms": ["batch", {"name": "group", "options": {"num_groups": 2}}],
            "shapes": [[4, 4, 3, 3], [4, 4, 5]],
            "dtypes": ["float32"],
            "memory_formats": ["contiguous", "channels_last"],
            "modes": ["train", "eval"],
            "passes": ["forward", "forward_backward"],
        },
    }
    suite.update(changes)
    return suite
