"""`avatune atlas`: the separability atlas protocol run through the service and its workers.

It submits every experiment of the atlas spec (or finds the ones a previous run submitted,
so a rerun resumes), follows each grid with a progress bar, then fetches the complete grids
and the diagnostics and writes the atlas report (`studies.atlas_write`). Without
`--server` it starts a server on a SQLite file and local workers, as `avatune demo` does;
with `--server` the grids are trained by whatever workers that server has.
"""

from __future__ import annotations

import json
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

from service.demo import LEASE_SECONDS, find_or_submit, follow_grids, stop_on_signal
from service.local_fleet import LocalFleet, default_devices
from studies.atlas_provenance import Session, provenance
from studies.atlas_spec import (
    ATLAS_SPEC,
    AVAGRAD_FAMILY,
    MAIN_ROLES,
    AtlasExperiment,
    AtlasSpec,
    load_atlas,
)
from studies.atlas_write import AtlasInputs, write_atlas
from studies.cli_options import TOKEN
from studies.spec_errors import SpecError
from studies.table import GridTable

console = Console()


@dataclass
class Submitted:
    """An atlas experiment and the server's view of it."""

    plan: AtlasExperiment
    body: dict[str, Any]


def submit_all(client: httpx.Client, spec: AtlasSpec) -> list[Submitted]:
    """Submit (or find) every experiment of the atlas."""
    out = []
    for plan in spec.experiments():
        body, resumed = find_or_submit(client, plan.spec)
        console.print(
            f"{'found' if resumed else 'submitted'} experiment {body['id']}: {plan.spec.name}"
        )
        out.append(Submitted(plan, body))
    return out


def fetch_tables(client: httpx.Client, experiment_id: int) -> list[GridTable]:
    """An experiment's complete grids (every seed)."""
    response = client.get(f"/api/experiments/{experiment_id}/tables")
    response.raise_for_status()
    return [GridTable.model_validate(t) for t in response.json()]


def fetch_diagnostics(client: httpx.Client, study: dict[str, Any]) -> list[dict[str, Any]]:
    """The mechanism diagnostics of a study's trainings, every page."""
    trainings: list[dict[str, Any]] = []
    after = None
    while True:
        params = {"limit": 500, **({} if after is None else {"after": after})}
        response = client.get(f"/api/studies/{study['id']}/diagnostics", params=params)
        response.raise_for_status()
        page = response.json()
        trainings += page["trainings"]
        after = page.get("next_after")
        if after is None or not page["trainings"]:
            return trainings


def grid_times(client: httpx.Client, study: dict[str, Any]) -> dict[str, Any]:
    """When a grid's first and last trainings finished, and how many points it has."""
    page = client.get(f"/api/studies/{study['id']}/trials", params={"limit": 5000}).json()
    finished = sorted(t["finished_at"] for t in page["trials"] if t.get("finished_at"))
    return {
        "study": study["id"],
        "optimizer": study["optimizer"],
        "points": len(page["trials"]),
        "first_finished": finished[0] if finished else None,
        "last_finished": finished[-1] if finished else None,
    }


def collect(client: httpx.Client, submitted: list[Submitted]) -> AtlasInputs:
    """Everything the report needs from the server, once every grid is complete."""
    inputs = AtlasInputs()
    for item in submitted:
        experiment = client.get(f"/api/experiments/{item.body['id']}").json()
        tables = fetch_tables(client, item.body["id"])
        inputs.add_tables(item.plan.task, item.plan.role, tables)
        for study in experiment["studies"]:
            timing = grid_times(client, study)
            if item.plan.role not in MAIN_ROLES:
                timing["optimizer"] += f" ({item.plan.role})"
            inputs.timings.append({"task": item.plan.task, **timing})
            diagnosed = item.plan.spec.fidelity.diagnostics_every is not None
            if diagnosed and study["optimizer"] in AVAGRAD_FAMILY:
                decay = next(
                    o.weight_decay
                    for o in item.plan.spec.optimizers
                    if o.name == study["optimizer"]
                )
                inputs.diagnostics.append(
                    {
                        "task": item.plan.task,
                        "role": item.plan.role,
                        "optimizer": study["optimizer"],
                        "weight_decay": decay,
                        "trainings": fetch_diagnostics(client, study),
                    }
                )
    return inputs


def run_atlas(
    spec: AtlasSpec,
    *,
    server: str | None,
    token: str | None,
    workers: int | None,
    device: str | None,
    host: str,
    port: int,
    data_dir: Path,
    out_dir: Path,
    command: str,
    processes: int | None,
) -> Path:
    """Everything `avatune atlas` does; every child process is stopped on the way out."""
    data_dir = data_dir.resolve()
    session = Session.start(data_dir / "atlas-sessions.json")
    fleet = LocalFleet(data_dir / "logs")
    signal.signal(signal.SIGINT, stop_on_signal)
    signal.signal(signal.SIGTERM, stop_on_signal)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        env = {"AVATUNE_DATA_DIR": str(data_dir), "AVATUNE_LEASE_SECONDS": str(LEASE_SECONDS)}
        if server is None:
            url = fleet.start_server(f"sqlite:///{data_dir / 'avatune.db'}", host, port, env)
            console.print(f"server on {url} (database {data_dir / 'avatune.db'})")
        else:
            url = server.rstrip("/")
        with httpx.Client(base_url=url, timeout=60, headers=headers) as client:
            submitted = submit_all(client, spec)
            running = [s.body for s in submitted if s.body["state"] == "running"]
            if running:
                devices = _devices(server, workers, device)
                if devices:
                    fleet.start_workers(url, devices, env)
                    console.print(f"{len(devices)} local worker(s) on {', '.join(set(devices))}")
                follow_grids(client, running, fleet, label=_label(submitted))
                fleet.stop_workers()
            session.trained(sum(len(e["studies"]) for e in running))
            console.print("every grid is complete; fetching grids and diagnostics")
            inputs = collect(client, submitted)
        header = provenance(command, session, url if server else "local")
        report = write_atlas(spec, inputs, out_dir, header=header, processes=processes, say=_say)
        session.finish()
        _print_times(json.loads((out_dir / "metrics.json").read_text())["timings"]["grids"])
        console.print(f"atlas report: {report} (wall {session.total_seconds():.0f} s)")
        return report
    except KeyboardInterrupt as stop:
        session.stop()
        console.print("\nstopping; run `avatune atlas` again to resume where this left off")
        raise typer.Exit(128 + getattr(stop, "signum", signal.SIGINT)) from None
    finally:
        fleet.stop()


def _print_times(grids: list[dict[str, Any]]) -> None:
    """Per-grid wall seconds, as the report lists them."""
    table = Table("task", "grid", "points", "seconds", title="grid times (wall)")
    for g in grids:
        table.add_row(g["task"], g["optimizer"], str(g["points"]), f"{g['seconds']:.0f}")
    console.print(table)


def _say(text: str) -> None:
    console.print(text)


def _devices(server: str | None, workers: int | None, device: str | None) -> list[str]:
    """Local workers to start: none against a remote server unless asked for."""
    if workers == 0 or (server is not None and workers is None):
        return []
    if device is not None:
        return [device] * (workers or 1)
    return default_devices(workers)


def _label(submitted: list[Submitted]) -> Any:
    tasks = {s.body["id"]: s.plan for s in submitted}

    def label(experiment: dict[str, Any], study: dict[str, Any]) -> str:
        plan = tasks[experiment["id"]]
        suffix = "" if plan.role in MAIN_ROLES else f" ({plan.role})"
        return f"{plan.task} {study['optimizer']}{suffix}"

    return label


def atlas(
    spec_path: Path = typer.Option(
        None, "--spec", help="The atlas protocol [default: studies/specs/atlas.yaml]."
    ),
    server: str = typer.Option(
        None,
        "--server",
        help="Run on this server and its workers; default: a local server and workers.",
    ),
    token: str = TOKEN,
    workers: int = typer.Option(
        None,
        min=0,
        max=64,
        help="Local workers (default: one per GPU, or one per two cores; none with --server).",
    ),
    device: str = typer.Option(None, help="The local workers' device (cpu, cuda, cuda:1)."),
    host: str = typer.Option("127.0.0.1", help="Address of the local server."),
    port: int = typer.Option(8010, min=1, max=65535, help="Port of the local server."),
    data_dir: Path = typer.Option(
        Path(".avatune/atlas"), "--data-dir", help="Database, logs and per-task reports."
    ),
    out_dir: Path = typer.Option(
        Path("docs/results/atlas"), "--out", help="Where report.md, metrics.json and PNGs go."
    ),
    processes: int = typer.Option(
        None, min=1, max=256, help="Processes for the tuner replays (default: one per core)."
    ),
) -> None:
    """Run the separability atlas (tasks × optimizers) and write its report; resumable."""
    try:
        spec = load_atlas(spec_path or ATLAS_SPEC)
    except SpecError as error:
        console.print(f"[red]atlas[/]: {error}")
        raise typer.Exit(2) from None
    command = "avatune atlas " + " ".join(sys.argv[2:]) if len(sys.argv) > 1 else "avatune atlas"
    try:
        run_atlas(
            spec,
            server=server,
            token=token,
            workers=workers,
            device=device,
            host=host,
            port=port,
            data_dir=data_dir,
            out_dir=out_dir,
            command=command.strip(),
            processes=processes,
        )
    except typer.Exit:
        raise
    except (RuntimeError, httpx.HTTPError, OSError) as error:
        console.print(f"[red]atlas failed[/]: {error}")
        raise typer.Exit(1) from None
