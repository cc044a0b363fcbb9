"""Fixtures for the data tests: an isolated data directory, writers of small MNIST/CIFAR files, and a
loopback HTTP server with a registry of fixture datasets for ``normbench data fetch``.

The file writers are written from the format descriptions (LeCun et al.'s IDX layout, the CIFAR-10
python batch layout), independently of the loaders they test.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import pickle
import socket
import struct
import tarfile
import tempfile
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from normbench.data import DATA_DIR_ENV, datadir, sources
from normbench.data.sources import MIRROR_ENV, RemoteFile

MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


@pytest.fixture(autouse=True)
def no_data_dir_env(monkeypatch, tmp_path):
    """A developer's own NORMBENCH_DATA, mirror and cache must not leak into the tests: the per-user
    cache directory becomes a directory under the test's tmp_path (not created)."""
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    cache = tmp_path / "user-cache" / "normbench"
    monkeypatch.setattr(datadir, "default_data_dir", lambda: cache)
    return cache


def idx_bytes(array: np.ndarray, type_code: int = 0x08) -> bytes:
    """IDX encoding of ``array``: 0, 0, type code, ndim, big-endian uint32 dims, big-endian data."""
    big_endian = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[type_code]
    header = bytes([0, 0, type_code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array, dtype=big_endian).tobytes()


def write_file(path: Path, content: bytes, gz: bool = False) -> Path:
    """Write ``content`` to ``path`` (gzipped to ``path.gz`` when ``gz``); return the path written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        path = path.with_name(path.name + ".gz")
        content = gzip.compress(content)
    path.write_bytes(content)
    return path


class MnistFiles:
    """Small random MNIST-like IDX files (uint8 images 28×28, labels 0-9) written into a directory."""

    def __init__(self, n_train: int = 30, n_test: int = 12, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.train_images = rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8)
        self.train_labels = rng.integers(0, 10, n_train).astype(np.uint8)
        self.test_images = rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8)
        self.test_labels = rng.integers(0, 10, n_test).astype(np.uint8)

    def write(self, directory: Path, gz: bool | dict[str, bool] = False, skip: tuple[str, ...] = ()) -> dict[str, Path]:
        """Write the four files (``gz`` per file key or for all); ``skip`` names keys not to write."""
        paths = {}
        for key, name in MNIST_FILES.items():
            if key in skip:
                continue
            zipped = gz.get(key, False) if isinstance(gz, dict) else gz
            paths[key] = write_file(directory / name, idx_bytes(getattr(self, key)), zipped)
        return paths


class CifarFiles:
    """Small random CIFAR-10-like python batches (uint8 rows of 3,072 values, labels 0-9)."""

    def __init__(self, per_batch: int = 6, n_test: int = 5, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.train = [
            (rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8), rng.integers(0, 10, per_batch).tolist())
            for _ in range(5)
        ]
        self.test = (rng.integers(0, 256, (n_test, 3072), dtype=np.uint8), rng.integers(0, 10, n_test).tolist())

    def write(self, directory: Path, protocol: int = 2, bytes_keys: bool = True, skip: tuple[str, ...] = ()) -> None:
        """Pickle the six batches as the official dicts (``b"data"``, ``b"labels"`` keys when ``bytes_keys``)."""
        directory.mkdir(parents=True, exist_ok=True)
        batches = {f"data_batch_{i + 1}": batch for i, batch in enumerate(self.train)}
        batches["test_batch"] = self.test
        for name, (data, labels) in batches.items():
            if name in skip:
                continue
            key = (lambda k: k.encode()) if bytes_keys else (lambda k: k)
            batch = {key("batch_label"): key(name), key("data"): data, key("labels"): labels,
                     key("filenames"): [key(f"img_{i}.png") for i in range(len(labels))]}
            (directory / name).write_bytes(pickle.dumps(batch, protocol=protocol))

    def train_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """All training images ``(N, 3, 32, 32)`` and labels in the official order."""
        data = np.concatenate([d for d, _ in self.train]).reshape(-1, 3, 32, 32)
        return data, np.concatenate([np.asarray(labels) for _, labels in self.train])


@pytest.fixture
def mnist_files():
    """A factory of :class:`MnistFiles`."""
    return MnistFiles


@pytest.fixture
def cifar_files():
    """A factory of :class:`CifarFiles`."""
    return CifarFiles


@pytest.fixture
def idx_encode():
    """:func:`idx_bytes`, for tests that write IDX files by hand."""
    return idx_bytes


@pytest.fixture
def write():
    """:func:`write_file`."""
    return write_file


# ---- ``normbench data fetch``: a loopback HTTP server and fixture datasets in the real formats ----


class _Handler(BaseHTTPRequestHandler):
    """Serves the owner's files; a fault per path: ``wrong`` (one byte flipped), ``truncate`` (closes
    halfway through the body after promising all of it), ``missing`` (404)."""

    def do_GET(self):  # noqa: N802 (http.server's name)
        owner = self.server.owner
        owner.requests[self.path] += 1
        body, fault = owner.files.get(self.path), owner.faults.get(self.path)
        if body is None or fault == "missing":
            self.send_error(404)
            return
        if fault == "wrong":
            body = body[:-1] + bytes([body[-1] ^ 0xFF])
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        time.sleep(owner.delay_s)
        self.wfile.write(body[: len(body) // 2] if fault == "truncate" else body)
        self.close_connection = True

    def log_message(self, *args):
        """Keep the test output clean."""


class FileServer:
    """A real HTTP server on 127.0.0.1, in a thread, serving ``files`` (URL path → bytes)."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.faults: dict[str, str] = {}
        self.requests: Counter = Counter()
        self.delay_s = 0.0
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.owner = self
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def closed_port_url() -> str:
    """A loopback URL on which nothing listens (the port was bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def hash_of(content: bytes, algorithm: str) -> str:
    """``alg:hex`` of ``content`` by hashlib (independent of pooch, which the code under test uses)."""
    return f"{algorithm}:{hashlib.new(algorithm, content).hexdigest()}"


def _idx_gz_files(files: MnistFiles) -> dict[str, bytes]:
    return {f"{name}.gz": gzip.compress(idx_bytes(getattr(files, key)), mtime=0) for key, name in MNIST_FILES.items()}


def _cifar_archive(files: CifarFiles) -> tuple[bytes, dict[str, bytes]]:
    """``cifar-10-python.tar.gz`` laid out as the official one, and the bytes of each batch inside."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "cifar-10-batches-py"
        files.write(folder)
        meta = {b"num_cases_per_batch": 3, b"label_names": [b"airplane", b"automobile"], b"num_vis": 3072}
        (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
        (folder / "readme.html").write_text("<html>CIFAR-10 fixture</html>")
        batches = {p.name: p.read_bytes() for p in folder.iterdir() if "batch" in p.name and p.name != "batches.meta"}
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            tar.add(folder, arcname="cifar-10-batches-py")
    return buffer.getvalue(), batches


def _imdb_npz() -> bytes:
    """A tiny ``imdb.npz`` as Keras ships it: object arrays of word-index lists and 0/1 labels."""
    reviews = np.empty(3, dtype=object)
    reviews[:] = [[1, 14, 22, 16], [1, 194, 1153], [1, 4, 2, 2, 9]]
    buffer = io.BytesIO()
    np.savez(buffer, x_train=reviews, y_train=np.array([1, 0, 1]), x_test=reviews[:2], y_test=np.array([0, 1]))
    return buffer.getvalue()


class FetchFixtures:
    """Fixture files of every fetchable dataset, served at ``/<dataset>/<file>``, and a registry with
    their hashes whose official base URL is a closed port (a test that forgets the mirror fails)."""

    def __init__(self, server: FileServer):
        self.server, self.mirror = server, server.url
        self.mnist, self.fashion = MnistFiles(seed=1), MnistFiles(seed=2)
        self.cifar = CifarFiles(per_batch=3, n_test=5, seed=3)  # 20 images
        archive, batches = _cifar_archive(self.cifar)
        self.downloads = {
            "mnist": _idx_gz_files(self.mnist), "fashion_mnist": _idx_gz_files(self.fashion),
            "cifar10": {"cifar-10-python.tar.gz": archive}, "imdb": {"imdb.npz": _imdb_npz()},
        }
        algorithm = {"mnist": "md5", "fashion_mnist": "md5", "cifar10": "md5", "imdb": "sha256"}
        payload = {"mnist": self.downloads["mnist"], "fashion_mnist": self.downloads["fashion_mnist"],
                   "cifar10": batches, "imdb": self.downloads["imdb"]}
        official = closed_port_url() + "/"
        self.registry = {}
        for name, files in self.downloads.items():
            alg = algorithm[name]
            remote = tuple(RemoteFile(n, hash_of(b, alg), len(b)) for n, b in files.items())
            self.registry[name] = dataclasses.replace(
                sources.SOURCES[name], base_urls=(official,), files=remote,
                payload_hashes={n: hash_of(b, alg) for n, b in payload[name].items()},
            )
            for file_name, content in files.items():
                server.files[f"/{name}/{file_name}"] = content

    def path(self, dataset: str, file_name: str) -> str:
        """The URL path of a served file."""
        return f"/{dataset}/{file_name}"

    def hash(self, dataset: str, file_name: str) -> str:
        """The registry hash of a downloaded file."""
        return next(f.hash for f in self.registry[dataset].files if f.name == file_name)


@pytest.fixture
def file_server():
    """A :class:`FileServer`, shut down after the test."""
    server = FileServer()
    yield server
    server.close()


@pytest.fixture
def fetchable(file_server, monkeypatch):
    """:class:`FetchFixtures` served by ``file_server`` and installed as normbench's dataset sources."""
    fixtures = FetchFixtures(file_server)
    monkeypatch.setattr(sources, "SOURCES", fixtures.registry)
    return fixtures


@pytest.fixture
def closed_url():
    """A loopback URL on which nothing listens."""
    return closed_port_url()
