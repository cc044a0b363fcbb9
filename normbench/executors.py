"""Executors: run RunSpecs serially, in local worker processes, or on Ray (ray_executor.py); results stream back.

Every executor yields one RunResult per spec, in completion order; the driver (runner.py) is the
only writer of the store. A run's own error is a `failed` result, never an exception here.
"""

from __future__ import annotations

import abc
import contextlib
import multiprocessing
import os
import signal
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Iterator, Sequence

from normbench.spec import FAILED, RunResult, RunSpec

EXECUTORS = ("serial", "local", "ray")

_dataset_cache: dict[tuple, object] = {}


def _dataset_for(spec: RunSpec):
    """Datasets are loaded once per process and shared by every run that uses them."""
    from normbench.data import load_dataset

    key = (spec.dataset, spec.dataset_options)
    if key not in _dataset_cache:
        _dataset_cache[key] = load_dataset(spec.dataset, **spec.dataset_kwargs)
    return _dataset_cache[key]


def execute_one(spec: RunSpec) -> RunResult:
    """Run one spec in this process (the unit of work of every executor)."""
    from normbench.run_errors import error_outcome
    from normbench.train import run_training

    try:
        dataset = _dataset_for(spec)
    except Exception as exc:  # a data error fails this run, not the suite
        outcome, error = error_outcome(exc, spec.plugin_provenance)
        return RunResult(spec=spec, outcome=outcome, error=error)
    return run_training(spec, dataset)


def default_workers() -> int:
    """One worker per core (at least one)."""
    return max(1, os.cpu_count() or 1)


def threads_per_worker(workers: int) -> int:
    """Torch threads per worker: cores // workers, so that workers × threads never exceeds the cores."""
    return max(1, (os.cpu_count() or 1) // max(1, workers))


def expected_cost(spec: RunSpec) -> float:
    """Relative training cost, for ordering only: optimizer steps (fixed, or budget / batch size).
    Models and datasets differ in cost per step; steps are what a spec itself determines."""
    if spec.steps:
        return float(spec.steps)
    budget = spec.samples or spec.epochs or 1
    return float(budget) / max(1, spec.batch_size)


def lost_worker_result(spec: RunSpec, attempts: int, detail: str) -> RunResult:
    """The failed result of a spec whose worker process died `attempts` times running it."""
    return RunResult(spec=spec, outcome=FAILED,
                     error=f"worker process died {attempts} time(s) running this spec ({detail})")


class ExecutorError(Exception):
    """An executor cannot start (e.g. no Ray cluster answers at the address); the message says what to check."""


class Executor(abc.ABC):
    """What the runner calls: `start()` (optional early set-up), `run(specs)` yielding results as
    runs finish, `close()` (release whatever `run` did not use). Start and close do nothing here."""

    name = ""

    def start(self) -> None:
        """Prepare before the driver validates the suite (the local pool spawns its workers)."""

    def close(self) -> None:
        """Release what `start` prepared and `run` did not consume."""

    @abc.abstractmethod
    def run(self, specs: Sequence[RunSpec]) -> Iterator[RunResult]:
        """One RunResult per spec, in completion order; a run's own error is a `failed` result."""


class SerialExecutor(Executor):
    """Runs specs one after another in this process (for debugging and tiny suites).

    One torch thread by default, like each local worker and Ray task: reductions split across a
    different number of threads round differently, and bitwise-equal metrics across executors
    matter more than intra-op parallelism on models this small.
    """

    name = "serial"

    def __init__(self, threads: int = 1):
        self.threads = threads

    def run(self, specs: Sequence[RunSpec]) -> Iterator[RunResult]:
        import torch

        previous = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            for spec in specs:
                yield execute_one(spec)
        finally:
            torch.set_num_threads(previous)


def _worker_main(conn: Connection, threads: int) -> None:
    """Worker loop: receive a spec, send back its result, until the driver closes the pipe."""
    # The driver decides when to stop (Ctrl-C reaches the whole process group) and keeps what finished.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import torch

    import normbench.train  # noqa: F401 - import the training stack now, before the first spec arrives

    torch.set_num_threads(threads)
    while True:
        try:
            spec = conn.recv()
        except (EOFError, OSError):  # the driver is gone: nothing left to do
            return
        if spec is None:
            return
        conn.send(execute_one(spec))


# What the forkserver imports once, so that each worker it forks starts with torch and the training
# stack already loaded (a spawned worker spends seconds importing them itself).
FORKSERVER_PRELOAD = ["torch", "normbench.executors", "normbench.train"]


def worker_context(method: str | None = None):
    """Multiprocessing context for workers: `forkserver` where available (Linux, macOS), else `spawn`.

    Both start workers from a fresh, single-threaded interpreter - never a fork of the driver, whose
    torch thread pools do not survive fork. The forkserver imports FORKSERVER_PRELOAD once (before
    any thread pool or CUDA context exists; importing torch creates neither) and forks each worker
    from that state. NORMBENCH_START_METHOD=spawn forces spawn.
    """
    method = method or os.environ.get("NORMBENCH_START_METHOD") or (
        "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn")
    context = multiprocessing.get_context(method)
    if method == "forkserver":
        context.set_forkserver_preload(FORKSERVER_PRELOAD)
    return context


@dataclass
class _Worker:
    process: multiprocessing.process.BaseProcess
    conn: Connection
    spec: RunSpec | None = None


class LocalExecutor(Executor):
    """A pool of worker processes, one spec at a time each, so a crash is attributable.

    Started by a forkserver (or spawn; see worker_context), never forked from the driver, because
    torch's thread pools do not survive fork reliably. A worker that dies
    (SIGKILL, out of memory) loses only the spec it held: that spec is retried `retries` times in a
    fresh worker, then recorded as failed; the others carry on.
    """

    name = "local"

    def __init__(self, workers: int | None = None, retries: int = 1):
        self.workers = workers or default_workers()
        self.retries = retries
        # Threads per worker follow the pool size (cores // workers), not the number of runs, so a
        # spec's metrics do not depend on how many other specs were left to train.
        self.threads = threads_per_worker(self.workers)
        self._context = worker_context()
        self._started: list[_Worker] = []  # started ahead of `run` (by `start`), not yet given work
        self._workers: list[_Worker] = []  # the pool of the `run` in progress
        self._attempts: dict[str, int] = {}  # run id → workers lost running it, in the `run` in progress

    def start(self) -> None:
        """Spawn the workers now, so that they import torch while the driver validates the suite
        and opens the store (a new worker needs a moment before it can train). Optional: `run`
        starts them itself; `close` stops workers that `run` never used."""
        if not self._started:
            self._started = [self._start_worker() for _ in range(self.workers)]

    def close(self) -> None:
        """Stop workers that `run` never used (a bad suite, nothing to train)."""
        started, self._started = self._started, []
        self._terminate(started)

    @staticmethod
    def _terminate(idle: list[_Worker]) -> None:
        """Stop workers that hold no work at once, rather than waiting for them to finish starting."""
        for worker in idle:
            worker.process.terminate()
        for worker in idle:
            worker.process.join(timeout=5)
            worker.conn.close()

    def _start_worker(self) -> _Worker:
        parent, child = self._context.Pipe()
        process = self._context.Process(target=_worker_main, args=(child, self.threads), daemon=True)
        process.start()
        child.close()
        return _Worker(process=process, conn=parent)

    def run(self, specs: Sequence[RunSpec]) -> Iterator[RunResult]:
        # Longest expected runs first, so that no worker starts a long run while the others go idle
        # at the end (longest-processing-time-first scheduling; the sort is stable).
        queue = deque(sorted(specs, key=expected_cost, reverse=True))
        if not queue:
            self.close()
            return
        self._workers, self._attempts = self._take_workers(len(queue)), {}
        try:
            for worker in self._workers:
                self._assign(worker, queue)
            while busy := [w for w in self._workers if w.spec is not None]:
                ready = wait([w.conn for w in busy] + [w.process.sentinel for w in busy])
                yield from self._collect(busy, ready, queue)
        finally:
            self._shutdown(self._workers)
            self._workers = []

    def _take_workers(self, needed: int) -> list[_Worker]:
        """The workers started ahead (or new ones), stopping those beyond `needed` runs."""
        workers, self._started = self._started or [self._start_worker() for _ in range(self.workers)], []
        self._terminate(workers[needed:])
        return workers[:needed]

    def _collect(self, busy: list[_Worker], ready: list, queue: deque) -> Iterator[RunResult]:
        """Results of the busy workers that are `ready`; each gets its next spec once its result is taken."""
        for worker in busy:
            lost = worker.process.sentinel in ready
            if worker.conn in ready:
                try:
                    result = worker.conn.recv()
                except (EOFError, OSError):
                    lost = True  # the pipe closed under us: the worker died mid-send
                else:
                    worker.spec = None
                    yield result
                    self._assign(worker, queue)
                    continue
            if lost:
                yield from self._replace_lost(worker, queue)

    def _replace_lost(self, worker: _Worker, queue: deque) -> Iterator[RunResult]:
        """Replace a dead worker; retry its spec, or yield it as failed once retries are spent."""
        worker.process.join(timeout=5)
        spec = worker.spec
        self._attempts[spec.run_id] = attempts = self._attempts.get(spec.run_id, 0) + 1
        detail = f"exit code {worker.process.exitcode}"
        worker.conn.close()
        replacement = self._start_worker()
        self._workers[self._workers.index(worker)] = replacement
        if attempts > self.retries:
            yield lost_worker_result(spec, attempts, detail)
        else:
            queue.appendleft(spec)
        self._assign(replacement, queue)

    @staticmethod
    def _assign(worker: _Worker, queue: deque) -> None:
        if queue:
            worker.spec = queue.popleft()
            # OSError: the worker just died; its sentinel reports it and the spec is retried
            with contextlib.suppress(OSError):
                worker.conn.send(worker.spec)

    def busy_workers(self) -> list[tuple[int, RunSpec]]:
        """(pid, spec) of every worker now running a spec (for monitoring and fault tests)."""
        return [(w.process.pid, w.spec) for w in self._workers if w.spec is not None]

    @staticmethod
    def _shutdown(workers: list[_Worker]) -> None:
        for worker in workers:
            if worker.spec is None:
                with contextlib.suppress(OSError):  # already gone: the join below finds it dead
                    worker.conn.send(None)
        for worker in workers:
            worker.process.join(timeout=2 if worker.spec is None else 0)
            if worker.process.is_alive():
                worker.process.terminate()
                worker.process.join(timeout=5)
            worker.conn.close()


def create_executor(name: str, workers: int | None = None, address: str | None = None) -> Executor:
    """Executor by name: `serial`, `local` or `ray`."""
    if name == "serial":
        return SerialExecutor()
    if name == "local":
        return LocalExecutor(workers=workers)
    if name == "ray":
        from normbench.ray_executor import RayExecutor

        return RayExecutor(address=address, num_cpus=workers)
    raise ValueError(f"unknown executor {name!r}; allowed: {', '.join(EXECUTORS)}")
