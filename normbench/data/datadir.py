"""Where the dataset files are: the ``data_dir`` option, else ``$NORMBENCH_DATA``, else a per-user cache.

normbench never downloads data at run time. The file-based datasets (``mnist``, ``fashion_mnist``,
``cifar10``) read files from one data directory: the ``data_dir`` option when given, else the
environment variable ``NORMBENCH_DATA`` (which ``normbench run --data-dir DIR`` sets), else the
per-user cache directory chosen the platform's way (platformdirs), which is where
``normbench data fetch`` puts what it downloads. :func:`data_root` is the one resolver that
``run``, ``validate`` and ``data`` share. Suites should rely on the command line or the variable:
a ``data_dir`` written into a suite's dataset options becomes part of every run id, so the same
experiment on two machines would get different ids.

A loader names the files it needs and the sub-directories it searches; :func:`find_files` returns
them all from the first directory that holds every one, or raises :class:`DataNotFoundError`
listing what was expected where, what each directory lacked and the command that fetches the
dataset. There is no partial match across directories and no fallback to other data.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence
from pathlib import Path

import platformdirs

from normbench.options import Owner, option_error

DATA_DIR_ENV = "NORMBENCH_DATA"
DEFAULT_ORIGIN = "the per-user cache directory"

HOW_TO_GIVE = f"pass --data-dir DIR to normbench (or the dataset option data_dir), or set {DATA_DIR_ENV}=DIR"


class DataNotFoundError(FileNotFoundError):
    """The user's data directory, or a file a loader needs in it, does not exist."""


class DataFormatError(ValueError):
    """A data file exists but is not in the format its loader reads (the message names the file)."""


def default_data_dir() -> Path:
    """The per-user cache directory for datasets (e.g. ``~/.cache/normbench`` on Linux)."""
    return platformdirs.user_cache_path("normbench")


def data_root(data_dir: str | os.PathLike[str] | None = None) -> tuple[Path, str]:
    """The data directory and where it came from: ``data_dir``, else ``$NORMBENCH_DATA``, else the cache.

    The directory need not exist (``normbench data fetch`` creates it). An empty ``data_dir`` or
    variable counts as not given.
    """
    if data_dir is not None and str(data_dir) != "":
        return Path(data_dir).expanduser(), "option data_dir"
    if os.environ.get(DATA_DIR_ENV):
        return Path(os.environ[DATA_DIR_ENV]).expanduser(), f"environment variable {DATA_DIR_ENV}"
    return default_data_dir(), DEFAULT_ORIGIN


def fetch_command(dataset: str, root: Path) -> str:
    """The exact ``normbench data fetch`` command that puts ``dataset`` into ``root``."""
    words = ["normbench", "data", "fetch", dataset]
    if Path(root).expanduser().absolute() != default_data_dir().absolute():
        words += ["--data-dir", str(root)]
    return shlex.join(words)


def resolve_data_dir(dataset: str, data_dir: str | os.PathLike[str] | None) -> tuple[Path, str]:
    """The existing data directory for ``dataset`` and where it came from (see :func:`data_root`).

    Raises :class:`DataNotFoundError` when the directory does not exist, with the command that
    fetches the dataset into it.
    """
    if data_dir is not None and not isinstance(data_dir, (str, os.PathLike)):
        raise option_error(Owner("dataset", dataset), "data_dir", data_dir, "a path")
    root, origin = data_root(data_dir)
    if not root.is_dir():
        raise DataNotFoundError(
            f"dataset {dataset!r}: data directory {str(root)!r} (from {origin}) does not exist or is not a "
            f"directory; fetch the dataset with `{fetch_command(dataset, root)}`, or name a directory that holds it: "
            f"{HOW_TO_GIVE}"
        )
    return root, origin


def find_files(
    dataset: str,
    root: Path,
    origin: str,
    subdirs: Sequence[str],
    names: Sequence[str],
    *,
    suffixes: Sequence[str] = ("",),
    hint: str = "",
) -> dict[str, Path]:
    """Map each of ``names`` to its path in the first of ``root/subdir`` that holds all of them.

    ``subdirs`` are searched in order (``""`` is ``root`` itself). A name matches a file called
    ``name + suffix`` for the first of ``suffixes`` that exists (e.g. ``("", ".gz")`` prefers the
    uncompressed file). ``hint`` is appended to the error, e.g. to say that an archive needs
    extracting.
    """
    searched: list[str] = []
    for subdir in subdirs:
        directory = root / subdir if subdir else root
        if not directory.is_dir():
            searched.append(f"  {directory}: no such directory")
            continue
        found: dict[str, Path] = {}
        for name in names:
            for suffix in suffixes:
                candidate = directory / (name + suffix)
                if candidate.is_file():
                    found[name] = candidate
                    break
        if len(found) == len(names):
            return found
        missing = [name for name in names if name not in found]
        searched.append(f"  {directory}: missing {', '.join(missing)}")
    alternatives = [s for s in suffixes if s]
    spelled = "" if not alternatives else " (each may also end in " + " or ".join(alternatives) + ")"
    message = (
        f"dataset {dataset!r}: files not found under {str(root)!r} (from {origin}).\n"
        f"Expected all of these files{spelled} together in one directory:\n"
        + "".join(f"  {name}\n" for name in names)
        + "Searched, in this order:\n"
        + "\n".join(searched)
        + f"\nFetch the dataset with `{fetch_command(dataset, root)}`, or name a directory that holds it: "
        + f"{HOW_TO_GIVE}."
    )
    if hint:
        message += f"\n{hint}"
    raise DataNotFoundError(message)
