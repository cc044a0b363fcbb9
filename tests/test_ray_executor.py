"""The Ray executor's connection errors: an unreachable address or a refused token is exit 2 with what to check.

The two-node run (a head and a second node started with `ray start` on one machine, a suite run
through `--address`) is the recipe in docs/extending.md, "A Ray cluster"; it is checked by
`test_a_suite_runs_on_a_two_node_cluster`, which starts real Ray nodes and so runs only when
NORMBENCH_RAY_CLUSTER_TEST=1.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from normbench.cli import app
from normbench.executors import ExecutorError
from normbench.ray_executor import connection_failure, probe_ray_address, ray_host_port

REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_unreachable_address_is_exit_2_with_the_address_and_what_to_check_and_nothing_written(tmp_path):
    pytest.importorskip("ray", reason="install the ray extra: pip install 'normbench[ray]'")
    address = f"127.0.0.1:{_free_port()}"
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["run", str(REPO / "suites" / "quick.yaml"), "--executor", "ray",
                                      "--address", address, "--out", str(out)])
    assert result.exit_code == 2
    assert f"--address {address}: no Ray cluster answers at {address}" in result.stderr
    assert "ray start --head --port=" in result.stderr and "Traceback" not in result.stderr + result.stdout
    assert not out.exists()


@pytest.mark.parametrize(("address", "expected"), [
    ("10.0.0.5:6390", ("10.0.0.5", 6390)), ("ray://head.local:10001", ("head.local", 10001)),
    ("headnode", ("headnode", 6379)), ("auto", None), ("[::1]:6390", ("::1", 6390)),
])
def test_addresses_are_parsed_for_the_probe(address, expected):
    assert ray_host_port(address) == expected


def test_a_malformed_port_is_named():
    with pytest.raises(ExecutorError, match=r"--address host:63x0: expected host:port, ray://host:port or auto"):
        probe_ray_address("host:63x0")


def test_a_refused_token_says_where_the_token_must_be():
    class AuthenticationError(Exception):
        """Stands in for ray.exceptions.AuthenticationError (matched by name)."""

    message = connection_failure("10.0.0.5:6379", AuthenticationError("Token authentication failed"))
    assert message.startswith("--address 10.0.0.5:6379: the Ray cluster refused this client's authentication token")
    assert "RAY_AUTH_TOKEN" in message and "~/.ray/auth_token" in message
    other = connection_failure("10.0.0.5:6379", ConnectionError("GCS timed out"))
    assert "did not accept this client (ConnectionError: GCS timed out)" in other and "RAY_AUTH_MODE=token" in other


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("NORMBENCH_RAY_CLUSTER_TEST") != "1",
                    reason="starts two real Ray nodes (a minute, all cores): set NORMBENCH_RAY_CLUSTER_TEST=1")
def test_a_suite_runs_on_a_two_node_cluster(tmp_path):
    ray_cli = shutil.which("ray")
    assert ray_cli, "the ray command is not on PATH"
    port = _free_port()
    # Token authentication switches itself on when ~/.ray/auth_token exists; this local cluster does without.
    env = {**os.environ, "PYTHONPATH": str(REPO), "RAY_AUTH_MODE": "disabled"}
    start = [ray_cli, "start", "--block", "--num-cpus=1", "--disable-usage-stats"]
    nodes = []
    try:
        # --block keeps each node's processes under one `ray start` in its own process group, so the test
        # stops exactly the nodes it started (`ray stop` would stop every Ray node of the user).
        nodes.append(subprocess.Popen([*start, "--head", f"--port={port}", "--include-dashboard=false"], env=env,
                                      start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        _wait_for_nodes(ray_cli, port, 1, env)
        nodes.append(subprocess.Popen([*start, f"--address=127.0.0.1:{port}"], env=env, start_new_session=True,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        _wait_for_nodes(ray_cli, port, 2, env)
        run = subprocess.run(
            [sys.executable, "-m", "normbench", "run", str(REPO / "suites" / "quick.yaml"), "--executor", "ray",
             "--address", f"127.0.0.1:{port}", "--out", str(tmp_path / "out"), "--no-report", "--set", "epochs=0.1",
             "--set", "seeds=1", "--set", "models=[cnn2d]"],
            env=env, capture_output=True, text=True, timeout=600)
        assert run.returncode == 0, run.stderr
        assert "12 runs (0 already stored; completed 12)" in run.stderr
    finally:
        for node in reversed(nodes):
            _stop_group(node)
        _forget_cluster_address(port)


def _forget_cluster_address(port: int) -> None:
    """Remove the head's address file if it names this test's cluster (as `ray stop` would), so that a
    later `ray.init()` on this machine starts a local instance instead of joining the stopped one."""
    import tempfile

    address_file = Path(tempfile.gettempdir()) / "ray" / "ray_current_cluster"
    with contextlib.suppress(OSError):
        if address_file.read_text().strip().endswith(f":{port}"):
            address_file.unlink()


def _wait_for_nodes(ray_cli: str, port: int, count: int, env: dict, timeout_s: float = 120) -> None:
    """Wait until `ray status` lists ``count`` alive nodes."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = subprocess.run([ray_cli, "status", f"--address=127.0.0.1:{port}"], env=env, capture_output=True,
                                text=True, timeout=60)
        if status.returncode == 0 and status.stdout.count(" node_") >= count:
            return
        time.sleep(2)
    raise AssertionError(f"{count} Ray node(s) did not come up within {timeout_s} s")


def _stop_group(node: subprocess.Popen) -> None:
    """SIGTERM the node's process group (its `ray start` stops its processes), SIGKILL what remains."""
    for sig, wait_s in ((signal.SIGTERM, 20), (signal.SIGKILL, 5)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(node.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            node.wait(timeout=wait_s)
        time.sleep(1)
