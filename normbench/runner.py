"""`normbench run`: validate a suite, train what is missing, store each run, write the report."""

from __future__ import annotations

import fcntl
import os
import shlex
import sys
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import yaml
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from normbench.checks import check_suite
from normbench.env import capture_environment, now_iso
from normbench.frames import FAILED, SKIPPED
from normbench.store import STORE_FILENAME, RunResult, Store, store_path
from normbench.suite import expand, load_suite
from normbench.suite_data import prepare_suite_data


class OutputLockedError(Exception):
    """Another normbench process is writing to the same output directory."""


@dataclass
class RunSummary:
    """What one `normbench run` did."""

    out_dir: Path
    total: int
    skipped_as_done: int
    outcomes: Counter = field(default_factory=Counter)
    report_path: Path | None = None
    elapsed_s: float = 0.0
    unit: str = "runs"  # what was done: training runs, or measurements of a throughput suite

    @property
    def failed(self) -> int:
        return self.outcomes.get(FAILED, 0)


def default_out_dir(suite_name: str) -> Path:
    return Path("reports") / suite_name


@contextmanager
def output_lock(out_dir: Path) -> Iterator[None]:
    """Exclusive lock on an output directory, so two runs never write one store at once."""
    lock_path = out_dir / ".normbench.lock"
    handle = open(lock_path, "w")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OutputLockedError(
                f"{out_dir}: another `normbench run` is writing here; wait for it or choose another --out"
            ) from None
        handle.write(str(os.getpid()))
        handle.flush()
        yield
    finally:
        handle.close()


def remove_store(out_dir: Path) -> None:
    """Delete the store and its WAL side files (for --fresh)."""
    for suffix in ("", "-wal", "-shm"):
        path = out_dir / (STORE_FILENAME + suffix)
        if path.exists():
            path.unlink()


def run_suite(
    suite_path: str | Path,
    *,
    out_dir: str | Path | None = None,
    overrides: list[str] | None = None,
    resume: bool = True,
    write_report: bool = True,
    skip_unavailable: bool = False,
    executor: str = "local",
    workers: int | None = None,
    address: str | None = None,
    console: Console | None = None,
    command: str | None = None,
    strict: bool = False,
    fetch_data: bool = False,
) -> RunSummary:
    """Run a suite end to end. Raises SuiteError (bad input, nothing written) or OutputLockedError.

    A suite with `kind: throughput` is measured instead of trained (run_throughput_suite); `strict`
    applies to it only (an absent device named in it is then an error rather than skipped; training
    suites treat absent devices as errors unless `skip_unavailable`). `fetch_data` downloads the suite's
    missing file-based datasets first; without it they stop the run before training (SuiteError).
    """
    from normbench.executors import create_executor

    console = console or Console(stderr=True)
    started = time.perf_counter()
    command = command or shlex.join(["normbench", *sys.argv[1:]])
    if suite_kind(suite_path) == "throughput":
        return run_throughput_suite(
            suite_path, out_dir=out_dir, overrides=overrides, resume=resume, write_report=write_report,
            strict=strict, console=console, command=command, started=started,
        )
    runner = create_executor(executor, workers, address)  # validates the executor name before writing anything
    runner.start()  # local workers import torch while this process validates the suite
    try:
        return _run_training_suite(
            suite_path, runner, out_dir=out_dir, overrides=overrides, resume=resume, write_report=write_report,
            skip_unavailable=skip_unavailable, console=console, command=command, started=started,
            fetch_data=fetch_data,
        )
    finally:
        runner.close()


def _run_training_suite(
    suite_path: str | Path, runner, *, out_dir, overrides, resume: bool, write_report: bool,
    skip_unavailable: bool, console: Console, command: str, started: float, fetch_data: bool = False,
) -> RunSummary:
    suite, yaml_text = load_suite(suite_path, overrides)
    prepare_suite_data(suite, source=suite_path, fetch=fetch_data, console=console)
    check = check_suite(suite, source=suite_path, skip_unavailable=skip_unavailable)
    specs = expand(suite)
    out = Path(out_dir) if out_dir is not None else default_out_dir(suite.name)

    summary = RunSummary(out_dir=out, total=len(specs), skipped_as_done=0,
                         report_path=out / "report.html" if write_report else None)
    with _open_output(out, resume=resume, report_path=summary.report_path) as store:
        store.record_environment(capture_environment(), now_iso())
        store.record_suite(suite.name, suite.description, yaml_text, command, [s.run_id for s in specs], now_iso())
        done = store.final_run_ids()
        summary.skipped_as_done = sum(s.run_id in done for s in specs)
        todo = [s for s in specs if s.run_id not in done and s.device not in check.unavailable_devices]
        for spec in specs:
            if spec.device in check.unavailable_devices and spec.run_id not in done:
                stamp = now_iso()
                result = RunResult(spec=spec, outcome=SKIPPED, error=check.unavailable_devices[spec.device],
                                   started_at=stamp, finished_at=stamp)
                store.write_run(result)
                summary.outcomes[SKIPPED] += 1
        if summary.skipped_as_done:
            console.print(f"[dim]resume: {summary.skipped_as_done} of {len(specs)} runs already stored in {out}[/]")
        _train_all(runner, todo, store, summary, console)
    summary.elapsed_s = time.perf_counter() - started
    return summary


@contextmanager
def _open_output(out: Path, *, resume: bool, report_path: Path | None) -> Iterator[Store]:
    """Hold OUT's lock, start the store over unless resuming, and yield it open; once the body
    finishes without error, write the report to `report_path` (if any) before the lock is released."""
    out.mkdir(parents=True, exist_ok=True)
    with output_lock(out):
        if not resume:
            remove_store(out)
        with Store(store_path(out)) as store:
            yield store
        if report_path is not None:
            from normbench.report import write_report as render_report

            render_report_atomically(render_report, out, report_path)


def suite_kind(suite_path: str | Path) -> str:
    """`throughput` or `training` (the default); an unreadable file is left to the loader to report."""
    try:
        raw = yaml.safe_load(Path(suite_path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return "training"
    return "throughput" if isinstance(raw, dict) and raw.get("kind") == "throughput" else "training"


def run_throughput_suite(
    suite_path: str | Path,
    *,
    out_dir: str | Path | None = None,
    overrides: list[str] | None = None,
    resume: bool = True,
    write_report: bool = True,
    strict: bool = False,
    console: Console | None = None,
    command: str = "normbench run",
    started: float | None = None,
) -> RunSummary:
    """Measure a `kind: throughput` suite: one spec at a time in this process (timings must not share
    the cores with other workers), each result in its own transaction; resume skips final ones."""
    from normbench.throughput import (
        create_throughput_tables, expand_throughput, final_throughput_ids, load_throughput_suite, run_throughput,
        throughput_environment, write_throughput_result,
    )

    console = console or Console(stderr=True)
    started = time.perf_counter() if started is None else started
    suite, yaml_text = load_throughput_suite(suite_path, overrides, strict=strict)
    specs = expand_throughput(suite)
    out = Path(out_dir) if out_dir is not None else default_out_dir(suite.name)
    summary = RunSummary(out_dir=out, total=len(specs), skipped_as_done=0, unit="measurements",
                         report_path=out / "report.html" if write_report else None)
    with _open_output(out, resume=resume, report_path=summary.report_path) as store:
        create_throughput_tables(store.conn)
        devices = sorted({s.device for s in specs})
        env_id = store.record_environment({**capture_environment(), **throughput_environment(devices)}, now_iso())
        store.record_suite(suite.name, suite.description, yaml_text, command, [s.spec_id for s in specs], now_iso())
        done = final_throughput_ids(store.conn)
        todo = [s for s in specs if s.spec_id not in done]
        summary.skipped_as_done = len(specs) - len(todo)
        if summary.skipped_as_done:
            console.print(f"[dim]resume: {summary.skipped_as_done} of {len(specs)} measurements already stored in {out}[/]")
        with _progress(console, len(todo), "measuring", "measurements taken") as advance:
            for result in run_throughput(todo):
                write_throughput_result(store.conn, result, env_id)
                summary.outcomes[result.outcome] += 1
                if result.median_s:
                    detail = f"{result.median_s * 1e3:.3f} ms"
                else:
                    detail = result.reason.splitlines()[0][:100] if result.reason else ""
                advance(f"{result.spec.describe()}: {result.outcome} {detail}".rstrip())
    summary.elapsed_s = time.perf_counter() - started
    return summary


def _train_all(runner, todo, store: Store, summary: RunSummary, console: Console) -> None:
    """Train `todo`, storing each result as it arrives, with a live bar (terminal) or log lines."""
    with _progress(console, len(todo), "training", "runs trained") as advance:
        for result in runner.run(todo):
            label = _store_result(result, store, summary, console)
            advance(f"{label}: {result.outcome}")


@contextmanager
def _progress(console: Console, total: int, verb: str, done_words: str) -> Iterator:
    """Yield `advance(description)`, called once per finished item: a live bar on a terminal; elsewhere
    (CI logs, pipes) a plain line every ~5 % of the items or every 30 s, with the ETA."""
    if console.is_terminal and total:
        columns = (
            TextColumn(f"[bold]{verb}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            TextColumn("ETA"), TimeRemainingColumn(), TextColumn("{task.description}"),
        )
        with Progress(*columns, console=console) as progress:
            task = progress.add_task("", total=total)
            yield lambda description: progress.update(task, advance=1, description=description)
        return
    started = last_line = time.perf_counter()
    done = 0

    def advance(description: str) -> None:
        nonlocal done, last_line
        done += 1
        now = time.perf_counter()
        if done == total or done % max(1, total // 20) == 0 or now - last_line > 30:
            eta = (now - started) / done * (total - done)
            console.print(f"[{done}/{total}] {done_words}, {now - started:.0f} s elapsed, ETA {eta:.0f} s",
                          highlight=False)
            last_line = now

    yield advance


def _store_result(result: RunResult, store: Store, summary: RunSummary, console: Console) -> str:
    store.write_run(result)
    summary.outcomes[result.outcome] += 1
    label = f"{result.spec.model_label or result.spec.model}/{result.spec.norm_label}/b{result.spec.batch_size}/s{result.spec.seed}"
    if result.outcome == FAILED:
        first_line = result.error.splitlines()[0] if result.error else ""
        console.print(f"[red]failed[/] {label}: {first_line}", highlight=False)
    return label


def render_report_atomically(write_report, out_dir: Path, path: Path, fmt: str = "html", all_runs: bool = False) -> Path:
    """Render the report for `out_dir` to a temporary file, then move it into place."""
    from normbench.store import load_frames

    frames = load_frames(out_dir, all_runs=all_runs)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        write_report(frames, tmp, fmt)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path
