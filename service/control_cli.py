"""Controls on a running server, over HTTP: `avatune study pause|resume|cancel|delete ID` and
`avatune experiment create|list|show|pause|resume|cancel|delete`.

Every command is one or two calls of `avatune.client.Client` (in `service.cli.connected`,
which turns a refusal into its status and the server's message on stderr and exit status
1); `delete` asks first unless `--yes`. `experiment show` prints the progress of the grids
and, once the report is stored, the tables and conclusion `avatune demo` ends with
(`service.demo_summary`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape
from rich.table import Table

from service.cli import connected, console, err, experiment_app, study_app
from studies.cli_options import SERVER, TOKEN

if TYPE_CHECKING:
    from avatune.client import Client
    from studies.schemas import ExperimentOut, ExperimentReport, StudyOut

ACTIONS = {"pause": "paused", "resume": "resumed", "cancel": "cancelled"}
YES = typer.Option(False, "--yes", "-y", help="Delete without asking.")
ID = typer.Argument(..., min=1, help="Its id (`list` shows them).")


def _say(text: str) -> None:
    """A line on stdout, as written (names from the server are no rich markup)."""
    console.print(text, markup=False, highlight=False, soft_wrap=True)


def _refuse(text: str, code: int = 1) -> typer.Exit:
    """A line on stderr; the Exit to raise with `code`."""
    err.print(text, markup=False, highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _confirm(question: str) -> None:
    """Ask; anything but yes (or no terminal to ask on) deletes nothing, exit status 1."""
    try:
        agreed = typer.confirm(question, default=False)
    except typer.Abort:  # end of input, or Ctrl-C
        agreed = False
    if not agreed:
        raise _refuse("nothing deleted (pass --yes to delete without asking)")


def _best(study: StudyOut) -> tuple[str, str, str]:
    best = study.best
    if best is None:
        return "–", "–", "–"
    return f"{best.value:.4g}", f"{best.alpha:.3g}", f"{best.eps:.3g}"


# ---- studies -------------------------------------------------------------------------


def _study_action(action: str, study_id: int, server: str, token: str | None) -> None:
    with connected(server, token) as client:
        change = {
            "pause": client.pause_study,
            "resume": client.resume_study,
            "cancel": client.cancel_study,
        }
        study = change[action](study_id)
    counts = ", ".join(f"{k} {v}" for k, v in sorted(study.counts.items()))
    _say(
        f"study {study.id} ({study.name}) {ACTIONS[action]}: now {study.state}; "
        f"trainings: {counts or 'none'}"
    )


@study_app.command("pause")
def study_pause(study_id: int = ID, server: str = SERVER, token: str = TOKEN) -> None:
    """Stop handing out a study's trials (leased ones may finish)."""
    _study_action("pause", study_id, server, token)


@study_app.command("resume")
def study_resume(study_id: int = ID, server: str = SERVER, token: str = TOKEN) -> None:
    """Hand out a paused study's trials again."""
    _study_action("resume", study_id, server, token)


@study_app.command("cancel")
def study_cancel(study_id: int = ID, server: str = SERVER, token: str = TOKEN) -> None:
    """Drop a study's queued trials for good (leased ones may still report)."""
    _study_action("cancel", study_id, server, token)


@study_app.command("delete")
def study_delete(
    study_id: int = ID, server: str = SERVER, token: str = TOKEN, yes: bool = YES
) -> None:
    """Delete a study and its trials (an experiment's grid goes with its experiment)."""
    with connected(server, token) as client:
        study = client.study(study_id)
        if study.experiment_id is not None:
            raise _refuse(
                f"study {study_id} is a grid of experiment {study.experiment_id}: delete the "
                f"experiment (avatune experiment delete {study.experiment_id})"
            )
        if not yes:
            trainings = sum(study.counts.values())
            _confirm(f"Delete study {study_id} ({study.name}) and its {trainings} trainings?")
        client.delete_study(study_id)
    _say(f"study {study_id} ({study.name}) deleted")


# ---- experiments ---------------------------------------------------------------------


def _grids_table(studies: list[StudyOut]) -> Table:
    """The progress of an experiment's grid studies."""
    table = Table(title="grids")
    for column in ("study", "optimizer", "state", "trainings", "progress", "best", "α*", "ε*"):
        table.add_column(column, justify="left" if column in ("optimizer", "state") else "right")
    for s in studies:
        table.add_row(
            str(s.id),
            escape(s.optimizer),
            s.state,
            f"{s.trainings_done}/{s.budget}",
            f"{100 * s.progress:.1f}%",
            *_best(s),
        )
    return table


def _headline(body: ExperimentOut) -> str:
    return (
        f"experiment {body.id} ({body.name}): {body.state}, "
        f"{100 * body.progress:.1f}% of its grids, task {body.task}"
    )


@experiment_app.command("create")
def experiment_create(
    file: Path = typer.Option(None, "-f", "--file", dir_okay=False, help="Spec YAML or JSON."),
    builtin: str = typer.Option(
        None, "--builtin", help="A spec shipped in studies/specs/, e.g. quick-mnist1d."
    ),
    server: str = SERVER,
    token: str = TOKEN,
) -> None:
    """Submit an experiment: a full grid study per optimizer, queued at once."""
    from pydantic import ValidationError

    from studies.specs import ExperimentSpec, builtin_spec, load_spec

    if (file is None) == (builtin is None):
        raise _refuse("give a spec: -f spec.yaml, or --builtin NAME (not both)", 2)
    source = str(file) if file is not None else f"built-in spec {builtin!r}"
    try:
        spec = load_spec(file, names=False) if file is not None else builtin_spec(builtin)
    except (ValidationError, ValueError, OSError) as error:
        raise _refuse(f"invalid spec {source}:\n{error}", 2) from None
    if not isinstance(spec, ExperimentSpec):
        raise _refuse(
            f"{source} is a study spec, not an experiment: submit it with "
            "`avatune study create -f`",
            2,
        )
    with connected(server, token) as client:
        body = client.create_experiment(spec)
    trainings = sum(s.budget for s in body.studies)
    _say(
        f"experiment {body.id} ({body.name}): {len(body.studies)} grid studies, "
        f"{trainings} trainings queued"
    )
    console.print(_grids_table(body.studies))
    _say(f"follow it: avatune experiment show {body.id}")


@experiment_app.command("list")
def experiment_list(
    server: str = SERVER,
    token: str = TOKEN,
    limit: int = typer.Option(100, min=1, max=1000, help="At most this many, newest first."),
) -> None:
    """Experiments, newest first, with the progress of their grids."""
    with connected(server, token) as client:
        found = client.experiments(limit=limit)
    if not found:
        _say("no experiments yet: avatune experiment create --builtin quick-mnist1d")
        return
    table = Table()
    for column in ("id", "name", "state", "task", "optimizers", "progress", "report"):
        table.add_column(column, justify="right" if column in ("id", "progress") else "left")
    for e in found:
        table.add_row(
            str(e.id),
            escape(e.name),
            e.state,
            escape(e.task),
            escape(", ".join(s.optimizer for s in e.studies)),
            f"{100 * e.progress:.1f}%",
            "ready" if e.report_ready else "–",
        )
    console.print(table)


def _report(client: Client, experiment_id: int) -> ExperimentReport | None:
    """The stored report (metrics and tables); None, after saying why, when there is none."""
    from avatune.errors import AvatuneError, ReportNotReady

    try:
        return client.report(experiment_id, wait=False)
    except ReportNotReady as error:  # 202: being computed
        _say(f"report: {error}")
    except AvatuneError as error:  # e.g. 409: a grid failed; 503: computing it failed
        err.print(str(error), markup=False, highlight=False, soft_wrap=True)
        _say("no report to show (see the message above)")
    return None


@experiment_app.command("show")
def experiment_show(
    experiment_id: int = ID,
    server: str = SERVER,
    token: str = TOKEN,
    as_json: bool = typer.Option(
        False, "--json", help="Print the experiment as the API gives it (and its report)."
    ),
) -> None:
    """An experiment's grids and, once they are complete, its report's tables and conclusion."""
    from service.demo_summary import summary

    with connected(server, token) as client:
        body = client.experiment(experiment_id)
        ready = body.report_ready or body.state == "done"
        if as_json:
            report = _report(client, experiment_id) if ready else None
            shown: dict[str, Any] = body.model_dump(mode="json")
            shown["report"] = None if report is None else report.model_dump(mode="json")
            typer.echo(json.dumps(shown, indent=2))
            return
        _say(_headline(body))
        console.print(_grids_table(body.studies))
        if body.state == "cancelled":
            _say("cancelled: its grids stay incomplete, so it has no report")
            return
        if not ready:
            _say("the report is computed once every grid is complete")
            return
        report = _report(client, experiment_id)
    if report is None:
        return
    try:
        console.print(summary(report.metrics))
    except (KeyError, TypeError, IndexError):  # metrics of another form: show them raw
        console.print_json(data=report.metrics)
    _say(f"the whole report: {server.rstrip('/')}/experiments/{experiment_id}")


def _experiment_action(action: str, experiment_id: int, server: str, token: str | None) -> None:
    with connected(server, token) as client:
        change = {
            "pause": client.pause_experiment,
            "resume": client.resume_experiment,
            "cancel": client.cancel_experiment,
        }
        body = change[action](experiment_id)
    grids = ", ".join(f"{s.optimizer} {s.state}" for s in body.studies)
    _say(
        f"experiment {body.id} ({body.name}) {ACTIONS[action]}: now {body.state}; "
        f"grids: {grids or 'none'}"
    )


@experiment_app.command("pause")
def experiment_pause(experiment_id: int = ID, server: str = SERVER, token: str = TOKEN) -> None:
    """Pause every running grid of a running experiment (leased trials may finish)."""
    _experiment_action("pause", experiment_id, server, token)


@experiment_app.command("resume")
def experiment_resume(experiment_id: int = ID, server: str = SERVER, token: str = TOKEN) -> None:
    """Hand out the trials of a paused experiment's grids again."""
    _experiment_action("resume", experiment_id, server, token)


@experiment_app.command("cancel")
def experiment_cancel(experiment_id: int = ID, server: str = SERVER, token: str = TOKEN) -> None:
    """Cancel every unfinished grid of an experiment for good; it then has no report."""
    _experiment_action("cancel", experiment_id, server, token)


@experiment_app.command("delete")
def experiment_delete(
    experiment_id: int = ID, server: str = SERVER, token: str = TOKEN, yes: bool = YES
) -> None:
    """Delete an experiment with its grid studies, their trials and its report."""
    with connected(server, token) as client:
        body = client.experiment(experiment_id)
        if not yes:
            _confirm(
                f"Delete experiment {experiment_id} ({body.name}) with its "
                f"{len(body.studies)} grid studies, their trials and its report?"
            )
        client.delete_experiment(experiment_id)
    _say(f"experiment {experiment_id} ({body.name}) deleted")
