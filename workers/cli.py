"""Commands that train: optimizer demonstrations, grids, the worker loop.

torch is imported inside each command so that `avatune --help` and the server's own
commands stay fast.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from studies.cli import exit_on_interrupt
from studies.cli_options import LOG_FORMAT, LOG_LEVEL, SERVER, TOKEN
from studies.log_setup import LogFormat, LogLevel, configure_logging

console = Console()
optim_app = typer.Typer(help="The optimizers on their own.", no_args_is_help=True)
#: Devices torch knows by these names (checked before torch loads; CUDA's presence after).
DEVICE = re.compile(r"(cpu|mps|(cuda|xpu)(:\d+)?)")


def _known(kind: str, name: str, known: tuple[str, ...], flag: str) -> str:
    """`name` when in `known`; BadParameter (exit 2) with a suggestion otherwise."""
    from studies.spec_errors import unknown_name

    if name not in known:
        raise typer.BadParameter(unknown_name(kind, name, known), param_hint=flag)
    return name


def _device(device: str | None) -> str | None:
    """`device` when torch could know it; BadParameter otherwise (no torch import)."""
    if device is not None and not DEVICE.fullmatch(device.strip()):
        raise typer.BadParameter(
            f"unknown device {device!r}; use cpu, cuda or cuda:N", param_hint="--device"
        )
    return device


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
                name,
                steps=steps,
                seeds=seeds,
                lr=lr,
                beta2=beta2,
                eps=eps,
                progress=lambda n, task=task: progress.advance(task, n),
            )
            mean = w.mean().item()
            table.add_row(
                name,
                f"{mean:.4f}",
                f"{w.min().item():.4f}",
                f"{w.max().item():.4f}",
                f"{abs(mean - W_STAR):.4f}",
            )
    console.print(table)


#: What the server takes as a worker id (studies.protocol.WorkerId).
WORKER_ID = re.compile(r"[A-Za-z0-9._:@/+-]{1,100}")


def worker(
    server: str = SERVER,
    token: str = TOKEN,
    device: str = typer.Option(None, help="cpu, cuda or cuda:N (default: cuda when present)."),
    devices: str = typer.Option(
        None,
        "--devices",
        help="all, or GPU indices like 0,2: one worker process per GPU (indices count the "
        "GPUs CUDA_VISIBLE_DEVICES leaves visible).",
    ),
    max_batch: int = typer.Option(
        None,
        "--max-batch",
        min=1,
        max=4096,
        help="Trials per lease (default: 4096, the server's cap, on CUDA; 64 on CPU).",
    ),
    no_prefetch: bool = typer.Option(
        False,
        "--no-prefetch",
        help="Lease only when idle (default: the next trials while training).",
    ),
    worker_id: str = typer.Option(
        None, "--worker-id", help="This worker's id on the server (default: host-pid-random)."
    ),
    once: bool = typer.Option(False, "--once", help="Run one lease, then exit."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
    train_function: str = typer.Option(None, hidden=True, help="MODULE:ATTR trainer (tests)."),
    log_level: LogLevel = LOG_LEVEL,
    log_format: LogFormat = LOG_FORMAT,
) -> None:
    """Pull trials from the server, train them in batches, report results; until stopped."""
    from studies.server_url import server_url

    try:
        server = server_url(server)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--server") from None
    device = _device(device)
    if worker_id is not None and not WORKER_ID.fullmatch(worker_id):
        raise typer.BadParameter(
            f"{worker_id!r}: use up to 100 letters, digits and ._:@/+-", param_hint="--worker-id"
        )
    configure_logging(log_level, log_format)
    if devices is not None:
        if device is not None:
            raise typer.BadParameter("give --device or --devices, not both", param_hint="--devices")
        options = ["--server", server, "--log-level", log_level.value]
        options += ["--log-format", log_format.value]
        options += ["--max-batch", str(max_batch)] if max_batch else []
        flags = {"--once": once, "--quiet": quiet, "--no-prefetch": no_prefetch}
        options += [flag for flag, on in flags.items() if on]
        options += ["--train-function", train_function] if train_function else []
        raise typer.Exit(_fleet(devices, options, worker_id, token))
    from workers.run import run_worker

    run_worker(
        server,
        token,
        device=device,
        max_batch=max_batch,
        once=once,
        quiet=quiet,
        train_function=train_function,
        prefetch=not no_prefetch,
        worker_id=worker_id,
    )


def _fleet(devices: str, options: list[str], worker_id: str | None, token: str | None) -> int:
    """`--devices`: one child worker per GPU (quiet when several share the terminal)."""
    from workers.device import visible_gpus
    from workers.fleet import parse_devices, plan_children, run_fleet
    from workers.loop import default_worker_id

    try:
        indices = parse_devices(devices, visible_gpus())
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--devices") from None
    if len(indices) > 1 and "--quiet" not in options:
        options = [*options, "--quiet"]  # progress bars of several processes would collide
    children = plan_children(indices, options, worker_id or default_worker_id())
    return run_fleet(children, env={"AVATUNE_TOKEN": token} if token else None)


GRIDS = ("paper", "coarse")


def _task_options(task: str, pairs: list[str]) -> dict[str, Any]:
    """`--task-config KEY=VALUE` pairs as the task's checked options (numbers parsed)."""
    from studies.specs import task_options

    raw: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--task-config")
        raw[key.strip()] = _number(text.strip())
    try:
        return task_options(task, raw)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--task-config") from None


def _number(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def grid(
    optimizer: str = typer.Option(..., help="Optimizer to tune, e.g. adam, avagrad."),
    out: Path = typer.Option(..., "--out", "-o", help="Where to write the grid table (JSON)."),
    task: str = typer.Option("mnist1d-mlp", help="Proxy task to train."),
    grid_name: str = typer.Option(
        "paper", "--grid", help="paper: the 21×21 (α, ε) grid; coarse: every other value, 11×11."
    ),
    steps: int | None = typer.Option(None, min=1, help="Training steps (default: the task's)."),
    seeds: int = typer.Option(
        1, min=1, max=64, help="Seeds per grid point: each kept (avatune-grid/2), cells their mean."
    ),
    batch_size: int | None = typer.Option(
        None, min=1, help="Minibatch size (default: the task's)."
    ),
    device: str | None = typer.Option(None, help="cpu, cuda or cuda:N (default: cuda if present)."),
    weight_decay: float = typer.Option(
        0.0, min=0.0, help="Weight decay λ of the optimizer (L2 or decoupled, as it defines)."
    ),
    task_config: list[str] = typer.Option(
        [], "--task-config", help="A task option KEY=VALUE (e.g. hidden=32); repeatable."
    ),
) -> None:
    """Train a whole (α, ε) grid of one optimizer on one task, locally, and write its table."""
    from studies.specs import OPTIMIZERS, TASKS

    _known("task", task, TASKS, "--task")  # names first: torch takes seconds to load
    _known("optimizer", optimizer, OPTIMIZERS, "--optimizer")
    _known("grid", grid_name, GRIDS, "--grid")
    options = _task_options(task, task_config)
    _device(device)
    from workers.device import resolve_device, use_device
    from workers.grid import run_grid

    try:
        where = str(use_device(resolve_device(device)))
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--device") from None
    decay = f" · λ {weight_decay:g}" if weight_decay else ""
    title = f"{task} · {optimizer}{decay} · {grid_name} grid · {seeds} seed(s) on {where}"
    with exit_on_interrupt("no table written"), Progress(console=console, transient=True) as bar:
        job = bar.add_task(title, total=None)
        table = run_grid(
            task,
            optimizer,
            grid_name,  # type: ignore[arg-type]
            steps=steps,
            seeds=seeds,
            batch_size=batch_size,
            device=where,
            optimizer_settings={"weight_decay": weight_decay} if weight_decay else None,
            progress=lambda done, total: bar.update(job, completed=done, total=total),
            task_config=options or None,
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    table.save(out)
    best, i, j = min(
        (value, i, j) for i, row in enumerate(table.error) for j, value in enumerate(row)
    )
    diverged = sum(sum(row) for row in table.diverged or [])
    summary = Table(title=title)
    for column in (
        "best α",
        "best ε",
        table.model_extra.get("objective", "objective"),
        "diverged",
        "seconds",
    ):
        summary.add_column(str(column), justify="right")
    summary.add_row(
        f"{table.alphas[i]:g}",
        f"{table.epsilons[j]:g}",
        f"{best:.4g}",
        f"{diverged} / {len(table.alphas) * len(table.epsilons)}",
        f"{table.model_extra.get('seconds', 0):.1f}",
    )
    console.print(summary)
    console.print(f"wrote {out}")


def register(app: typer.Typer) -> None:
    """Attach this layer's commands to the root `avatune` app."""
    app.add_typer(optim_app, name="optim")
    app.command("grid")(grid)
    app.command("worker")(worker)
