"""What of a fetchable dataset is on disk: found where its reader looks, re-hashed against known hashes.

A dataset's files are looked for as its reader looks for them: in each of the reader's
sub-directories in order, the first holding every file wins. Each file found there is hashed when
a hash is known for the spelling on disk; MNIST's files may also lie uncompressed, a spelling for
which no hash is published, so such a file is "unverified" rather than "ok". When no directory
holds every file, the state is that of the directory holding the most of them (else of the
directory a fetch would fill), so that a half-filled directory is reported as such.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pooch

from normbench.data.sources import DatasetSource

OK, UNVERIFIED, CORRUPT, MISSING = "ok", "unverified", "corrupt", "missing"


@dataclass(frozen=True)
class FileState:
    """One file a reader needs: where it is (or should be), its status, and the hashes compared."""

    path: Path
    status: str
    expected: str | None = None
    actual: str | None = None

    def describe(self) -> str:
        """One line for the user, naming the file and, when corrupt, the expected and actual hash."""
        if self.status == CORRUPT:
            return f"{self.path}: corrupt: expected {self.expected}, actual {self.actual}"
        if self.status == MISSING:
            return f"{self.path}: missing"
        if self.status == UNVERIFIED:
            return f"{self.path}: present, not verified (no hash is published for this spelling)"
        return f"{self.path}: ok ({self.expected})"


@dataclass(frozen=True)
class DatasetState:
    """The state of every file of one dataset in one directory."""

    name: str
    directory: Path
    files: tuple[FileState, ...]

    @property
    def usable(self) -> bool:
        """Every file is present and none is known to be corrupt."""
        return all(f.status in (OK, UNVERIFIED) for f in self.files)

    @property
    def on_disk(self) -> bool:
        """At least one of the files is present."""
        return any(f.status != MISSING for f in self.files)

    @property
    def problems(self) -> list[FileState]:
        """The missing and corrupt files."""
        return [f for f in self.files if f.status in (MISSING, CORRUPT)]

    @property
    def summary(self) -> str:
        """``verified``, ``present, not verified``, ``corrupt``, ``incomplete`` or ``missing``."""
        statuses = {f.status for f in self.files}
        if statuses == {OK}:
            return "verified"
        if self.usable:
            return "present, not verified"
        if CORRUPT in statuses:
            return "corrupt"
        return "incomplete" if self.on_disk else "missing"


def hash_file(path: Path, known_hash: str) -> str:
    """The hash of ``path`` as ``alg:hex``, with the algorithm of ``known_hash`` (``md5:…``, ``sha256:…``)."""
    algorithm = known_hash.split(":", 1)[0] if ":" in known_hash else "sha256"
    return f"{algorithm}:{pooch.file_hash(str(path), alg=algorithm)}"


def dataset_state(source: DatasetSource, root: Path) -> DatasetState:
    """Where ``source``'s files are under the data directory ``root`` and whether each matches its hash."""
    best: tuple[int, Path] | None = None
    for subdir in source.search_dirs:
        directory = root / subdir if subdir else root
        found = sum(_spelling_on_disk(source, directory, name) is not None for name in source.payload)
        if found == len(source.payload):
            return _state_in(source, directory)
        if found and (best is None or found > best[0]):
            best = (found, directory)
    return _state_in(source, best[1] if best else root / source.payload_dir)


def _state_in(source: DatasetSource, directory: Path) -> DatasetState:
    return DatasetState(source.name, directory, tuple(_file_state(source, directory, n) for n in source.payload))


def _spelling_on_disk(source: DatasetSource, directory: Path, name: str) -> Path | None:
    """The first spelling of ``name`` that exists in ``directory``, hashed spellings first."""
    spellings = sorted((name + suffix for suffix in source.suffixes), key=lambda s: s not in source.payload_hashes)
    return next((directory / s for s in spellings if (directory / s).is_file()), None)


def _file_state(source: DatasetSource, directory: Path, name: str) -> FileState:
    path = _spelling_on_disk(source, directory, name)
    if path is None:
        hashed = [name + s for s in source.suffixes if name + s in source.payload_hashes]
        return FileState(directory / (hashed[0] if hashed else name), MISSING)
    expected = source.payload_hashes.get(path.name)
    if expected is None:
        return FileState(path, UNVERIFIED)
    actual = hash_file(path, expected)
    return FileState(path, OK if actual == expected else CORRUPT, expected, actual)
