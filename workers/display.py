"""What a worker shows on a terminal: a rich progress bar per lease (`Display`), or
nothing (`Quiet`, under nohup or a supervisor, where the log lines say it all)."""

from __future__ import annotations

from typing import Any, Protocol

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from studies.protocol import LeaseResponse


class LeaseDisplay(Protocol):
    """What the worker loop tells its display."""

    def lease(self, lease: LeaseResponse) -> None:
        """A new lease began."""

    def update(self, done: int, total: int) -> None:
        """Training steps done of total."""

    def status(self, text: str) -> None:
        """A short status after the lease's progress."""


class Display:
    """A rich progress bar per lease (on a terminal; log lines print above the bars)."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True, log_path=False)
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TimeElapsedColumn(),
            TextColumn("{task.fields[status]}"),
            console=self.console,
        )
        self._task: Any = None

    def __enter__(self) -> Display:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def lease(self, lease: LeaseResponse) -> None:
        """A new bar for a lease."""
        if self._task is not None:
            self.progress.remove_task(self._task)
        names = sorted({t.optimizer.name for t in lease.trials})
        task = lease.task.name if lease.task else "?"
        self._task = self.progress.add_task(
            f"{len(lease.trials)} trials · {task} · {', '.join(names)}", total=None, status=""
        )

    def update(self, done: int, total: int) -> None:
        """Move the current bar (training steps done of total)."""
        if self._task is not None:
            self.progress.update(self._task, completed=done, total=total or None)

    def status(self, text: str) -> None:
        """The text after the current bar."""
        if self._task is not None:
            self.progress.update(self._task, status=text)


class Quiet:
    """The null display: shows nothing."""

    def lease(self, lease: LeaseResponse) -> None:
        """Nothing to show."""

    def update(self, done: int, total: int) -> None:
        """Nothing to show."""

    def status(self, text: str) -> None:
        """Nothing to show."""
