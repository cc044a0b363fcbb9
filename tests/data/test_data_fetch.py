"""`normbench data fetch|verify|list` against a real HTTP server on the loopback interface.

The server (tests/data/conftest.py) serves small files in the real formats (gzipped IDX files, a
CIFAR-10 archive laid out as the official one, a Keras-style imdb.npz); the registry under test
holds their hashes, computed here with hashlib.
"""

from __future__ import annotations

import gzip
import hashlib
import multiprocessing

import numpy as np
from typer.testing import CliRunner

from normbench.cli import app
from normbench.data import DATA_DIR_ENV, load_dataset
from normbench.data.sources import MIRROR_ENV

runner = CliRunner()
MNIST_GZ = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
            "t10k-labels-idx1-ubyte.gz"]


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def fetch(fixtures, data_dir, *names):
    return invoke("data", "fetch", *names, "--data-dir", data_dir, "--mirror", fixtures.mirror)


def files_under(directory):
    """Every file under ``directory``, relative, sorted (hidden lock files excluded)."""
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file()
                  and not p.name.endswith(".fetch.lock"))


def assert_clean_exit(result, code):
    """Exit ``code`` through typer (no traceback)."""
    assert result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit) or (code == 0 and result.exception is None), result.exception


def test_fetch_all_then_verify_list_and_load_in_torchvision_and_keras_layout(fetchable, tmp_path):
    data = tmp_path / "data"
    result = fetch(fetchable, data, "mnist", "fashion_mnist", "cifar10", "imdb")
    assert_clean_exit(result, 0)
    batches = ["batches.meta", "data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5",
               "readme.html", "test_batch"]
    assert files_under(data) == sorted(
        [f"FashionMNIST/raw/{n}" for n in MNIST_GZ] + [f"MNIST/raw/{n}" for n in MNIST_GZ]
        + ["cifar-10-python.tar.gz"] + [f"cifar-10-batches-py/{n}" for n in batches] + ["imdb.npz"]
    )
    assert "mnist: downloaded 4 files" in result.output and f"verified, in {data / 'MNIST' / 'raw'}" in result.output
    assert "cifar10: downloaded 1 file (" in result.output
    assert ", unpacked cifar-10-python.tar.gz, verified" in result.output
    assert "imdb: downloaded 1 file (" in result.output
    assert (data / "MNIST/raw" / MNIST_GZ[0]).read_bytes() == fetchable.downloads["mnist"][MNIST_GZ[0]]

    verify = invoke("data", "verify", "--data-dir", data)
    assert_clean_exit(verify, 0)
    for name in ("mnist", "fashion_mnist", "cifar10", "imdb"):
        assert f"{name}: verified in" in verify.output
    listing = invoke("data", "list", "--data-dir", data)
    assert_clean_exit(listing, 0)
    assert listing.output.count(": verified (in ") == 4

    # The loaders read what was fetched, in place: the same arrays the fixture files hold.
    mnist = load_dataset("mnist", data_dir=str(data))
    assert np.array_equal(mnist.y_train.numpy(), fetchable.mnist.train_labels)
    fashion = load_dataset("fashion_mnist", data_dir=str(data))
    assert np.array_equal(fashion.y_test.numpy(), fetchable.fashion.test_labels)
    cifar = load_dataset("cifar10", data_dir=str(data))
    assert cifar.n_train == 15 and np.array_equal(cifar.y_train.numpy(), fetchable.cifar.train_arrays()[1])
    with np.load(data / "imdb.npz", allow_pickle=True) as imdb:
        assert list(imdb["y_train"]) == [1, 0, 1]


def test_a_second_fetch_downloads_nothing(fetchable, tmp_path):
    assert_clean_exit(fetch(fetchable, tmp_path, "mnist", "cifar10"), 0)
    before = sum(fetchable.server.requests.values())
    again = fetch(fetchable, tmp_path, "mnist", "cifar10")
    assert_clean_exit(again, 0)
    assert sum(fetchable.server.requests.values()) == before == 5
    assert f"mnist: already present (verified) in {tmp_path / 'MNIST' / 'raw'}" in again.output


def test_environment_gives_mirror_and_directory_and_the_cache_is_the_default(fetchable, tmp_path, monkeypatch,
                                                                             no_data_dir_env):
    monkeypatch.setenv(MIRROR_ENV, fetchable.mirror)
    assert_clean_exit(invoke("data", "fetch", "imdb"), 0)
    assert (no_data_dir_env / "imdb.npz").is_file()
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "env"))
    assert_clean_exit(invoke("data", "fetch", "imdb"), 0)
    assert (tmp_path / "env" / "imdb.npz").is_file()


def test_wrong_bytes_are_deleted_and_named_with_both_hashes(fetchable, tmp_path):
    name = MNIST_GZ[0]
    fetchable.server.faults[fetchable.path("mnist", name)] = "wrong"
    result = fetch(fetchable, tmp_path, "mnist")
    assert_clean_exit(result, 1)
    served = fetchable.downloads["mnist"][name]
    wrong = served[:-1] + bytes([served[-1] ^ 0xFF])
    actual = f"md5:{hashlib.md5(wrong).hexdigest()}"
    assert f"{tmp_path / 'MNIST' / 'raw' / name}: the file downloaded from {fetchable.mirror}/mnist/{name} has " \
           f"hash {actual}, expected {fetchable.hash('mnist', name)}; the download was deleted" in result.output
    assert files_under(tmp_path) == []  # nothing half-written or unverified stays

    del fetchable.server.faults[fetchable.path("mnist", name)]
    assert_clean_exit(fetch(fetchable, tmp_path, "mnist"), 0)  # a later fetch starts clean
    assert files_under(tmp_path) == [f"MNIST/raw/{n}" for n in sorted(MNIST_GZ)]


def test_a_server_closing_mid_transfer_leaves_nothing_and_says_what_to_do(fetchable, tmp_path):
    fetchable.server.faults[fetchable.path("cifar10", "cifar-10-python.tar.gz")] = "truncate"
    result = fetch(fetchable, tmp_path, "cifar10")
    assert_clean_exit(result, 1)
    assert f"{fetchable.mirror}/cifar10/cifar-10-python.tar.gz: the connection closed before the whole file " \
           "arrived (interrupted transfer)" in result.output
    assert f"download cifar-10-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html (or a mirror) into " \
           f"{tmp_path}" in result.output
    assert files_under(tmp_path) == []
    del fetchable.server.faults[fetchable.path("cifar10", "cifar-10-python.tar.gz")]
    assert_clean_exit(fetch(fetchable, tmp_path, "cifar10"), 0)


def test_closed_port_exits_1_with_the_url_and_manual_instructions(fetchable, tmp_path, closed_url):
    result = invoke("data", "fetch", "fashion_mnist", "--data-dir", tmp_path, "--mirror", closed_url)
    assert_clean_exit(result, 1)
    assert f"fashion_mnist: could not download train-images-idx3-ubyte.gz:\n  {closed_url}/fashion_mnist/" \
           "train-images-idx3-ubyte.gz: cannot connect ([Errno 111] Connection refused); check the network or the " \
           "mirror" in result.output
    assert f"download {', '.join(MNIST_GZ)} from https://github.com/zalandoresearch/fashion-mnist (or a mirror) " \
           f"into {tmp_path / 'FashionMNIST' / 'raw'}, then run `normbench data fetch fashion_mnist --data-dir " \
           f"{tmp_path}` again" in result.output
    assert "Traceback" not in result.output and files_under(tmp_path) == []


def test_http_error_is_reported_with_its_status(fetchable, tmp_path):
    fetchable.server.faults[fetchable.path("imdb", "imdb.npz")] = "missing"
    result = fetch(fetchable, tmp_path, "imdb")
    assert_clean_exit(result, 1)
    assert f"{fetchable.mirror}/imdb/imdb.npz: HTTP error 404" in result.output
    assert files_under(tmp_path) == []


def test_unknown_dataset_exits_2_listing_known_ones_before_downloading(fetchable, tmp_path):
    result = fetch(fetchable, tmp_path, "mnist", "mnist3")
    assert_clean_exit(result, 2)
    assert "unknown dataset 'mnist3'; normbench data knows: cifar10, fashion_mnist, imdb, mnist" in result.output
    assert sum(fetchable.server.requests.values()) == 0
    assert_clean_exit(invoke("data", "verify", "nope", "--data-dir", tmp_path), 2)


def test_verify_reports_corrupt_and_missing_files_and_fetch_replaces_them(fetchable, tmp_path):
    assert_clean_exit(fetch(fetchable, tmp_path, "mnist", "cifar10"), 0)
    labels = tmp_path / "MNIST" / "raw" / MNIST_GZ[1]
    labels.write_bytes(b"garbage")
    (tmp_path / "cifar-10-batches-py" / "test_batch").unlink()
    result = invoke("data", "verify", "mnist", "cifar10", "--data-dir", tmp_path)
    assert_clean_exit(result, 1)
    assert f"{labels}: corrupt: expected {fetchable.hash('mnist', MNIST_GZ[1])}, actual " \
           f"md5:{hashlib.md5(b'garbage').hexdigest()}" in result.output
    assert f"{tmp_path / 'cifar-10-batches-py' / 'test_batch'}: missing" in result.output
    assert f"to replace them: normbench data fetch mnist --data-dir {tmp_path}" in result.output
    assert "missing or corrupt files: mnist, cifar10" in result.output

    requests_before = fetchable.server.requests.copy()
    assert_clean_exit(fetch(fetchable, tmp_path, "mnist", "cifar10"), 0)
    assert_clean_exit(invoke("data", "verify", "mnist", "cifar10", "--data-dir", tmp_path), 0)
    # Only the corrupt labels file was downloaded again; the archive on disk was unpacked again.
    assert fetchable.server.requests - requests_before == {fetchable.path("mnist", MNIST_GZ[1]): 1}


def test_verify_without_names_checks_only_what_is_on_disk(fetchable, tmp_path):
    assert_clean_exit(fetch(fetchable, tmp_path, "imdb"), 0)
    result = invoke("data", "verify", "--data-dir", tmp_path)
    assert_clean_exit(result, 0)
    assert "imdb: verified" in result.output and "mnist: not fetched" in result.output
    assert_clean_exit(invoke("data", "verify", "mnist", "--data-dir", tmp_path), 1)


def test_torchvision_and_keras_directories_are_used_in_place(fetchable, tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name, content in fetchable.downloads["mnist"].items():  # torchvision keeps the .gz and the extracted file
        (raw / name).write_bytes(content)
        (raw / name[:-3]).write_bytes(gzip.decompress(content))
    (tmp_path / "imdb.npz").write_bytes(fetchable.downloads["imdb"]["imdb.npz"])  # ~/.keras/datasets/imdb.npz
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(fetchable.downloads["cifar10"]["cifar-10-python.tar.gz"])
    result = fetch(fetchable, tmp_path, "mnist", "imdb", "cifar10")
    assert_clean_exit(result, 0)
    assert sum(fetchable.server.requests.values()) == 0  # the archive was verified and unpacked, not downloaded
    assert "mnist: already present (verified)" in result.output
    assert f"cifar10: unpacked cifar-10-python.tar.gz, verified, in {tmp_path / 'cifar-10-batches-py'}" in result.output


def test_uncompressed_files_without_a_published_hash_are_present_but_unverified(fetchable, tmp_path, mnist_files):
    mnist_files().write(tmp_path)  # the four files uncompressed, directly in the data directory
    verify = invoke("data", "verify", "mnist", "--data-dir", tmp_path)
    assert_clean_exit(verify, 0)
    assert f"mnist: present, not verified in {tmp_path}" in verify.output
    assert "not verified (no hash is published for this spelling)" in verify.output
    assert_clean_exit(fetch(fetchable, tmp_path, "mnist"), 0)
    assert sum(fetchable.server.requests.values()) == 0


def _fetch_in_child(data_dir, mirror, queue):
    """Body of a concurrent fetch process (forked: it inherits the test registry)."""
    result = CliRunner().invoke(app, ["data", "fetch", "mnist", "--data-dir", str(data_dir), "--mirror", mirror])
    queue.put((result.exit_code, result.output))


def test_concurrent_fetches_of_one_dataset_download_once_and_leave_it_intact(fetchable, tmp_path):
    fetchable.server.delay_s = 0.3  # each file takes a while, so both processes overlap
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    children = [context.Process(target=_fetch_in_child, args=(tmp_path, fetchable.mirror, queue)) for _ in range(2)]
    for child in children:
        child.start()
    outcomes = [queue.get(timeout=60) for _ in children]
    for child in children:
        child.join(timeout=30)
    assert [code for code, _ in outcomes] == [0, 0], outcomes
    assert sorted(fetchable.server.requests.values()) == [1, 1, 1, 1]  # one process downloaded, the other reused
    assert any("already present (verified)" in output for _, output in outcomes)
    assert_clean_exit(invoke("data", "verify", "mnist", "--data-dir", tmp_path), 0)
    assert files_under(tmp_path) == [f"MNIST/raw/{n}" for n in sorted(MNIST_GZ)]
