"""The server's commands: `avatune serve`, `avatune db upgrade`, and thin HTTP clients
(`avatune study create/list/show`, `avatune experiment show`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

console = Console()
err = Console(stderr=True)

db_app = typer.Typer(help="The service's database.", no_args_is_help=True)
study_app = typer.Typer(help="Studies on a running server (HTTP).", no_args_is_help=True)
experiment_app = typer.Typer(help="Experiments on a running server (HTTP).", no_args_is_help=True)

SERVER = typer.Option(
    "http://127.0.0.1:8000", "--server", envvar="AVATUNE_SERVER", help="The server's URL."
)
TOKEN = typer.Option(None, "--token", envvar="AVATUNE_TOKEN", help="The server's token.")


def serve(
    host: str = typer.Option(None, help="Address to listen on (AVATUNE_HOST; 127.0.0.1)."),
    port: int = typer.Option(None, help="Port (AVATUNE_PORT; 8000)."),
    workers: int = typer.Option(1, "--workers", min=1, max=64, help="API processes."),
    db: str = typer.Option(None, "--db", help="Database URL (AVATUNE_DATABASE_URL)."),
    lease_seconds: float = typer.Option(
        None, min=0.1, help="Lease length in seconds (AVATUNE_LEASE_SECONDS)."
    ),
    insecure: bool = typer.Option(False, help="Allow a non-loopback host without a token."),
) -> None:
    """Run the API server (migrating the database first)."""
    import uvicorn

    from service.auth import is_loopback
    from service.db import Database
    from service.leases import extend_leases
    from service.migrations import upgrade
    from service.models import utcnow
    from service.settings import Settings

    given = {"host": host, "port": port, "database_url": db, "lease_seconds": lease_seconds}
    overrides = {name: value for name, value in given.items() if value is not None}
    settings = Settings(**overrides)
    if not is_loopback(settings.host) and settings.token_value is None and not insecure:
        err.print(
            f"[red]refusing to listen on {settings.host} without a token[/]: set AVATUNE_TOKEN "
            "(workers and clients then send it), or pass --insecure"
        )
        raise typer.Exit(2)
    for name, value in overrides.items():
        os.environ[f"AVATUNE_{name.upper()}"] = str(value)  # the API processes read these
    upgrade(settings.database_url)
    database = Database(settings.database_url, pool_size=1)
    with database.write() as conn:
        extended = extend_leases(conn, utcnow(), settings.lease_seconds)
    database.dispose()
    if extended:
        err.print(f"gave {extended} leased trials a fresh lease after the restart")
    where = f"http://{settings.host}:{settings.port}"
    err.print(f"avatune serving on {where} ({settings.database_url})")
    uvicorn.run(
        "service.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=workers,
        log_level="warning",
    )


@db_app.command("upgrade")
def db_upgrade(
    db: str = typer.Option(None, "--db", help="Database URL (AVATUNE_DATABASE_URL)."),
    revision: str = typer.Option("head", help="Target revision."),
) -> None:
    """Bring the database schema to the latest revision."""
    from service.migrations import upgrade
    from service.settings import Settings

    url = db or Settings().database_url
    upgrade(url, revision=revision)
    console.print(f"database at {revision}: {url}")


def _client(server: str, token: str | None) -> Any:
    import httpx

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=server.rstrip("/"), headers=headers, timeout=60)


def _call(server: str, token: str | None, method: str, path: str, **kwargs: Any) -> Any:
    import httpx

    try:
        with _client(server, token) as client:
            response = client.request(method, path, **kwargs)
    except httpx.TransportError as error:
        err.print(f"[red]cannot reach {server}[/]: {error}")
        raise typer.Exit(1) from None
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        err.print(f"[red]{response.status_code}[/]: {detail}")
        raise typer.Exit(1)
    return response.json() if response.content else None


def _study_table(studies: list[dict[str, Any]]) -> Table:
    table = Table()
    for column in ("id", "name", "state", "optimizer", "tuner", "progress", "best", "α*", "ε*"):
        table.add_column(column, justify="left" if column in ("name", "state") else "right")
    for s in studies:
        best = s.get("best") or {}
        table.add_row(
            str(s["id"]),
            s["name"],
            s["state"],
            s["optimizer"],
            s["tuner"],
            f"{s['finished']}/{s['budget']}",
            f"{best['value']:.4g}" if best else "–",
            f"{best['alpha']:.3g}" if best else "–",
            f"{best['eps']:.3g}" if best else "–",
        )
    return table


@study_app.command("create")
def study_create(
    file: Path = typer.Option(..., "-f", "--file", exists=True, dir_okay=False, help="Spec YAML."),
    server: str = SERVER,
    token: str = TOKEN,
) -> None:
    """Submit a study (or an experiment: a spec with `kind: experiment`)."""
    from pydantic import ValidationError

    from studies.specs import ExperimentSpec, load_spec

    try:
        spec = load_spec(file)
    except (ValidationError, ValueError) as error:
        err.print(f"[red]invalid spec {file}[/]:\n{error}")
        raise typer.Exit(2) from None
    path = "/api/experiments" if isinstance(spec, ExperimentSpec) else "/api/studies"
    body = _call(
        server,
        token,
        "POST",
        path,
        content=spec.model_dump_json(),
        headers={"Content-Type": "application/json"},
    )
    if isinstance(spec, ExperimentSpec):
        n = len(body["studies"])
        console.print(f"experiment {body['id']} ({body['name']}): {n} grid studies")
        console.print(_study_table(body["studies"]))
    else:
        console.print(
            f"study {body['id']} ({body['name']}): {body['state']}, budget {body['budget']}"
        )


@study_app.command("list")
def study_list(
    server: str = SERVER, token: str = TOKEN, state: str = typer.Option(None, help="Filter.")
) -> None:
    """Studies with progress and best value."""
    params = {"state": state} if state else {}
    console.print(_study_table(_call(server, token, "GET", "/api/studies", params=params)))


@study_app.command("show")
def study_show(
    study_id: int = typer.Argument(..., min=1),
    server: str = SERVER,
    token: str = TOKEN,
    top: int = typer.Option(10, min=0, help="Best trials to list."),
) -> None:
    """One study and its best trials."""
    study = _call(server, token, "GET", f"/api/studies/{study_id}")
    console.print(_study_table([study]))
    counts = ", ".join(f"{k} {v}" for k, v in sorted(study["counts"].items()))
    console.print(
        f"trials: {counts or 'none'}"
        + (f"; stopped: {study['stop_reason']}" if study.get("stop_reason") else "")
    )
    if top:
        page = _call(
            server,
            token,
            "GET",
            f"/api/studies/{study_id}/trials",
            params={"state": ["complete", "diverged"], "limit": 5000},
        )
        trials = sorted(page["trials"], key=lambda t: t["value"])[:top]
        table = Table(title=f"best {len(trials)} trials")
        for column in ("number", "α", "ε", "value", "test", "diverged"):
            table.add_column(column, justify="right")
        for t in trials:
            test = "–" if t["test_value"] is None else f"{t['test_value']:.4g}"
            table.add_row(
                str(t["number"]),
                f"{t['alpha']:.3g}",
                f"{t['eps']:.3g}",
                f"{t['value']:.4g}",
                test,
                "yes" if t["diverged"] else "",
            )
        console.print(table)


@experiment_app.command("show")
def experiment_show(
    experiment_id: int = typer.Argument(..., min=1), server: str = SERVER, token: str = TOKEN
) -> None:
    """An experiment's grids and, once complete, its report's metrics."""
    body = _call(server, token, "GET", f"/api/experiments/{experiment_id}")
    console.print(
        f"experiment {body['id']} ({body['name']}): {body['state']}, "
        f"{100 * body['progress']:.1f}% of its grids"
    )
    console.print(_study_table(body["studies"]))
    if body["state"] == "done" or body["report_ready"]:
        report = _call(server, token, "GET", f"/api/experiments/{experiment_id}/report")
        if "metrics" in report:
            console.print_json(data=report["metrics"])
        else:
            console.print(report.get("detail", "the report is not ready yet"))


def register(app: typer.Typer) -> None:
    """Attach the server's commands to the root `avatune` app."""
    from service.demo import demo

    app.command("serve")(serve)
    app.command("demo")(demo)
    app.add_typer(db_app, name="db")
    app.add_typer(study_app, name="study")
    app.add_typer(experiment_app, name="experiment")
