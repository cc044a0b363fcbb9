"""Shared setup for the norm tests.

* Makes the helper modules beside these tests (``norm_reference``, ``norm_cases``) importable: the
  project runs pytest with ``--import-mode=importlib``, which does not put test folders on
  ``sys.path``, and the helpers are plain modules, not tests.
* Runs each test on one intra-op thread (restored afterwards): torch's native norm kernels open a
  parallel region even for a few dozen elements, and when another process holds the second core
  every region waits for a descheduled thread -- gradcheck's thousands of tiny calls then took
  seconds instead of milliseconds.
"""

import sys
from pathlib import Path

import pytest
import torch

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)


@pytest.fixture(autouse=True)
def _one_intra_op_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def bln_fused_kernel():
    """BLN's compiled CPU kernel; the test is skipped, with the build's reason, where it cannot be built."""
    from normbench.norms import bln_kernel

    module = bln_kernel.kernel()
    if module is None:
        pytest.skip(f"BLN's fused kernel is unavailable here: {bln_kernel.unavailable_reason()}")
    return module


@pytest.fixture(params=["fused", "eager"])
def bln_kernel_mode(request, monkeypatch):
    """Runs a BLN test once through the fused CPU kernel (skipped where it cannot be built) and once
    through the eager kernel (the fused one switched off)."""
    from normbench.norms import bln_kernel

    if request.param == "fused":
        request.getfixturevalue("bln_fused_kernel")
    else:
        monkeypatch.setitem(bln_kernel._state, "tried", True)
        monkeypatch.setitem(bln_kernel._state, "module", None)
    return request.param
