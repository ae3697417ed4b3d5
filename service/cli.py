"""The server's commands: `avatune serve`, `avatune db upgrade`, and thin HTTP clients
(`avatune study create/list/show`; pause, resume, cancel, delete and `avatune experiment …`
are in `service.control_cli`), which call the server through `avatune.client.Client`."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.table import Table

from studies.cli import note_interrupt
from studies.cli_options import LOG_FORMAT, LOG_LEVEL, SERVER, TOKEN
from studies.log_setup import LogFormat, LogLevel, configure_logging

if TYPE_CHECKING:  # the client loads with the commands that use it
    from avatune.client import Client
    from studies.schemas import StudyOut

console = Console()
err = Console(stderr=True)

db_app = typer.Typer(help="The service's database.", no_args_is_help=True)
study_app = typer.Typer(help="Studies on a running server (HTTP).", no_args_is_help=True)
experiment_app = typer.Typer(help="Experiments on a running server (HTTP).", no_args_is_help=True)


def serve(
    host: str = typer.Option(None, help="Address to listen on; env AVATUNE_HOST, 127.0.0.1."),
    port: int = typer.Option(None, help="Port; env AVATUNE_PORT, 8000."),
    workers: int = typer.Option(1, "--workers", min=1, max=64, help="API processes."),
    db: str = typer.Option(None, "--db", help="Database URL; env AVATUNE_DATABASE_URL."),
    lease_seconds: float = typer.Option(
        None, min=0.1, help="Lease length, seconds; env AVATUNE_LEASE_SECONDS."
    ),
    insecure: bool = typer.Option(
        False, "--insecure", help="Allow a non-loopback host without a token."
    ),
    log_level: LogLevel = LOG_LEVEL,
    log_format: LogFormat = LOG_FORMAT,
) -> None:
    """Run the API server (migrating the database first)."""
    import logging

    import uvicorn
    from sqlalchemy.engine import make_url

    from service.auth import is_loopback
    from service.db import Database
    from service.leases import extend_leases
    from service.migrations import current
    from service.models import utcnow
    from service.redact import redact

    configure_logging(log_level, log_format)
    log = logging.getLogger("avatune.server")
    given = {"host": host, "port": port, "database_url": db, "lease_seconds": lease_seconds}
    given |= {"log_level": log_level.value, "log_format": log_format.value}
    overrides = {name: value for name, value in given.items() if value is not None}
    settings = _settings(overrides)
    if not is_loopback(settings.host) and settings.token_value is None and not insecure:
        err.print(
            f"[red]refusing to listen on {settings.host} without a token[/]: set AVATUNE_TOKEN "
            "(workers and clients then send it), or pass --insecure"
        )
        raise typer.Exit(2)
    for name, value in overrides.items():
        os.environ[f"AVATUNE_{name.upper()}"] = str(value)  # the API processes read these
    url = make_url(settings.database_url)
    shown, dialect = redact(url), url.get_backend_name()
    log.info("starting: %s database %s", dialect, shown, extra={"db": shown, "dialect": dialect})
    _migrate(settings.database_url)
    database = Database(settings.database_url, pool_size=1)
    revision = current(database.engine)
    log.info("migrations applied: schema at %s", revision, extra={"revision": revision})
    with database.write() as conn:
        extended = extend_leases(conn, utcnow(), settings.lease_seconds)
    database.dispose()
    if extended:
        log.info(
            "gave %d leased trials a fresh lease after the restart",
            extended,
            extra={"extended": extended},
        )
    where = f"http://{settings.host}:{settings.port}"
    log.info(
        "serving on %s with %d API process(es)",
        where,
        workers,
        extra={"url": where, "workers": workers},
    )
    interrupted = note_interrupt()  # uvicorn.run swallows Ctrl-C; the exit code should not
    uvicorn.run(
        "service.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=workers,
        log_level=log_level.value,
        log_config=None,  # our handler (studies.log_setup), set up in each API process
        access_log=False,  # ours: service.access_log
    )
    log.info("stopped")
    if interrupted.is_set():
        raise typer.Exit(130)


@db_app.command("upgrade")
def db_upgrade(
    db: str = typer.Option(None, "--db", help="Database URL (AVATUNE_DATABASE_URL)."),
    revision: str = typer.Option("head", help="Target revision."),
) -> None:
    """Bring the database schema to the latest revision."""
    from sqlalchemy.engine import make_url

    from service.redact import redact

    settings = _settings({"database_url": db} if db else {})
    _migrate(settings.database_url, revision)
    shown = redact(make_url(settings.database_url))
    console.print(f"database at {revision}: {shown}", markup=False, highlight=False)


def _fail(message: str, code: int) -> typer.Exit:
    """Print `message` (one line, no markup, passwords redacted) to stderr; the Exit to
    raise with `code`."""
    from service.redact import redact

    err.print(redact(message), markup=False, highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _settings(overrides: dict[str, Any]) -> Any:
    """The server's settings with CLI `overrides`; exit 2 with the fix when invalid."""
    from service.settings import SettingsError, load_settings

    try:
        return load_settings(**overrides)
    except SettingsError as error:
        raise _fail(str(error), 2) from None


def _migrate(url: str, revision: str = "head") -> None:
    """Migrate the database at `url`; one line with the fix (exit 1, or 2 for a bad
    revision) when it cannot be opened."""
    from alembic.util import CommandError
    from sqlalchemy.exc import DBAPIError

    from service.db import DatabaseURLError, connection_error_message
    from service.migrations import upgrade

    try:
        upgrade(url, revision=revision)
    except DatabaseURLError as error:
        raise _fail(str(error), 2) from None
    except CommandError as error:
        raise _fail(f"cannot migrate to {revision!r}: {error}; use head", 2) from None
    except DBAPIError as error:
        raise _fail(connection_error_message(url, error), 1) from None


def _client(server: str, token: str | None) -> Client:
    """A client of the server at `server` (BadParameter, exit 2, on a malformed URL)."""
    from avatune.client import Client

    try:
        return Client(server, token)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--server") from None


@contextmanager
def connected(server: str, token: str | None) -> Iterator[Client]:
    """A client for the block; exit 1 with one line saying what to do when the server is
    unreachable, is not avatune, or refuses (its status and message)."""
    from avatune.errors import AvatuneError

    client = _client(server, token)
    try:
        with client:
            yield client
    except AvatuneError as error:
        raise _fail(str(error), 1) from None


def _study_table(studies: list[StudyOut]) -> Table:
    table = Table()
    for column in ("id", "name", "state", "optimizer", "tuner", "trainings", "best", "α*", "ε*"):
        table.add_column(column, justify="left" if column in ("name", "state") else "right")
    for s in studies:
        best = s.best
        table.add_row(
            str(s.id),
            s.name,
            s.state,
            s.optimizer,
            s.tuner,
            f"{s.trainings_done}/{s.budget}",
            f"{best.value:.4g}" if best else "–",
            f"{best.alpha:.3g}" if best else "–",
            f"{best.eps:.3g}" if best else "–",
        )
    return table


@study_app.command("create")
def study_create(
    file: Path = typer.Option(..., "-f", "--file", exists=True, dir_okay=False, help="Spec YAML."),
    server: str = SERVER,
    token: str = TOKEN,
) -> None:
    """Submit a study (or an experiment: a spec with `kind: experiment`)."""
    from studies.schemas import ExperimentOut
    from studies.specs import SpecError, spec_from_file

    try:
        spec = spec_from_file(file, names=False)  # the server's plugins decide
    except SpecError as error:
        raise _fail(f"invalid spec:\n{error}", 2) from None
    with connected(server, token) as client:
        body = client.create(spec)
    if isinstance(body, ExperimentOut):
        console.print(f"experiment {body.id} ({body.name}): {len(body.studies)} grid studies")
        console.print(_study_table(body.studies))
    else:
        console.print(f"study {body.id} ({body.name}): {body.state}, budget {body.budget}")


@study_app.command("list")
def study_list(
    server: str = SERVER, token: str = TOKEN, state: str = typer.Option(None, help="Filter.")
) -> None:
    """Studies with progress and best value."""
    with connected(server, token) as client:
        studies = client.studies(state=state or None)
    console.print(_study_table(studies))


@study_app.command("show")
def study_show(
    study_id: int = typer.Argument(..., min=1),
    server: str = SERVER,
    token: str = TOKEN,
    top: int = typer.Option(10, min=0, help="Best trainings to list."),
) -> None:
    """One study, its progress in trainings and its best trainings."""
    with connected(server, token) as client:
        study = client.study(study_id)
        valued = client.study_trials(study_id, states=("complete", "diverged")) if top else []
    console.print(_study_table([study]))
    counts = ", ".join(f"{k} {v}" for k, v in sorted(study.counts.items()))
    limit = study.in_flight_limit
    console.print(
        f"trainings: {study.trainings_done} of {study.trainings_budget} done"
        f" ({counts or 'none'}); {study.repeats} repeat asks answered free; in flight "
        f"{study.trainings_in_flight}"
        + (f" (limit {limit})" if limit else "")
        + (f"; stopped: {study.stop_reason}" if study.stop_reason else "")
    )
    if top:
        trials = sorted(valued, key=lambda t: math.inf if t.value is None else t.value)[:top]
        table = Table(title=f"best {len(trials)} trainings")
        for column in ("training", "α", "ε", "value", "test", "diverged"):
            table.add_column(column, justify="right")
        for t in trials:
            test = "–" if t.test_value is None else f"{t.test_value:.4g}"
            table.add_row(
                "–" if t.training is None else str(t.training + 1),
                f"{t.alpha:.3g}",
                f"{t.eps:.3g}",
                "–" if t.value is None else f"{t.value:.4g}",
                test,
                "yes" if t.diverged else "",
            )
        console.print(table)


def register(app: typer.Typer) -> None:
    """Attach the server's commands to the root `avatune` app."""
    from service import control_cli  # noqa: F401  (adds its commands to study_app, experiment_app)
    from service.atlas import atlas
    from service.demo import demo

    app.command("serve")(serve)
    app.command("demo")(demo)
    app.command("atlas")(atlas)
    app.add_typer(db_app, name="db")
    app.add_typer(study_app, name="study")
    app.add_typer(experiment_app, name="experiment")
