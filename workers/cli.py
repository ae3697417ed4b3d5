"""Commands that train: optimizer demonstrations, grids, the worker loop.

torch is imported inside each command so that `avatune --help` and the server's own
commands stay fast.
"""

from __future__ import annotations

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

console = Console()
optim_app = typer.Typer(help="The optimizers on their own.", no_args_is_help=True)


@optim_app.command("eq11")
def eq11(
    steps: int = typer.Option(50_000, min=1, help="Steps T of each run."),
    seeds: int = typer.Option(16, min=1, max=4096, help="Independent runs, stepped together."),
    lr: float = typer.Option(0.01, min=0.0, help="α of the schedule α_t = α/√t."),
    beta2: float = typer.Option(0.99, min=0.0, max=0.999999),
    eps: float = typer.Option(1e-8, min=0.0),
) -> None:
    """Run Adam and Delayed Adam (β1 = 0) on the paper's Eq. (11) and print the final w."""
    from optim.eq11 import W_STAR, run_eq11

    table = Table(title=f"Eq. (11), T = {steps:,}, {seeds} seeds; w* = 499/999 = {W_STAR:.4f}")
    for column in ("optimizer", "mean final w", "min", "max", "|mean − w*|"):
        table.add_column(column, justify="right" if column != "optimizer" else "left")
    with Progress(console=console, transient=True) as progress:
        for name in ("adam", "delayed_adam"):
            task = progress.add_task(name, total=steps)
            w = run_eq11(
                name, steps=steps, seeds=seeds, lr=lr, beta2=beta2, eps=eps,
                progress=lambda n, task=task: progress.advance(task, n),
            )
            mean = w.mean().item()
            table.add_row(name, f"{mean:.4f}", f"{w.min().item():.4f}", f"{w.max().item():.4f}",
                          f"{abs(mean - W_STAR):.4f}")
    console.print(table)


def register(app: typer.Typer) -> None:
    """Attach this layer's commands to the root `avatune` app."""
    app.add_typer(optim_app, name="optim")
