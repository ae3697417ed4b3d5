"""`avatune demo`: the paper's Adam-vs-AvaGrad experiment on this machine, end to end.

It starts the server on a SQLite file and local workers as child processes, submits the
experiment spec (or finds the one a previous run submitted, so a rerun resumes), shows the
grids' progress, stops the workers when the grids are complete, waits for the report and
prints it with the dashboard's URL; then serves the dashboard until Ctrl-C.
"""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import typer
import yaml
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from service.demo_summary import summary
from service.local_fleet import LocalFleet, default_devices
from studies.specs import ExperimentSpec, builtin_spec, load_spec
from studies.table import GridTable

console = Console()
POLL_SECONDS = 1.0
#: Without a terminal, a progress line this often instead of live bars.
LOG_SECONDS = 15.0
#: Short leases: a worker killed without releasing its trials delays a rerun this long.
LEASE_SECONDS = 30.0


def find_or_submit(client: httpx.Client, spec: ExperimentSpec) -> tuple[dict[str, Any], bool]:
    """The experiment a previous run submitted with this very spec (resumed if paused),
    else a new one."""
    for experiment in client.get("/api/experiments", params={"limit": 1000}).json():
        same = ExperimentSpec.model_validate(experiment["spec"]) == spec
        if same and experiment["state"] == "paused":
            resumed = client.post(f"/api/experiments/{experiment['id']}/resume")
            resumed.raise_for_status()
            return resumed.json(), True
        if same and experiment["state"] in ("running", "done"):
            return experiment, True
    response = client.post(
        "/api/experiments",
        content=spec.model_dump_json(),
        headers={"Content-Type": "application/json"},
    )
    response.raise_for_status()
    return response.json(), False


def _grid_label(experiment: dict[str, Any], study: dict[str, Any]) -> str:
    return f"{study['optimizer']} grid"


def follow_grids(
    client: httpx.Client,
    experiments: list[dict[str, Any]],
    fleet: LocalFleet,
    label: Callable[[dict[str, Any], dict[str, Any]], str] = _grid_label,
) -> None:
    """Progress bars, one per grid study of the experiments, until every grid is finished."""
    columns = (
        TextColumn("{task.description:<16}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console) as progress:
        bars = {
            s["id"]: progress.add_task(
                label(e, s), total=s["budget"], completed=s["trainings_done"]
            )
            for e in experiments
            for s in e["studies"]
        }
        last_line = time.monotonic()
        while True:
            experiments = [client.get(f"/api/experiments/{e['id']}").json() for e in experiments]
            studies = [(e, s) for e in experiments for s in e["studies"]]
            for _, study in studies:
                progress.update(bars[study["id"]], completed=study["trainings_done"])
            if not console.is_terminal and time.monotonic() - last_line >= LOG_SECONDS:
                last_line = time.monotonic()  # logs and CI get a line instead of live bars
                console.print(_progress_line(studies, label))
            if all(s["state"] != "running" for _, s in studies):
                return
            if fleet.workers and not fleet.workers_alive():
                raise RuntimeError(f"every worker exited; see {fleet.log_dir}/worker-*.log")
            time.sleep(POLL_SECONDS)


def _progress_line(
    studies: list[tuple[dict[str, Any], dict[str, Any]]],
    label: Callable[[dict[str, Any], dict[str, Any]], str],
) -> str:
    """Grids under way (started, not finished) and how many are finished."""
    active = [
        f"{label(e, s)} {s['trainings_done']}/{s['budget']}"
        for e, s in studies
        if s["state"] == "running" and s["trainings_done"] > 0
    ]
    finished = sum(s["state"] != "running" for _, s in studies)
    return ", ".join([*active, f"{finished}/{len(studies)} grids finished"])


def wait_for_report(client: httpx.Client, experiment_id: int) -> dict[str, Any]:
    """Ask for the report until the server has replayed the tuners and stored it."""
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        progress.add_task("replaying every tuner on the grids (Figure 2)…")
        while True:
            response = client.get(f"/api/experiments/{experiment_id}/report")
            if response.status_code == 200:
                return response.json()
            if response.status_code not in (202, 503):
                raise RuntimeError(f"the report failed: {response.status_code} {response.text}")
            time.sleep(POLL_SECONDS)


def save_tables(tables: list[dict[str, Any]], folder: Path) -> list[str]:
    """Write the grids as `avatune grid` tables, for `avatune replay` and `avatune report`."""
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for data in tables:
        table = GridTable.model_validate(data)
        names.append(f"{re.sub(r'[^A-Za-z0-9._-]', '-', table.optimizer)}.json")  # a path
        table.save(folder / names[-1])
    return names


class Stopped(KeyboardInterrupt):
    """SIGINT or SIGTERM: stop every child process, then exit 128 + the signal."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def stop_on_signal(signum: int, frame: object) -> None:
    raise Stopped(signum)


def demo_spec(spec: str | None, quick: bool) -> ExperimentSpec:
    """The experiment the demo runs: `spec` (a built-in name or a file), else the paper's or
    the quick one. Raises ValueError saying what to change."""
    if spec is not None and quick:
        raise ValueError("give --quick or --spec, not both")
    name = spec or ("quick-mnist1d" if quick else "paper-mnist1d")
    path = Path(name)
    if not path.is_file() and (path.suffix in (".yaml", ".yml", ".json") or "/" in name):
        raise ValueError(f"no spec file {name}; check the path")
    try:
        loaded = load_spec(path) if path.is_file() else builtin_spec(name)
    except (OSError, yaml.YAMLError) as error:
        raise ValueError(f"cannot read {name}: {error}") from None
    if not isinstance(loaded, ExperimentSpec):
        raise ValueError(f"{name} is a study spec; the demo runs experiments (kind: experiment)")
    return loaded


def run_demo(
    spec: ExperimentSpec,
    *,
    exit_when_done: bool,
    workers: int | None,
    host: str,
    port: int,
    data_dir: Path,
) -> None:
    """Everything `avatune demo` does; every child process is stopped on the way out."""
    data_dir = data_dir.resolve()
    database_url = f"sqlite:///{data_dir / 'avatune.db'}"
    env = {"AVATUNE_DATA_DIR": str(data_dir), "AVATUNE_LEASE_SECONDS": str(LEASE_SECONDS)}
    devices = default_devices(workers)
    fleet = LocalFleet(data_dir / "logs")
    started = time.monotonic()
    signal.signal(signal.SIGINT, stop_on_signal)  # also when started with SIGINT ignored
    signal.signal(signal.SIGTERM, stop_on_signal)
    try:
        url = fleet.start_server(database_url, host, port, env)
        console.print(f"server on {url} (database {data_dir / 'avatune.db'})")
        with httpx.Client(base_url=url, timeout=30) as client:
            experiment, resumed = find_or_submit(client, spec)
            grids = " and ".join(s["optimizer"] for s in experiment["studies"])
            console.print(
                f"{'resuming' if resumed else 'submitted'} experiment {experiment['id']} "
                f"({spec.name}: {grids} on {spec.task.name})"
            )
            if experiment["state"] == "running":
                fleet.start_workers(url, devices, env)
                kinds = ", ".join(sorted(set(devices)))
                console.print(f"{len(devices)} local worker(s) on {kinds}")
                follow_grids(client, [experiment], fleet)
                fleet.stop_workers()
            report = wait_for_report(client, experiment["id"])
        report_dir = data_dir / "reports" / str(experiment["id"])
        names = save_tables(report["tables"], report_dir / "tables")
        console.print(summary(report["metrics"]))
        console.print(f"finished in {time.monotonic() - started:.0f} s")
        console.print(f"report, figures and grid tables ({', '.join(names)}): {report_dir}")
        console.print(f"dashboard: [bold]{url}/experiments/{experiment['id']}[/]")
        if exit_when_done:
            return
        console.print("serving the dashboard; press Ctrl-C to stop")
        assert fleet.server is not None
        fleet.server.wait()
    except KeyboardInterrupt as stop:
        console.print("\nstopping; run `avatune demo` again to resume where this left off")
        raise typer.Exit(128 + getattr(stop, "signum", signal.SIGINT)) from None
    finally:
        fleet.stop()


def demo(
    quick: bool = typer.Option(False, help="The quick spec (coarse 11×11 grids, 200 steps)."),
    spec: str = typer.Option(
        None,
        help="Another experiment: a built-in spec's name (studies/specs, e.g. "
        "paper-mnist1d-l2) or a spec file.",
    ),
    exit_when_done: bool = typer.Option(
        False, "--exit", help="Stop once the report is printed instead of serving the dashboard."
    ),
    workers: int = typer.Option(
        None, min=1, max=64, help="Local workers (default: one per GPU, or one per two cores)."
    ),
    host: str = typer.Option("127.0.0.1", help="Address for the server and dashboard."),
    port: int = typer.Option(8000, min=1, max=65535, help="Port for the server and dashboard."),
    data_dir: Path = typer.Option(
        Path(".avatune/demo"), "--data-dir", help="Database, logs and report figures."
    ),
) -> None:
    """Run the paper's Adam-vs-AvaGrad experiment locally and print the separability report."""
    try:
        experiment = demo_spec(spec, quick)
    except ValueError as error:
        console.print(f"[red]demo[/]: {error}")
        raise typer.Exit(2) from None
    try:
        run_demo(
            experiment,
            exit_when_done=exit_when_done,
            workers=workers,
            host=host,
            port=port,
            data_dir=data_dir,
        )
    except typer.Exit:  # a RuntimeError too: the exit status after a signal
        raise
    except (RuntimeError, httpx.HTTPError) as error:
        console.print(f"[red]demo failed[/]: {error}")
        raise typer.Exit(1) from None
