"""The `avatune` command line.

Each layer contributes its own commands through the ``avatune.cli`` entry-point group
(a ``register(app)`` function), so this root never imports the server or torch itself
and every command loads only what it needs.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import entry_points
from typing import Any

import typer

app = typer.Typer(
    name="avatune",
    help="Tune (α, ε) of optimizers and measure whether they are separable.",
    no_args_is_help=True,
    add_completion=False,
)


@contextmanager
def exit_on_interrupt(note: str) -> Iterator[None]:
    """Within: Ctrl-C ends the process at once, exit 130, printing `note` — for commands
    whose threads or process pools cannot stop early and that write their files at the end
    (forked pool workers inherit it and end quietly)."""
    previous = signal.getsignal(signal.SIGINT)
    main = threading.current_thread() is threading.main_thread()
    if not main or previous is not signal.default_int_handler:
        yield  # ignored (e.g. started in the background) or handled by the caller
        return
    pid = os.getpid()

    def handle(_signum: int, _frame: object) -> None:
        if os.getpid() == pid:
            sys.stderr.write(f"\ninterrupted: {note}\n")
            sys.stderr.flush()
        os._exit(128 + signal.SIGINT)

    signal.signal(signal.SIGINT, handle)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def note_interrupt() -> threading.Event:
    """From now on Ctrl-C still raises KeyboardInterrupt, and also sets the returned event,
    so a caller whose library swallows it (uvicorn.run) can still exit 130."""
    noted = threading.Event()
    previous = signal.getsignal(signal.SIGINT)
    main = threading.current_thread() is threading.main_thread()
    if main and callable(previous):

        def handle(signum: int, frame: Any) -> None:
            noted.set()
            previous(signum, frame)

        signal.signal(signal.SIGINT, handle)
    return noted


def build_app() -> typer.Typer:
    """The root app with every registered layer's commands attached."""
    for entry in sorted(entry_points(group="avatune.cli"), key=lambda e: e.name):
        entry.load()(app)
    return app


def main() -> None:
    """Console-script entry point: exit 130 on Ctrl-C, wherever it lands (typer turns one
    inside a command into 130 too), 2 on bad usage, 1 on a runtime error."""
    try:
        build_app()()
    except KeyboardInterrupt:
        raise SystemExit(128 + signal.SIGINT) from None
