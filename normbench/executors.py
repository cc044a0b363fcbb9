"""Executors: run RunSpecs serially or in a pool of worker processes, streaming results back."""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Iterator, Sequence

from normbench.frames import FAILED
from normbench.spec import RunSpec
from normbench.store import RunResult

EXECUTORS = ("serial", "local")

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
    from normbench.train import run_training

    try:
        dataset = _dataset_for(spec)
    except Exception as exc:  # a data error fails this run, not the suite
        return RunResult(spec=spec, outcome=FAILED, error=f"{type(exc).__name__}: {exc}")
    return run_training(spec, dataset)


def default_workers() -> int:
    """One worker per core (at least one)."""
    return max(1, os.cpu_count() or 1)


def threads_per_worker(workers: int) -> int:
    """Torch threads each worker may use so that workers × threads does not exceed the cores."""
    return max(1, (os.cpu_count() or 1) // max(1, workers))


class SerialExecutor:
    """Runs specs one after another in this process (for debugging and tiny suites)."""

    name = "serial"

    def __init__(self, threads: int | None = None):
        self.threads = threads

    def run(self, specs: Sequence[RunSpec]) -> Iterator[RunResult]:
        import torch

        if self.threads:
            torch.set_num_threads(self.threads)
        for spec in specs:
            yield execute_one(spec)


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    # Workers ignore Ctrl-C: the driver decides when to stop and keeps what finished.
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


class LocalExecutor:
    """A pool of spawned worker processes; results stream back as runs finish.

    Spawn (not fork) because torch's thread pools do not survive fork reliably. A worker that dies
    (killed, out of memory) fails only the runs it held; they are retried once in a fresh pool.
    """

    name = "local"

    def __init__(self, workers: int | None = None, retries: int = 1):
        self.workers = workers or default_workers()
        self.retries = retries

    def run(self, specs: Sequence[RunSpec]) -> Iterator[RunResult]:
        attempts: dict[str, int] = {}
        pending = list(specs)
        while pending:
            lost: list[RunSpec] = []
            yield from self._run_pool(pending, lost)
            pending = []
            for spec in lost:
                attempts[spec.run_id] = attempts.get(spec.run_id, 0) + 1
                if attempts[spec.run_id] > self.retries:
                    yield RunResult(spec=spec, outcome=FAILED,
                                    error=f"worker process died {attempts[spec.run_id]} times running this spec")
                else:
                    pending.append(spec)

    def _run_pool(self, specs: Sequence[RunSpec], lost: list[RunSpec]) -> Iterator[RunResult]:
        context = multiprocessing.get_context("spawn")
        workers = min(self.workers, len(specs))
        pool = ProcessPoolExecutor(
            max_workers=workers, mp_context=context, initializer=_init_worker,
            initargs=(threads_per_worker(workers),),
        )
        futures: dict[Future, RunSpec] = {}
        try:
            futures = {pool.submit(execute_one, spec): spec for spec in specs}
            remaining = set(futures)
            while remaining:
                done, remaining = wait(remaining, return_when=FIRST_COMPLETED)
                for future in done:
                    try:
                        yield future.result()
                    except BrokenProcessPool:
                        lost.append(futures[future])
                    except Exception as exc:  # e.g. a result that failed to pickle
                        yield RunResult(spec=futures[future], outcome=FAILED, error=f"{type(exc).__name__}: {exc}")
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def create_executor(name: str, workers: int | None = None):
    """Executor by name: `serial` or `local`."""
    if name == "serial":
        return SerialExecutor()
    if name == "local":
        return LocalExecutor(workers=workers)
    raise ValueError(f"unknown executor {name!r}; allowed: {', '.join(EXECUTORS)}")
