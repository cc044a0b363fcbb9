"""The Ray executor: each RunSpec is a Ray task on a local or remote cluster (`pip install 'normbench[ray]'`).

Connecting happens in ``start()``, before the suite is validated and before anything is written,
so a cluster that cannot be reached (or that refuses this client's token) stops `normbench run`
with exit 2 and a message naming the address and what to check, instead of Ray's retry loop and
traceback. Ray keeps retrying an unreachable GCS for minutes, so the address is first probed with
a plain TCP connection.
"""

from __future__ import annotations

import socket
from typing import Any, Iterator, Sequence

from normbench.executors import Executor, ExecutorError, execute_one
from normbench.spec import FAILED, RunResult, RunSpec

PROBE_TIMEOUT_S = 3.0
DEFAULT_GCS_PORT = 6379
RAY_CLIENT_PREFIX = "ray://"


class RayExecutor(Executor):
    """Runs specs as Ray tasks; results stream back as they finish.

    CUDA runs request one GPU, others `cpus_per_task` CPUs; Ray retries a task whose worker was
    lost up to `max_retries` times, after which the run is recorded as failed. Without an address
    a local Ray instance is started (``num_cpus`` CPUs) and shut down by ``close()``.
    """

    name = "ray"

    def __init__(self, address: str | None = None, cpus_per_task: int = 1, max_retries: int = 1,
                 num_cpus: int | None = None):
        self.address = address
        self.cpus_per_task = cpus_per_task
        self.max_retries = max_retries
        self.num_cpus = num_cpus
        self._connected_here = False  # whether start() connected (so close() disconnects)

    def start(self) -> None:
        """Connect to the cluster at ``address`` (or start a local one); ExecutorError when it cannot."""
        ray = _import_ray()
        if ray.is_initialized():
            return
        if self.address:
            probe_ray_address(self.address)
        kwargs: dict[str, Any] = {"address": self.address} if self.address else {"num_cpus": self.num_cpus}
        try:
            ray.init(ignore_reinit_error=True, log_to_driver=False, **kwargs)
        except Exception as exc:  # Ray's ConnectionError, AuthenticationError, version mismatch, ...
            raise ExecutorError(connection_failure(self.address, exc)) from None
        self._connected_here = True

    def close(self) -> None:
        """Disconnect, if ``start`` connected."""
        if self._connected_here:
            _import_ray().shutdown()
            self._connected_here = False

    def run(self, specs: Sequence[RunSpec]) -> Iterator[RunResult]:
        ray = _import_ray()
        owned = not ray.is_initialized()
        self.start()
        remote = ray.remote(_ray_task)
        pending = {}
        for spec in specs:
            gpus = 1 if spec.device.startswith("cuda") else 0
            ref = remote.options(num_cpus=0 if gpus else self.cpus_per_task, num_gpus=gpus,
                                 max_retries=self.max_retries).remote(spec, self.cpus_per_task)
            pending[ref] = spec
        try:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    spec = pending.pop(ref)
                    try:
                        yield ray.get(ref)
                    except Exception as exc:  # lost worker beyond retries, or a task error
                        yield RunResult(spec=spec, outcome=FAILED, error=f"ray: {type(exc).__name__}: {exc}")
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)
            if owned:
                self.close()


def _ray_task(spec: RunSpec, threads: int) -> RunResult:
    import torch

    torch.set_num_threads(threads)
    return execute_one(spec)


def _import_ray():
    try:
        import ray
    except ImportError:
        raise ExecutorError("the ray executor needs Ray: pip install 'normbench[ray]'") from None
    return ray


def ray_host_port(address: str) -> tuple[str, int] | None:
    """(host, port) of `host:port` or `ray://host:port`; None for `auto`/`local` (nothing to probe)."""
    text = address.strip()
    if text in ("auto", "local"):
        return None
    text = text.removeprefix(RAY_CLIENT_PREFIX)
    host, _, port = text.rpartition(":")
    if not host:
        return text, DEFAULT_GCS_PORT
    if not port.isdigit():
        raise ExecutorError(f"--address {address}: expected host:port, ray://host:port or auto (port {port!r} "
                            "is not a number)")
    return host.strip("[]"), int(port)


def probe_ray_address(address: str) -> None:
    """ExecutorError naming the address and what to check when nothing accepts a TCP connection there."""
    target = ray_host_port(address)
    if target is None:
        return
    host, port = target
    try:
        with socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S):
            return
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
    raise ExecutorError(
        f"--address {address}: no Ray cluster answers at {host}:{port} ({reason}). Check that a Ray head node "
        f"runs there (`ray start --head --port={port}` on that machine; `ray status --address {host}:{port}` "
        "shows it), that this machine can reach that port (firewall, VPN), and that the address is the head's "
        "GCS address (host:port, default port 6379) or a Ray Client address (ray://host:10001)"
    )


def connection_failure(address: str | None, exc: BaseException) -> str:
    """What to tell the user when ``ray.init`` fails, by the kind of failure."""
    where = f"--address {address}" if address else "a local Ray instance"
    kind = type(exc).__name__
    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else kind
    if kind == "AuthenticationError" or "authentication" in first_line.lower() or "token" in first_line.lower():
        return (f"{where}: the Ray cluster refused this client's authentication token ({first_line}). Check that "
                "RAY_AUTH_MODE=token is set here as on the cluster and that the cluster's token is available "
                "here: RAY_AUTH_TOKEN, a file named by RAY_AUTH_TOKEN_PATH, or ~/.ray/auth_token")
    if address:
        return (f"{where}: something answers there but the Ray cluster did not accept this client ({kind}: "
                f"{first_line}). Check that a Ray head node runs there (`ray status --address {address}`), that "
                "its Ray and Python versions match this machine's, and whether it uses token authentication (Ray "
                "enables it when ~/.ray/auth_token exists on the head): then set RAY_AUTH_MODE=token here with the "
                "cluster's token in RAY_AUTH_TOKEN, a file named by RAY_AUTH_TOKEN_PATH, or ~/.ray/auth_token")
    return f"{where} could not start ({kind}: {first_line})"
