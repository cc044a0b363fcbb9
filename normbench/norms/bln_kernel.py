"""BLN's fused CPU kernel (``bln_kernel.cpp``): built on first use, with the eager kernel as fallback.

BLN reduces one tensor over two different axes (N and C), which no single torch op does, so an
eager composition reads and writes the activation ~30 times per training step where BN's kernel
does ~8 (issue 15). ``bln_kernel.cpp`` does BLN's forward in 3 passes and its backward in 5.

The C++ file is compiled by ``torch.utils.cpp_extension.load`` (the system C++ compiler and
ninja, as torch.compile's CPU backend also needs) the first time a process trains a BLN layer on
the CPU, and cached per source version under torch's extension directory (``TORCH_EXTENSIONS_DIR``,
default ``~/.cache/torch_extensions``): about a minute once per machine, a fraction of a second
after. Where it cannot be built (no compiler, no ninja) or ``NORMBENCH_BLN_KERNEL=eager`` is set,
BLN runs the eager kernel of ``batch_layer_function.py`` - the same maths, slower - and
``unavailable_reason()`` says why (``normbench env`` prints it).
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
import warnings
from importlib import resources

SOURCE_NAME = "bln_kernel.cpp"  # holds the Python bindings
SOURCE_NAMES = (SOURCE_NAME, "bln_rows_kernel.cpp")
ENV_SWITCH = "NORMBENCH_BLN_KERNEL"  # "eager" (or 0/off) runs the eager kernel only

_lock = threading.Lock()
_state: dict = {"tried": False, "module": None, "reason": None}


def _source_paths() -> list[str]:
    return [str(resources.files("normbench.norms") / name) for name in SOURCE_NAMES]


def _module_name(paths: list[str]) -> str:
    """One cached build per source version: the name carries the sources' hash."""
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as handle:
            digest.update(handle.read())
    return f"normbench_bln_{digest.hexdigest()[:12]}"


def _disabled_by_env() -> bool:
    return os.environ.get(ENV_SWITCH, "").strip().lower() in {"eager", "0", "off", "false", "no"}


def _build_directory(name: str) -> str:
    """torch's per-extension build directory (created if missing)."""
    from torch.utils import cpp_extension

    return cpp_extension._get_build_directory(name, verbose=False)


def _is_built(build_dir: str) -> bool:
    return any(f.endswith(".so") for f in os.listdir(build_dir))


def _build():
    from torch.utils import cpp_extension

    paths = _source_paths()
    name = _module_name(paths)
    build_dir = _build_directory(name)
    if not _is_built(build_dir):
        print(f"normbench: building BLN's fused CPU kernel into {build_dir} (once per machine, about a minute)",
              file=sys.stderr, flush=True)
    return cpp_extension.load(
        name=name, sources=paths, extra_cflags=["-O3", "-fopenmp"], extra_ldflags=["-fopenmp"],
        build_directory=build_dir, verbose=False,
    )


def kernel():
    """The compiled module, or None (the reason in ``unavailable_reason()``); built once per process."""
    if _state["tried"]:
        return _state["module"]
    with _lock:
        if not _state["tried"]:
            if _disabled_by_env():
                _state["reason"] = f"{ENV_SWITCH}={os.environ[ENV_SWITCH]} asks for the eager kernel"
            else:
                try:
                    _state["module"] = _build()
                except Exception as error:  # no compiler, no ninja, a failed build: run eager, say why
                    sources = " + ".join(SOURCE_NAMES)
                    _state["reason"] = f"could not build {sources}: {type(error).__name__}: {error}".strip()
                    warnings.warn(f"normbench: BLN runs its slower eager kernel ({_state['reason'][:300]})",
                                  RuntimeWarning, stacklevel=2)
            _state["tried"] = True
    return _state["module"]


def unavailable_reason() -> str | None:
    """Why the fused kernel is not in use (None when it is, or has not been asked for yet)."""
    return _state["reason"]


def status() -> str:
    """Which kernel BLN trains with on the CPU: builds the fused one if it was not tried yet."""
    module = kernel()
    return "fused CPU kernel" if module is not None else f"eager ({unavailable_reason()})"


def describe() -> str:
    """Which kernel BLN trains with on the CPU, without building anything (for the environment
    record stored with every result)."""
    if _state["tried"]:
        return status()
    if _disabled_by_env():
        return f"eager ({ENV_SWITCH}={os.environ[ENV_SWITCH]})"
    try:
        built = _is_built(_build_directory(_module_name(_source_paths())))
    except Exception:  # a torch without this (private) helper, an unwritable cache: say "on first use"
        built = False
    return "fused CPU kernel" if built else "fused CPU kernel, built on first use"
