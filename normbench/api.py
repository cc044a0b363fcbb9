"""normbench's Python API: run, validate, load, report and compare; the CLI commands are thin calls of these.

A suite is a YAML file's path or a mapping with the same fields (messages name it `<dict>`), so a
notebook can build one in code. Bad input raises ``SuiteError`` (validation, nothing written),
``StoreError`` (an output directory that is no store), ``OutputLockedError`` (another run writes
there) or ``ExecutorError`` (e.g. no Ray cluster at the address); a run's own failure is not an
exception but a stored outcome (``frames.runs.outcome``).

    >>> import normbench
    >>> frames = normbench.run({"name": "mine", "dataset": "digits", "models": ["mlp"],
    ...                         "norms": ["batch", "layer"], "batch_sizes": [8], "seeds": 2,
    ...                         "steps": 50, "optimizer": {"lr": 0.05}}, out="reports/mine")
    >>> frames.runs.groupby("norm").final_test_accuracy.mean()
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from normbench.frames import ResultFrames
from normbench.suite.load import SuiteSource

Overrides = Sequence[str] | Mapping[str, Any] | None


def override_strings(overrides: Overrides) -> list[str]:
    """`--set` strings from a list of `key=value` strings or a mapping {"optimizer.lr": 0.1, …}
    (values written as JSON, which the override parser reads as YAML)."""
    if overrides is None:
        return []
    if isinstance(overrides, Mapping):
        return [f"{key}={json.dumps(value)}" for key, value in overrides.items()]
    if isinstance(overrides, str):
        raise TypeError("overrides must be a list of 'key=value' strings or a mapping, not one string")
    return list(overrides)


def execute(
    suite: SuiteSource,
    out: str | Path | None = None,
    overrides: Overrides = None,
    *,
    executor: str = "local",
    workers: int | None = None,
    address: str | None = None,
    resume: bool = True,
    report: bool = True,
    skip_unavailable: bool = False,
    strict: bool = False,
    fetch_data: bool = False,
    console: Console | None = None,
    command: str | None = None,
):
    """Run every run of ``suite`` not stored yet in ``out`` (default `reports/<suite name>`) and
    return the ``RunSummary`` of what this call did (what `normbench run` prints)."""
    from normbench.runner import run_suite

    return run_suite(
        suite, out_dir=out, overrides=override_strings(overrides), resume=resume, report=report,
        skip_unavailable=skip_unavailable, executor=executor, workers=workers, address=address,
        console=console, command=command, strict=strict, fetch_data=fetch_data,
    )


def run(
    suite: SuiteSource,
    out: str | Path | None = None,
    overrides: Overrides = None,
    *,
    executor: str = "local",
    workers: int | None = None,
    address: str | None = None,
    resume: bool = True,
    report: bool = True,
    progress: bool = True,
    **options: Any,
) -> ResultFrames:
    """Run ``suite`` (resuming what ``out`` holds) and return the frames of its runs.

    ``executor``: ``serial``, ``local`` (worker processes) or ``ray`` (``address``); ``report``
    writes OUT/report.html; ``progress=False`` keeps the console quiet. Further keywords
    (``skip_unavailable``, ``strict``, ``fetch_data``) are as for :func:`execute`.
    """
    console = None if progress else Console(stderr=True, quiet=True)
    summary = execute(suite, out, overrides, executor=executor, workers=workers, address=address, resume=resume,
                      report=report, console=console, command=_python_command(suite, out, overrides), **options)
    return load(summary.out_dir)


def validate(suite: SuiteSource, overrides: Overrides = None, *, skip_unavailable: bool = False,
             strict: bool = False, fetch_data: bool = False):
    """Load, check and expand ``suite`` without running it; returns the ``SuitePlan``
    (``plan.specs``, ``plan.summary``); raises ``SuiteError`` naming file, field and fix."""
    from normbench.suite import RunOptions, plan_suite

    options = RunOptions(skip_unavailable=skip_unavailable, strict=strict, fetch_data=fetch_data)
    return plan_suite(suite, override_strings(overrides), options)


def load(out: str | Path, *, all_runs: bool = False) -> ResultFrames:
    """The frames of the runs stored in ``out``: the latest suite run there, or ``all_runs``."""
    from normbench.store import load_frames

    return load_frames(out, all_runs=all_runs)


def report(out: str | Path, format: str = "html", *, output: str | Path | None = None,
           all_runs: bool = False) -> Path:
    """Write the report of ``out`` (html, md or json) to ``output`` (default OUT/report.<format>); its path."""
    from normbench.runner import render_report_atomically

    formats = ("html", "md", "json")
    if format not in formats:
        raise ValueError(f"unknown report format {format!r}; allowed: {', '.join(formats)}")
    path = Path(output) if output is not None else Path(out) / f"report.{format}"
    return render_report_atomically(Path(out), path, format, all_runs=all_runs)


def compare(base: str | Path, new: str | Path, *, fail_on: Sequence[str] | Mapping[str, float] | None = None,
            all_runs: bool = False, require_power: bool = False):
    """Compare the runs in ``new`` with those in ``base``: the ``CompareResult`` (``.failed``,
    ``.nothing_compared``, ``.render("text" | "md" | "json")``). ``fail_on``: thresholds such as
    {"accuracy_drop": 1}; ``require_power`` fails when a threshold is below what the seeds can detect."""
    from normbench.compare import compare as compare_results
    from normbench.compare import parse_fail_on

    if isinstance(fail_on, Mapping):
        fail_on = [f"{key}={value}" for key, value in fail_on.items()]
    return compare_results(base, new, fail_on=parse_fail_on(list(fail_on) if fail_on else None), all_runs=all_runs,
                           require_power=require_power)


def _python_command(suite: SuiteSource, out: str | Path | None, overrides: Overrides) -> str:
    """How the report's "reproduce" line shows a run started from Python."""
    target = "<dict suite>" if isinstance(suite, Mapping) else repr(str(suite))
    parts = [target] + ([f"out={str(out)!r}"] if out is not None else [])
    parts += [f"overrides={override_strings(overrides)!r}"] if overrides else []
    return f"python: normbench.run({', '.join(parts)})"
