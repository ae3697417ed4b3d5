"""Commands `avatune replay` and `avatune report`: tuning cost and separability of grids."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from studies.cli import exit_on_interrupt

console = Console()

TABLES = typer.Argument(..., exists=True, dir_okay=False, help="Grid tables (avatune grid JSON).")
TUNERS_HELP = "Comma-separated tuners, or all: grid, random, tpe, cmaes, gld, cgld."
DELTA_HELP = (
    "δ in the task's unit: pp of error, or % of f* for bits per character; repeat for more "
    "(the first is the main one). Default: the task's δs."
)


def _tuner_list(value: str) -> list[str]:
    from studies.spec_errors import unknown_name
    from studies.specs import TUNERS

    if value.strip() == "all":
        return list(TUNERS)
    tuners = [t.strip() for t in value.split(",") if t.strip()]
    if not tuners:
        raise typer.BadParameter(
            f"give tuners, e.g. all or {','.join(TUNERS)}", param_hint="--tuners"
        )
    for tuner in tuners:
        if tuner not in TUNERS:
            raise typer.BadParameter(unknown_name("tuner", tuner, TUNERS), param_hint="--tuners")
    return tuners


def _load(paths: list[Path]) -> list:
    from studies.table import GridTable

    tables = []
    for path in paths:
        try:
            tables.append(GridTable.load(path))
        except (ValueError, OSError) as error:
            raise typer.BadParameter(f"{path}: {error}") from error
    return tables


def replay(
    tables: list[Path] = TABLES,
    tuners: str = typer.Option("all", help=TUNERS_HELP),
    seeds: int = typer.Option(100, min=1, max=100_000, help="Seeded runs per tuner and table."),
    delta: list[float] | None = typer.Option(None, min=0.0, help=DELTA_HELP),
    processes: int = typer.Option(0, min=0, help="Worker processes (0: one per CPU)."),
    out: Path = typer.Option(..., dir_okay=False, help="Where to write replay.json."),
) -> None:
    """Replay tuners on complete grid tables until δ-success; write costs as JSON."""
    from studies.deltas import delta_text, delta_unit
    from studies.objectives import objective_of
    from studies.replay import replay_tables

    grids, chosen = _load(tables), _tuner_list(tuners)
    goal = objective_of(grids[0].task)
    deltas = list(delta or goal.deltas)
    with exit_on_interrupt(f"{out} not written"):
        try:
            result = replay_tables(
                grids, chosen, seeds, deltas[0], processes or None, extra_deltas=deltas[1:]
            )
        except ValueError as error:
            raise typer.BadParameter(str(error)) from None
    out.parent.mkdir(parents=True, exist_ok=True)
    result.save(out)
    main = delta_text(deltas[0], delta_unit(result.delta_kind, goal.gap_unit))
    summary = Table(title=f"Trials to {main} ({seeds} seeds, {result.seconds:.1f} s)")
    summary.add_column("table")
    for tuner in result.tables[0].tuners:
        summary.add_column(tuner, justify="right")
    for table in result.tables:
        summary.add_row(
            table.name,
            *(
                f"{r.median:g} [{r.q1:g}–{r.q3:g}]"
                + (f" ({r.n_censored}c)" if r.n_censored else "")
                for r in table.tuners.values()
            ),
        )
    console.print(summary)
    console.print(f"wrote {out}")


def report(
    tables: list[Path] = TABLES,
    out: Path = typer.Option(..., file_okay=False, help="Folder for report.md and figures."),
    replay_json: Path | None = typer.Option(
        None, "--replay", exists=True, dir_okay=False, help="Use this replay.json."
    ),
    reference: str | None = typer.Option(None, help="Ratio denominator (default avagrad)."),
    tuners: str = typer.Option("all", help=TUNERS_HELP),
    seeds: int = typer.Option(100, min=1, max=100_000, help="Seeded runs when replaying."),
    delta: list[float] | None = typer.Option(None, min=0.0, help=f"When replaying: {DELTA_HELP}"),
    processes: int = typer.Option(0, min=0, help="Worker processes (0: one per CPU)."),
    bootstrap_tables: int = typer.Option(
        30, min=2, max=2000, help="Hierarchical bootstrap: resampled tables (B) per grid."
    ),
    bootstrap_replays: int = typer.Option(
        10, min=1, max=1000, help="Hierarchical bootstrap: tuner replays (R) per table."
    ),
) -> None:
    """Write the separability report (report.md, metrics.json, PNG figures) for grid tables."""
    from studies.bootstrap import BootstrapSettings
    from studies.replay import ReplayResult
    from studies.report import build_report

    grids, chosen = _load(tables), _tuner_list(tuners)
    result = None
    if replay_json is not None:
        try:
            result = ReplayResult.load(replay_json)
        except (ValueError, OSError) as error:
            raise typer.BadParameter(f"{replay_json}: {error}", param_hint="--replay") from None
        if len(result.tables) != len(grids):
            raise typer.BadParameter("the replay must cover the same tables, in order")
    try:
        with exit_on_interrupt(f"the report in {out} is incomplete"):
            metrics = build_report(
                grids,
                result,
                out,
                reference=reference,
                tuners=chosen,
                seeds=seeds,
                deltas=delta or None,
                processes=processes or None,
                bootstrap=BootstrapSettings(tables=bootstrap_tables, replays=bootstrap_replays),
            )
    except (ValueError, KeyError) as error:
        raise typer.BadParameter(str(error)) from error
    console.print(metrics["verdict"])
    console.print(f"wrote {out / 'report.md'}")


def register(app: typer.Typer) -> None:
    """Attach `replay` and `report` to the root `avatune` app."""
    app.command("replay")(replay)
    app.command("report")(report)
