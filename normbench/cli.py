"""The `normbench` command line: each command parses its options and calls one library function."""

from __future__ import annotations

import json
import os
import signal
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

app = typer.Typer(
    help="normbench: which normalization layer should I use here? Run suites, report, compare.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out_console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)

EXIT_OK, EXIT_RUNS_FAILED, EXIT_USAGE = 0, 1, 2


def _fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, markup=True, soft_wrap=True)
    return typer.Exit(code)


DataDirOption = Annotated[
    Optional[Path],
    typer.Option("--data-dir", help="Directory with MNIST IDX files / CIFAR-10 batches [default: $NORMBENCH_DATA, "
                                    "else the per-user cache directory that `normbench data fetch` fills]"),
]


def _use_data_dir(data_dir: Path | None, create: bool = False) -> None:
    """Hand --data-dir to the loaders (and worker processes) through NORMBENCH_DATA.

    The directory is where the data lies, not what the run is, so it stays out of run ids.
    """
    if data_dir is None:
        return
    if not data_dir.is_dir() and not create:
        raise _fail(f"--data-dir {data_dir}: no such directory")
    from normbench.data import DATA_DIR_ENV

    os.environ[DATA_DIR_ENV] = str(data_dir.resolve())


class Terminated(BaseException):
    """The driver received SIGTERM (a BaseException, like KeyboardInterrupt, so that no run's
    `except Exception` mistakes it for that run's own failure)."""


def _terminate(signum, frame) -> None:
    raise Terminated()


class ReportFormat(str, Enum):
    html = "html"
    md = "md"
    json = "json"


class ExportFormat(str, Enum):
    csv = "csv"
    parquet = "parquet"


class ListWhat(str, Enum):
    norms = "norms"
    models = "models"
    datasets = "datasets"
    suites = "suites"


@app.command()
def run(
    suite: Annotated[Path, typer.Argument(help="Suite YAML file, e.g. suites/quick.yaml")],
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Output directory [default: reports/<suite name>]")] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="Override a suite field: key=value (YAML value), repeatable")] = None,
    resume: Annotated[bool, typer.Option("--resume/--fresh", help="Skip runs already stored / start the store over")] = True,
    report: Annotated[bool, typer.Option("--report/--no-report", help="Write report.html when done")] = True,
    skip_unavailable: Annotated[bool, typer.Option("--skip-unavailable", help="Record runs on absent devices as skipped instead of failing")] = False,
    executor: Annotated[str, typer.Option(help="serial, local (a pool of worker processes) or ray")] = "local",
    workers: Annotated[Optional[int], typer.Option(min=1, help="Worker processes for --executor local [default: one per core]")] = None,
    address: Annotated[Optional[str], typer.Option(help="Ray cluster for --executor ray: auto, host:port (the head's GCS) or ray://host:port")] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Throughput suites: an absent device named in the suite is an error, not skipped")] = False,
    data_dir: DataDirOption = None,
    fetch_data: Annotated[bool, typer.Option("--fetch-data", help="Download missing datasets first (normbench data fetch)")] = False,
) -> None:
    """Train every run of SUITE that is not stored yet (measure it, for `kind: throughput`), then write the report."""
    _use_data_dir(data_dir, create=fetch_data)
    # SIGTERM stops like Ctrl-C: finished runs are already stored, the store stays consistent.
    signal.signal(signal.SIGTERM, _terminate)
    from normbench import api
    from normbench.data.fetch import FetchError
    from normbench.executors import ExecutorError
    from normbench.runner import OutputLockedError
    from normbench.store import StoreError
    from normbench.suite import SuiteError

    try:
        summary = api.execute(
            suite, out, set_ or [], resume=resume, report=report, skip_unavailable=skip_unavailable,
            executor=executor, workers=workers, address=address, console=err_console, strict=strict,
            fetch_data=fetch_data,
        )
    except (SuiteError, StoreError, OutputLockedError, ExecutorError) as exc:
        raise _fail(str(exc))
    except FetchError as exc:
        raise _fail(str(exc), EXIT_RUNS_FAILED)
    except ValueError as exc:  # e.g. an unknown executor name
        raise _fail(str(exc))
    except (KeyboardInterrupt, Terminated) as exc:
        err_console.print("interrupted: finished runs are stored; run the same command again to resume")
        raise typer.Exit(143 if isinstance(exc, Terminated) else 130)
    outcomes = ", ".join(f"{name} {count}" for name, count in sorted(summary.outcomes.items())) or "nothing to do"
    err_console.print(
        f"{summary.total} {summary.unit} ({summary.skipped_as_done} already stored; {outcomes}) in {summary.elapsed_s:.1f} s"
    )
    if summary.report_path:
        out_console.print(f"report: {summary.report_path}")
    if summary.failed:
        err_console.print(f"[red]{summary.failed} of the {summary.unit} failed[/]; see the report's warnings")
        raise typer.Exit(EXIT_RUNS_FAILED)


@app.command()
def report(
    out_dir: Annotated[Path, typer.Argument(help="Output directory of a run (holds results.sqlite)")],
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Report file [default: OUT_DIR/report.<ext>]")] = None,
    format_: Annotated[ReportFormat, typer.Option("--format", "-f")] = ReportFormat.html,
    all_runs: Annotated[bool, typer.Option("--all", help="Every stored run, not only the latest suite's")] = False,
) -> None:
    """Write the report of stored results (html, md or json)."""
    from normbench import api
    from normbench.store import StoreError

    try:
        path = api.report(out_dir, format_.value, output=output, all_runs=all_runs)
    except StoreError as exc:
        raise _fail(str(exc))
    out_console.print(f"report: {path}")


@app.command()
def export(
    out_dir: Annotated[Path, typer.Argument(help="Output directory of a run (holds results.sqlite)")],
    format_: Annotated[ExportFormat, typer.Option("--format", "-f")] = ExportFormat.csv,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="File to write [default: OUT_DIR/runs.<ext>]")] = None,
    all_runs: Annotated[bool, typer.Option("--all", help="Every stored run, not only the latest suite's")] = False,
    table: Annotated[str, typer.Option(
        "--table", help="runs, or one row per curve point (curves), epoch (epochs), BLN inference-flag "
                        "combination (inference_flags) or probe value (probes)")] = "runs",
) -> None:
    """Export one row per run (csv or parquet) for pandas/seaborn, or one of the per-run tables."""
    from normbench.export import ExportError, export_runs
    from normbench.store import StoreError

    path = output or out_dir / f"{table}.{format_.value}"
    try:
        rows = export_runs(out_dir, path, format_.value, all_runs=all_runs, table=table)
    except (StoreError, ExportError) as exc:
        raise _fail(str(exc))
    out_console.print(f"{rows} rows written to {path}")


class CompareFormat(str, Enum):
    text = "text"
    md = "md"
    json = "json"


@app.command()
def compare(
    base: Annotated[Path, typer.Argument(help="Baseline output directory (holds results.sqlite), e.g. reports/baseline")],
    new: Annotated[Path, typer.Argument(help="Output directory to check against it, e.g. reports/quick")],
    format_: Annotated[CompareFormat, typer.Option("--format", "-f")] = CompareFormat.text,
    fail_on: Annotated[Optional[list[str]], typer.Option(
        "--fail-on", help="Threshold KEY=VALUE, repeatable: accuracy_drop (points, default 1), "
                          "slowdown (fraction, default 0.05), alpha (default 0.05), native_tax (fraction over torch's own module; off unless given)")] = None,
    all_runs: Annotated[bool, typer.Option("--all", help="Every stored run, not only the latest suite's")] = False,
    require_power: Annotated[bool, typer.Option(
        "--require-power", help="Fail when some cell's seeds could not detect a drop of accuracy_drop")] = False,
) -> None:
    """Compare NEW with BASE; exit 1 when a change is significant and beyond its threshold, 2 when nothing matched."""
    from normbench import api
    from normbench.store import StoreError

    try:
        result = api.compare(base, new, fail_on=fail_on, all_runs=all_runs, require_power=require_power)
    except (StoreError, ValueError) as exc:
        raise _fail(str(exc))
    typer.echo(result.render(format_.value), nl=False)  # plain echo: rich markup would eat "[...]"
    if result.nothing_compared:
        raise _fail("nothing compared: BASE and NEW share no cell with results, so this is not a pass")
    if result.failed:
        raise typer.Exit(EXIT_RUNS_FAILED)


@app.command()
def validate(
    suite: Annotated[Path, typer.Argument(help="Suite YAML file")],
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="Override a suite field: key=value")] = None,
    skip_unavailable: Annotated[bool, typer.Option("--skip-unavailable")] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Throughput suites: an absent device is an error")] = False,
    data_dir: DataDirOption = None,
) -> None:
    """Check a suite without training or measuring; print how many runs (measurements) it expands to."""
    _use_data_dir(data_dir)
    from normbench import api
    from normbench.suite import SuiteError

    try:
        plan = api.validate(suite, set_ or [], skip_unavailable=skip_unavailable, strict=strict)
    except SuiteError as exc:
        raise _fail(str(exc))
    for device, reason in plan.skip_devices.items():
        err_console.print(f"[yellow]will skip[/] {device}: {reason}")
    out_console.print(f"{suite}: {plan.summary}")


@app.command("list")
def list_(what: Annotated[ListWhat, typer.Argument(help="norms, models, datasets or suites")] = ListWhat.norms) -> None:
    """List registered norms, models, datasets (with installed plugins) or shipped suites."""
    from normbench.catalog import catalog, catalog_problems

    for line in catalog(what.value):
        out_console.print(line, highlight=False)
    problems = catalog_problems(what.value)
    if problems:  # a plugin clashing with a built-in is an error, never a silent override
        raise _fail("\n".join(problems))


@app.command()
def env() -> None:
    """Print the environment normbench records with every result (JSON)."""
    from normbench.env import capture_environment

    out_console.print_json(json.dumps(capture_environment()))


from normbench.data_cli import data_app  # noqa: E402  (the `data` sub-app: list, fetch, verify)

app.add_typer(data_app, name="data")


def main() -> None:  # pragma: no cover - console-script shim
    app()
