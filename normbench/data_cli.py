"""`normbench data list|fetch|verify`: the file-based datasets, downloaded only when asked, hashes verified."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

data_app = typer.Typer(
    help="Datasets read from files (MNIST, Fashion-MNIST, CIFAR-10, IMDB): list, fetch (verified downloads), verify.",
    no_args_is_help=True,
)
out_console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)

EXIT_PROBLEM, EXIT_USAGE = 1, 2

DataDirOption = Annotated[
    Optional[Path],
    typer.Option("--data-dir", help="Data directory [default: $NORMBENCH_DATA, else the per-user cache directory]"),
]


def _exit(message: str, code: int) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, markup=True, soft_wrap=True)
    return typer.Exit(code)


def _sources(names: list[str]):
    """The sources named, in order and without repeats; exit 2 listing the known names for an unknown one."""
    from normbench.data.sources import UnknownDatasetError, get_source

    try:
        return list({name: get_source(name) for name in names}.values())
    except UnknownDatasetError as exc:
        raise _exit(str(exc), EXIT_USAGE)


def _root(data_dir: Path | None) -> Path:
    from normbench.data.datadir import data_root

    root, origin = data_root(data_dir)
    err_console.print(f"[dim]data directory: {root} ({origin})[/]", highlight=False)
    return root


@data_app.command("list")
def list_(data_dir: DataDirOption = None) -> None:
    """Every dataset normbench can fetch: what it is, its size and files, where it lies, whether it is verified."""
    from rich.filesize import decimal as format_size

    from normbench.data.sources import known_datasets
    from normbench.data.verify import dataset_state

    root = _root(data_dir)
    for source in _sources(known_datasets()):
        state = dataset_state(source, root)
        where = "in" if state.on_disk else "would be stored in"
        downloads = ", ".join(f.name for f in source.files)
        out_console.print(
            f"{source.name}: {state.summary} ({where} {state.directory})\n"
            f"    {source.title}\n"
            f"    download {format_size(source.download_size)}: {downloads}; read: {', '.join(source.payload)}",
            highlight=False,
        )


@data_app.command()
def fetch(
    names: Annotated[list[str], typer.Argument(help="Datasets to fetch: mnist, fashion_mnist, cifar10, imdb")],
    data_dir: DataDirOption = None,
    mirror: Annotated[Optional[str], typer.Option(
        "--mirror", help="Base URL replacing the official ones: files are read from URL/<dataset>/<file> "
                         "[default: $NORMBENCH_DATA_MIRROR]")] = None,
) -> None:
    """Download NAMES into the data directory, verify every file's hash, unpack archives."""
    from normbench.data.fetch import FetchError, fetch_dataset
    from normbench.data.progress import ConsoleReporter

    sources = _sources(names)
    root = _root(data_dir)
    failed = []
    with ConsoleReporter(err_console) as reporter:
        for source in sources:
            try:
                result = fetch_dataset(source, root, mirror=mirror, reporter=reporter)
            except FetchError as exc:
                err_console.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True, soft_wrap=True)
                failed.append(source.name)
                continue
            out_console.print(result.summary(), highlight=False)
    if failed:
        raise _exit(f"not fetched: {', '.join(failed)}", EXIT_PROBLEM)


@data_app.command()
def verify(
    names: Annotated[Optional[list[str]], typer.Argument(
        help="Datasets to check [default: every dataset with files on disk]")] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Re-hash the dataset files on disk; exit 1 if any is missing or corrupt."""
    from normbench.data.datadir import fetch_command
    from normbench.data.sources import known_datasets
    from normbench.data.verify import OK, dataset_state

    root = _root(data_dir)
    bad = []
    for source in _sources(names or known_datasets()):
        state = dataset_state(source, root)
        if not names and not state.on_disk:
            out_console.print(f"{source.name}: not fetched", highlight=False)
            continue
        lines = [f"  {f.describe()}" for f in state.files if f.status != OK]
        if state.problems:
            bad.append(source.name)
            lines.append(f"  to replace them: {fetch_command(source.name, root)}")
        out_console.print("\n".join([f"{source.name}: {state.summary} in {state.directory}", *lines]), highlight=False)
    if bad:
        raise _exit(f"missing or corrupt files: {', '.join(bad)}", EXIT_PROBLEM)
