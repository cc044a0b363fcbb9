"""``normbench data fetch``: download a dataset's files with pooch, check their hashes, unpack, under a lock.

pooch (``pooch.retrieve``) does the HTTP transfer into a temporary file next to the target, moves
it into place only once it is complete, and skips a file already present with the known hash, so
a file in the cache is never a partial download. The hash is checked inside the downloader, before
pooch moves the file, so a mismatch deletes the download and reports the file, the expected and
the actual hash. An archive (CIFAR-10) is unpacked into a staging directory and moved into place
in one rename. A lock file per dataset in the data directory serialises fetches of the same
dataset from several processes: the second waits, then finds the files verified and reuses them.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import shutil
import tarfile
import tempfile
import zlib
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pooch
from rich.filesize import decimal as format_size

from normbench.data.datadir import fetch_command
from normbench.data.sources import DatasetSource, RemoteFile, file_urls
from normbench.data.verify import DatasetState, dataset_state, hash_file

# Seconds without a byte before a transfer is abandoned (requests' connect and read timeout).
TIMEOUT_S = 60
# Bytes per read and write: pooch's default (1 KiB) means ~170,000 flushed writes for CIFAR-10.
CHUNK_BYTES = 64 * 1024


class FetchError(Exception):
    """A dataset could not be fetched; the message names the URLs tried and how to install it by hand."""


class HashMismatchError(FetchError):
    """A downloaded file's hash differs from the published one; the download was deleted."""

    def __init__(self, path: Path, url: str, expected: str, actual: str):
        self.path, self.url, self.expected, self.actual = path, url, expected, actual
        super().__init__(f"{path}: the file downloaded from {url} has hash {actual}, expected {expected}; "
                         "the download was deleted")


class FetchReporter:
    """Receives a fetch's progress; this base class reports nothing (see ``ConsoleReporter``)."""

    def note(self, message: str) -> None:
        """A message for the user, e.g. that another process holds the dataset's lock."""

    def download_started(self, name: str, url: str) -> Any:
        """A download begins: return a pooch progress bar (``total``, ``update``, ``reset``, ``close``) or None."""
        return None

    def download_finished(self, name: str, url: str, size: int | None) -> None:
        """A download ended: ``size`` bytes verified, or ``None`` when it failed."""


@dataclass
class FetchResult:
    """What a fetch of one dataset did."""

    name: str
    state: DatasetState
    downloaded: list[RemoteFile] = field(default_factory=list)
    unpacked: str | None = None  # the archive unpacked, if any

    def summary(self) -> str:
        """One line: what was downloaded or unpacked, and where the dataset now lies."""
        done = []
        if self.downloaded:
            files = "file" if len(self.downloaded) == 1 else "files"
            size = format_size(sum(f.size for f in self.downloaded))
            done.append(f"downloaded {len(self.downloaded)} {files} ({size})")
        if self.unpacked:
            done.append(f"unpacked {self.unpacked}")
        if not done:
            return f"{self.name}: already present ({self.state.summary}) in {self.state.directory}"
        return f"{self.name}: {', '.join(done)}, {self.state.summary}, in {self.state.directory}"


def fetch_dataset(
    source: DatasetSource, root: Path, *, mirror: str | None = None, reporter: FetchReporter | None = None
) -> FetchResult:
    """Make ``source``'s files present and verified under the data directory ``root``.

    Files already there with the right hash are kept (whichever layout the reader accepts); the
    others are downloaded from ``mirror`` (else ``$NORMBENCH_DATA_MIRROR``, else the official URLs
    in order). Raises :class:`FetchError` (or :class:`HashMismatchError`) when that fails.
    """
    reporter = reporter or FetchReporter()
    root = Path(root).expanduser()
    with dataset_lock(root, source.name, reporter):
        state = dataset_state(source, root)
        if state.usable:
            return FetchResult(source.name, state)
        downloaded = [f for f in source.files if _retrieve(source, f, root, mirror, reporter)]
        unpacked = _unpack(source, root) if source.unpacks_to is not None else None
        state = dataset_state(source, root)
        if not state.usable:
            problems = "\n".join(f"  {f.describe()}" for f in state.problems)
            raise FetchError(
                f"{source.name}: after fetching, the files the reader uses are still not right:\n{problems}\n"
                f"Delete them and run `{fetch_command(source.name, root)}` again."
            )
        return FetchResult(source.name, state, downloaded, unpacked)


@contextmanager
def dataset_lock(root: Path, name: str, reporter: FetchReporter) -> Iterator[None]:
    """Hold an exclusive lock on dataset ``name`` in ``root`` (waiting for another holder to finish)."""
    lock_path = root / f".{name}.fetch.lock"
    try:
        root.mkdir(parents=True, exist_ok=True)
        handle = open(lock_path, "a")
    except OSError as error:
        raise FetchError(f"{name}: cannot use the data directory {root}: {error}") from error
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            reporter.note(f"{name}: another process is fetching it ({lock_path} is locked); waiting")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def manual_instructions(source: DatasetSource, root: Path) -> str:
    """How to install ``source`` by hand: which files, from where, into which directory."""
    names = ", ".join(f.name for f in source.files)
    return (
        f"To install it by hand, download {names} from {source.homepage} (or a mirror) into "
        f"{root / source.download_dir}, then run `{fetch_command(source.name, root)}` again: it verifies "
        "the files already there instead of downloading them."
    )


class _VerifyingDownloader:
    """A pooch downloader: HTTP with a progress bar, then the hash check before pooch keeps the file."""

    def __init__(self, file: RemoteFile, target: Path, reporter: FetchReporter):
        self.file, self.target, self.reporter = file, target, reporter
        self.called = False

    def __call__(self, url: str, output_file: str, pooch_instance: Any) -> None:
        self.called = True
        progress = self.reporter.download_started(self.file.name, url)
        http = pooch.HTTPDownloader(progressbar=progress if progress is not None else False, chunk_size=CHUNK_BYTES,
                                    timeout=TIMEOUT_S)
        try:
            http(url, output_file, pooch_instance)
            actual = hash_file(Path(output_file), self.file.hash)
            if actual != self.file.hash:
                raise HashMismatchError(self.target, url, self.file.hash, actual)
        except BaseException:
            self.reporter.download_finished(self.file.name, url, None)
            raise
        self.reporter.download_finished(self.file.name, url, Path(output_file).stat().st_size)


def _retrieve(source: DatasetSource, file: RemoteFile, root: Path, mirror: str | None,
              reporter: FetchReporter) -> bool:
    """Make ``file`` present with its hash in the download directory; True when it was downloaded."""
    import requests

    directory = root / source.download_dir
    failures: list[str] = []
    mismatch: HashMismatchError | None = None
    for url in file_urls(source, file, mirror):
        downloader = _VerifyingDownloader(file, directory / file.name, reporter)
        try:
            with _quiet_pooch():
                pooch.retrieve(url, known_hash=file.hash, fname=file.name, path=directory, downloader=downloader)
            return downloader.called
        except HashMismatchError as error:
            mismatch = error
            failures.append(f"  {url}: hash {error.actual}, expected {error.expected}; the download was deleted")
        except requests.RequestException as error:
            failures.append(f"  {url}: {_describe(error)}")
        except OSError as error:  # the cache itself: no space, no permission
            raise FetchError(f"{source.name}: cannot write {directory / file.name}: {error}") from error
    tried = "\n".join(failures)
    if mismatch is not None and len(failures) == 1:
        raise mismatch  # the only URL tried: its own message names the file and both hashes
    raise FetchError(f"{source.name}: could not download {file.name}:\n{tried}\n{manual_instructions(source, root)}")


def _describe(error: Exception) -> str:
    """A short reason for a failed request (requests' messages nest the urllib3 ones)."""
    import requests

    if isinstance(error, requests.HTTPError) and error.response is not None:
        return f"HTTP error {error.response.status_code} {error.response.reason}"
    if isinstance(error, requests.Timeout):
        return f"no answer within {TIMEOUT_S} s"
    text = str(error)
    errno = re.search(r"\[Errno [^\]]+\][^'\")]*", text)
    if isinstance(error, requests.ConnectionError):
        cause = errno.group(0).strip() if errno else type(error).__name__
        return f"cannot connect ({cause}); check the network or the mirror"
    if isinstance(error, requests.exceptions.ChunkedEncodingError):
        return "the connection closed before the whole file arrived (interrupted transfer)"
    return f"{type(error).__name__}: {text[:200]}"


@contextmanager
def _quiet_pooch() -> Iterator[None]:
    """Silence pooch's "Downloading …" log lines; the reporter shows progress instead."""
    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def _unpack(source: DatasetSource, root: Path) -> str:
    """Unpack the downloaded archive so its top directory replaces ``source.unpacks_to`` in one rename;
    return the archive's name."""
    parent = root / source.download_dir
    archive = parent / source.files[0].name
    staging = Path(tempfile.mkdtemp(prefix=f".{source.name}-unpack-", dir=parent))
    try:
        try:
            with tarfile.open(archive, "r:*") as tar:
                tar.extractall(staging, filter="data")  # no absolute paths, links out or device files
        except (tarfile.TarError, OSError, EOFError, zlib.error) as error:
            raise FetchError(f"{archive}: cannot unpack: {error}; delete it and fetch again") from error
        unpacked = staging / source.unpacks_to
        if not unpacked.is_dir():
            raise FetchError(f"{archive}: holds no {source.unpacks_to}/ directory; it is not the official archive")
        target = parent / source.unpacks_to
        if target.exists():
            # An incomplete or corrupt earlier copy (the state check said so): moved aside and deleted
            # with the staging directory, so the reader never sees old and new files mixed.
            os.replace(target, staging / ".previous")
        os.replace(unpacked, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return archive.name
