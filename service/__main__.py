"""`python -m service …`: the server's commands without the `avatune` entry point."""

from __future__ import annotations

import typer

from service.cli import register

app = typer.Typer(name="avatune-service", no_args_is_help=True, add_completion=False)
register(app)

if __name__ == "__main__":
    app()
