"""`normbench run`: the one suite pipeline for every kind — load, check, expand, execute what is missing, store, report."""

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

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from normbench.env import now_iso
from normbench.spec import FAILED
from normbench.store import STORE_FILENAME, Store, store_path
from normbench.suite import RunOptions, SuiteKind, SuitePlan, plan_suite, suite_kind
from normbench.suite.kind import Execute
from normbench.suite.load import SuiteSource


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
        """How many runs (measurements) failed."""
        return self.outcomes.get(FAILED, 0)


def default_out_dir(suite_name: str) -> Path:
    """`reports/<suite name>`: where a suite's results go unless --out says otherwise."""
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
    suite_path: SuiteSource,
    *,
    out_dir: str | Path | None = None,
    overrides: list[str] | None = None,
    resume: bool = True,
    report: bool = True,
    skip_unavailable: bool = False,
    executor: str = "local",
    workers: int | None = None,
    address: str | None = None,
    console: Console | None = None,
    command: str | None = None,
    strict: bool = False,
    fetch_data: bool = False,
) -> RunSummary:
    """Run a suite of any kind (a file, or a mapping) end to end: load → validate → expand → execute → store → report.

    Raises SuiteError (bad input, nothing written), ValueError (unknown executor) or
    OutputLockedError. `skip_unavailable` and the executor options apply to training suites (absent
    devices are errors unless skipped); `strict` to throughput suites (an absent device named in one
    is then an error rather than skipped). `report` writes OUT/report.html when done. `fetch_data`
    downloads a training suite's missing file-based datasets first; without it they stop the run
    before training (SuiteError naming the `normbench data fetch` command).
    """
    console = console or Console(stderr=True)
    started = time.perf_counter()
    command = command or shlex.join(["normbench", *sys.argv[1:]])
    options = RunOptions(skip_unavailable=skip_unavailable, strict=strict, executor=executor, workers=workers,
                         address=address, fetch_data=fetch_data)
    kind = suite_kind(suite_path)
    with kind.executing(options) as execute:  # entered first: local workers import torch during validation
        plan = plan_suite(suite_path, overrides, options, kind=kind)
        out = Path(out_dir) if out_dir is not None else default_out_dir(plan.suite.name)
        summary = RunSummary(out_dir=out, total=len(plan.specs), skipped_as_done=0, unit=kind.unit,
                             report_path=out / "report.html" if report else None)
        with _open_output(out, resume=resume, report_path=summary.report_path) as store:
            _execute_into(store, plan, execute, summary, console, command)
    summary.elapsed_s = time.perf_counter() - started
    return summary


def _execute_into(store: Store, plan: SuitePlan, execute: Execute, summary: RunSummary, console: Console,
                  command: str) -> None:
    """Record the environment and the suite, then store a result for every spec not stored yet:
    those on skipped devices at once, the others as they finish executing."""
    kind = plan.kind
    kind.prepare_store(store)
    env_id = store.record_environment(kind.environment(plan.specs), now_iso())
    ids = [kind.spec_id(spec) for spec in plan.specs]
    store.record_suite(plan.suite.name, plan.suite.description, plan.yaml_text, command, ids, now_iso())
    done = kind.final_ids(store)
    todo = [spec for spec, spec_id in zip(plan.specs, ids) if spec_id not in done]
    summary.skipped_as_done = len(ids) - len(todo)
    for spec in todo:
        if spec.device in plan.skip_devices:
            _store_result(kind.skipped_result(spec, plan.skip_devices[spec.device]), store, kind, env_id, summary)
    todo = [spec for spec in todo if spec.device not in plan.skip_devices]
    if summary.skipped_as_done:
        console.print(f"[dim]resume: {summary.skipped_as_done} of {len(ids)} {kind.unit} already stored in {summary.out_dir}[/]")
        for note in kind.resume_notes(store, [spec for spec, spec_id in zip(plan.specs, ids) if spec_id in done]):
            console.print(f"[yellow]note:[/] {note}", highlight=False)
    with _progress(console, len(todo), kind.progress_verb, kind.progress_done) as advance:
        for result in execute(todo):
            _store_result(result, store, kind, env_id, summary)
            notice = kind.failure_notice(result)
            if notice:
                console.print(notice, highlight=False)
            advance(kind.describe(result))


def _store_result(result, store: Store, kind: SuiteKind, env_id: int, summary: RunSummary) -> None:
    kind.write(store, result, env_id)
    summary.outcomes[result.outcome] += 1


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
            render_report_atomically(out, report_path)


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


def render_report_atomically(out_dir: Path, path: Path, fmt: str = "html", all_runs: bool = False) -> Path:
    """Render the report for `out_dir` to a temporary file, then move it into place."""
    from normbench.report import write_report
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
