"""The fetchable datasets a suite needs: present and verified, fetched when asked, or a stop naming the command.

`normbench run` never downloads on its own: a suite whose dataset (``mnist``, ``fashion_mnist``,
``cifar10``) is missing or corrupt in its data directory stops before anything trains, with the
exact ``normbench data fetch`` command; ``run --fetch-data`` fetches it first instead.
"""

from __future__ import annotations

import os
from pathlib import Path

from rich.console import Console

from normbench.suite import Suite, SuiteError


def prepare_suite_data(
    suite: Suite, *, source: str | Path, fetch: bool = False, console: Console | None = None
) -> None:
    """Make sure every fetchable dataset of ``suite`` is usable in its data directory.

    Without ``fetch``, raises :class:`SuiteError` (file, field, the fetch command) for each one that
    is not; with ``fetch``, fetches those (``FetchError`` when that fails).
    """
    from normbench.data.datadir import fetch_command

    missing = _unusable_datasets(suite)
    if not fetch:
        if missing:
            raise SuiteError("\n".join(
                f"{source}: field `{where}`: dataset {name!r} is {state.summary} in {state.directory} (data "
                f"directory from {origin}); fetch it first with `{fetch_command(name, root)}`, or add --fetch-data "
                "to this command"
                for where, name, root, origin, state in missing
            ))
        return
    _fetch_all({(name, root) for _, name, root, _, _ in missing}, console or Console(stderr=True))


def _unusable_datasets(suite: Suite) -> list[tuple]:
    """(field, name, data directory, its origin, state) of each fetchable dataset not usable where it is read."""
    from normbench.data import available_datasets, sources
    from normbench.data.datadir import data_root
    from normbench.data.verify import dataset_state

    many = isinstance(suite.dataset, list)
    unusable = []
    for k, entry in enumerate(suite.datasets):
        data_dir = entry.options.get("data_dir")
        if entry.name not in sources.SOURCES or entry.name not in available_datasets():
            continue  # not file-based, or fetch-only: check_suite reports what is wrong with it
        if data_dir is not None and not isinstance(data_dir, (str, os.PathLike)):
            continue  # an invalid option: check_suite reports it
        root, origin = data_root(data_dir)
        state = dataset_state(sources.get_source(entry.name), root)
        if not state.usable:
            unusable.append((f"dataset[{k}]" if many else "dataset", entry.name, root, origin, state))
    return unusable


def _fetch_all(wanted: set[tuple[str, Path]], console: Console) -> None:
    """Fetch each (dataset, data directory) pair, printing one summary line each."""
    from normbench.data import sources
    from normbench.data.fetch import fetch_dataset
    from normbench.data.progress import ConsoleReporter

    with ConsoleReporter(console) as reporter:
        for name, root in sorted(wanted):
            result = fetch_dataset(sources.get_source(name), root, reporter=reporter)
            console.print(result.summary(), highlight=False)
