"""The `avatune` command line.

Each layer contributes its own commands through the ``avatune.cli`` entry-point group
(a ``register(app)`` function), so this root never imports the server or torch itself
and every command loads only what it needs.
"""

from __future__ import annotations

from importlib.metadata import entry_points

import typer

app = typer.Typer(
    name="avatune",
    help="Tune (α, ε) of optimizers and measure whether they are separable.",
    no_args_is_help=True,
    add_completion=False,
)


def build_app() -> typer.Typer:
    """The root app with every registered layer's commands attached."""
    for entry in sorted(entry_points(group="avatune.cli"), key=lambda e: e.name):
        entry.load()(app)
    return app


def main() -> None:
    """Console-script entry point."""
    build_app()()
