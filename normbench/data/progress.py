"""Download progress on a console: a rich bar per file on a terminal, one line per file elsewhere."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

from rich.console import Console
from rich.filesize import decimal as format_size
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from normbench.data.fetch import FetchReporter


class _TaskBar:
    """pooch's progress-bar protocol (``total``, ``update``, ``reset``, ``close``) on one rich task."""

    def __init__(self, progress: Progress, task: TaskID):
        self._progress, self._task = progress, task
        self._total: int | None = None

    @property
    def total(self) -> int | None:
        return self._total

    @total.setter
    def total(self, value: int) -> None:
        self._total = value or None  # 0 means the server sent no Content-Length: an open-ended bar
        self._progress.update(self._task, total=self._total)

    def update(self, advance: int) -> None:
        self._progress.advance(self._task, advance)

    def reset(self) -> None:
        self._progress.reset(self._task, total=self._total)

    def close(self) -> None:
        """Nothing to release: the task is marked done by the reporter."""


class ConsoleReporter(FetchReporter, AbstractContextManager):
    """Reports a fetch on ``console``; use as a context manager around one or more fetches."""

    def __init__(self, console: Console):
        self.console = console
        self._progress: Progress | None = None
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self) -> ConsoleReporter:
        if self.console.is_terminal:
            self._progress = Progress(
                TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                TimeRemainingColumn(), console=self.console,
            )
            self._progress.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def note(self, message: str) -> None:
        """Print ``message`` (above the bars on a terminal)."""
        self.console.print(message, highlight=False)

    def download_started(self, name: str, url: str) -> Any:
        """A bar for the download on a terminal; nothing elsewhere (a line follows when it ends)."""
        if self._progress is None:
            return None
        self._tasks[url] = self._progress.add_task(name, total=None)
        return _TaskBar(self._progress, self._tasks[url])

    def download_finished(self, name: str, url: str, size: int | None) -> None:
        """Mark the bar done or failed; off a terminal, print one line per verified file."""
        task = self._tasks.pop(url, None)
        if self._progress is not None and task is not None:
            self._progress.update(task, description=f"{name} [green]verified[/]" if size is not None
                                  else f"{name} [red]failed[/]")
        elif size is not None:
            self.console.print(f"downloaded {name} ({format_size(size)}) from {url}, hash verified", highlight=False)
