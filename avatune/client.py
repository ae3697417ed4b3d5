"""avatune's Python client: studies and experiments on a running server, over HTTP.

    from avatune.client import Client

    with Client("http://127.0.0.1:8000", token=None) as client:
        study = client.create_study("study.yaml")
        client.run_trials(study, lambda trial: train(trial.alpha, trial.eps))
        print(client.wait(study).best)

Every method takes a record (`StudyOut`, `ExperimentOut`) or its id, and returns the
API's own models (`studies.schemas`). Errors are `avatune.errors.AvatuneError`s with a
readable message: `ServerUnreachable`, `NotAvatuneServer`, and `ApiError` subclasses
(`NotFound`, `Conflict`, `Unauthorized`, `InvalidRequest`) for the server's refusals; a
spec that is not valid is refused before any request (`studies.spec_errors.SpecError`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from pydantic import BaseModel

from avatune.api import Api
from avatune.errors import (
    ApiError,
    AvatuneError,
    Conflict,
    InvalidRequest,
    NotAvatuneServer,
    NotFound,
    ReportNotReady,
    ServerUnreachable,
    TrialSettled,
    Unauthorized,
    WaitTimeout,
    WrongStudy,
)
from avatune.frames import trials_frame
from avatune.lease_client import Backoff, ServiceClient
from avatune.spec_input import SpecInput, SpecKindError, as_kind, as_spec
from avatune.user_loop import Result, RunSummary, Terminated, TrialHandle, TrialStream, log
from avatune.user_loop import run_trials as _run_trials
from avatune.waiting import wait_experiment, wait_study
from studies.schemas import (
    DiagnosticsPage,
    ExperimentOut,
    ExperimentReport,
    Health,
    StudyOut,
    TrainingDiagnostics,
    TrialOut,
    TrialPage,
    WorkerOut,
)
from studies.server_url import DEFAULT_SERVER
from studies.specs import ExperimentSpec, StudySpec
from studies.table import GridTable

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "ApiError",
    "AvatuneError",
    "Backoff",
    "Client",
    "Conflict",
    "InvalidRequest",
    "NotAvatuneServer",
    "NotFound",
    "RepeatAsk",
    "ReportNotReady",
    "Result",
    "RunSummary",
    "ServerUnreachable",
    "SpecKindError",
    "StudyExport",
    "Terminated",
    "TrialHandle",
    "TrialSettled",
    "TrialStream",
    "Unauthorized",
    "WaitTimeout",
    "WrongStudy",
]

StudyRef = StudyOut | int
ExperimentRef = ExperimentOut | int
#: Trials one page of /api/studies/{id}/trials may hold (the route's limit).
PAGE = 5000


class RepeatAsk(BaseModel):
    """A tuner's repeat ask of a point: answered from the training `training_id`."""

    number: int
    training_id: int
    state: str


class StudyExport(BaseModel):
    """A study's JSON export: the study, every training (curves included), every repeat."""

    study: StudyOut
    trainings: list[TrialOut]
    repeats: list[RepeatAsk]


def _study_id(study: StudyRef) -> int:
    return study.id if isinstance(study, StudyOut) else _positive(study, "study")


def _experiment_id(experiment: ExperimentRef) -> int:
    if isinstance(experiment, ExperimentOut):
        return experiment.id
    return _positive(experiment, "experiment")


def _positive(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"a {what} is its record or its id (an int), got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"a {what} id is at least 1, got {value}")
    return value


class Client:
    """The API of one avatune server.

    `url` is the server's URL as `avatune serve` prints it (default: $AVATUNE_SERVER, else
    http://127.0.0.1:8000; ValueError with the fix when malformed); `token` the server's
    bearer token (default: $AVATUNE_TOKEN), needed for changes when the server has one.
    `backoff` paces the retries of the user loop (`run_trials`, `trials`) while the
    server is unreachable.
    """

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        timeout: float = 60.0,
        backoff: Backoff | None = None,
    ) -> None:
        if url is None:
            url = os.environ.get("AVATUNE_SERVER") or DEFAULT_SERVER
        token = token if token is not None else os.environ.get("AVATUNE_TOKEN") or None
        self._api = Api(url, token, timeout=timeout)
        #: The normalised server URL.
        self.url: str = self._api.url
        self.backoff = backoff or Backoff(first=0.5, factor=2.0, cap=10.0)
        self._timeout = timeout

    def close(self) -> None:
        """Close the connection pool."""
        self._api.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client({self.url!r})"

    # ---- the server ------------------------------------------------------------------

    def health(self) -> Health:
        """Whether the server runs and reaches its database."""
        return self._api.get("/healthz", Health)

    def workers(self) -> list[WorkerOut]:
        """Workers the server knows, most recently seen first (user loops among them)."""
        return self._api.get("/api/workers", list[WorkerOut])

    # ---- studies ---------------------------------------------------------------------

    def create(self, spec: SpecInput) -> StudyOut | ExperimentOut:
        """Submit a study or an experiment, whichever `spec` is."""
        found = as_spec(spec)
        if isinstance(found, ExperimentSpec):
            return self.create_experiment(found)
        return self.create_study(found)

    def create_study(self, spec: StudySpec | SpecInput) -> StudyOut:
        """Submit a study (a `StudySpec`, its mapping, or a YAML/JSON file's path)."""
        return self._api.post("/api/studies", StudyOut, as_kind(spec, StudySpec))

    def study(self, study: StudyRef) -> StudyOut:
        """A study's current record: state, progress, best value."""
        return self._api.get(f"/api/studies/{_study_id(study)}", StudyOut)

    def studies(
        self, *, state: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[StudyOut]:
        """Studies, newest first (`state`: only those in it, e.g. "running")."""
        return self._api.get(
            "/api/studies", list[StudyOut], state=state, limit=limit, offset=offset
        )

    def pause_study(self, study: StudyRef) -> StudyOut:
        """Stop handing out the study's trials (leased ones may finish)."""
        return self._api.post(f"/api/studies/{_study_id(study)}/pause", StudyOut)

    def resume_study(self, study: StudyRef) -> StudyOut:
        """Hand out a paused study's trials again."""
        return self._api.post(f"/api/studies/{_study_id(study)}/resume", StudyOut)

    def cancel_study(self, study: StudyRef) -> StudyOut:
        """Drop the study's queued trials for good (leased ones may still report)."""
        return self._api.post(f"/api/studies/{_study_id(study)}/cancel", StudyOut)

    def delete_study(self, study: StudyRef) -> None:
        """Delete a study and its trials (an experiment's grid goes with its experiment)."""
        self._api.delete(f"/api/studies/{_study_id(study)}")

    def study_trials(
        self,
        study: StudyRef,
        *,
        states: Sequence[str] = (),
        repeats: bool = False,
        curves: bool = False,
    ) -> list[TrialOut]:
        """The study's trainings in number order, every page of them (`states`: only
        those, e.g. ("complete", "diverged"); `repeats`: the tuner's repeat asks too;
        `curves`: with learning curves)."""
        path = f"/api/studies/{_study_id(study)}/trials"
        out: list[TrialOut] = []
        after: int | None = None
        while True:
            page = self._api.get(
                path,
                TrialPage,
                state=list(states) or None,
                after=after,
                limit=PAGE,
                curves=curves or None,
                repeats=repeats or None,
            )
            out += page.trials
            if page.next_after is None or not page.trials:
                return out
            after = page.next_after

    def trials_frame(
        self,
        study: StudyRef,
        *,
        states: Sequence[str] = (),
        repeats: bool = False,
        curves: bool = False,
    ) -> pd.DataFrame:
        """`study_trials` as a pandas DataFrame, one row per trial (``avatune[pandas]``)."""
        return trials_frame(self.study_trials(study, states=states, repeats=repeats, curves=curves))

    def diagnostics(self, study: StudyRef) -> list[TrainingDiagnostics]:
        """AvaGrad-family mechanism diagnostics of each training that recorded them
        (opt-in: `fidelity.diagnostics_every`), every page of them."""
        path = f"/api/studies/{_study_id(study)}/diagnostics"
        out: list[TrainingDiagnostics] = []
        after: int | None = None
        while True:
            page = self._api.get(path, DiagnosticsPage, after=after, limit=500)
            out += page.trainings
            if page.next_after is None or not page.trainings:
                return out
            after = page.next_after

    def export(self, study: StudyRef) -> StudyExport:
        """The study's JSON export: the study, its trainings with curves, its repeats."""
        return self._api.get(f"/api/studies/{_study_id(study)}/export.json", StudyExport)

    def export_csv(self, study: StudyRef) -> str:
        """The study's trainings as CSV text (one row per training, no curves)."""
        return self._api.request("GET", f"/api/studies/{_study_id(study)}/export.csv").text

    # ---- experiments -----------------------------------------------------------------

    def create_experiment(self, spec: ExperimentSpec | SpecInput) -> ExperimentOut:
        """Submit an experiment: a full grid study per optimizer, queued at once."""
        return self._api.post("/api/experiments", ExperimentOut, as_kind(spec, ExperimentSpec))

    def experiment(self, experiment: ExperimentRef) -> ExperimentOut:
        """An experiment and the progress of its grid studies."""
        return self._api.get(f"/api/experiments/{_experiment_id(experiment)}", ExperimentOut)

    def experiments(self, *, limit: int = 100) -> list[ExperimentOut]:
        """Experiments, newest first."""
        return self._api.get("/api/experiments", list[ExperimentOut], limit=limit)

    def pause_experiment(self, experiment: ExperimentRef) -> ExperimentOut:
        """Pause every running grid of a running experiment."""
        return self._experiment_action(experiment, "pause")

    def resume_experiment(self, experiment: ExperimentRef) -> ExperimentOut:
        """Hand out the trials of a paused experiment's grids again."""
        return self._experiment_action(experiment, "resume")

    def cancel_experiment(self, experiment: ExperimentRef) -> ExperimentOut:
        """Cancel every unfinished grid for good; the experiment then has no report."""
        return self._experiment_action(experiment, "cancel")

    def _experiment_action(self, experiment: ExperimentRef, action: str) -> ExperimentOut:
        path = f"/api/experiments/{_experiment_id(experiment)}/{action}"
        return self._api.post(path, ExperimentOut)

    def delete_experiment(self, experiment: ExperimentRef) -> None:
        """Delete an experiment with its grid studies, their trials and its report."""
        self._api.delete(f"/api/experiments/{_experiment_id(experiment)}")

    def report(
        self,
        experiment: ExperimentRef,
        *,
        wait: bool = True,
        timeout: float | None = None,
        interval: float = 1.0,
    ) -> ExperimentReport:
        """The experiment's separability report and grid tables. The server computes it
        when first asked, once the grids are complete: `wait` polls until it is stored
        (WaitTimeout after `timeout` s); without, `ReportNotReady` while it is computed.
        `Conflict` while the grids are incomplete or when the experiment was cancelled."""
        path = f"/api/experiments/{_experiment_id(experiment)}/report"
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            response = self._api.request("GET", path)
            if response.status_code != 202:
                return ExperimentReport.model_validate_json(response.content)
            detail = response.json().get("detail", "the report is being computed")
            if not wait:
                raise ReportNotReady(detail)
            if deadline is not None and time.monotonic() >= deadline:
                raise WaitTimeout(f"the report is not ready after {timeout:g} s: {detail}")
            time.sleep(interval)

    def tables(self, experiment: ExperimentRef) -> list[GridTable]:
        """The experiment's complete grids (every seed), one per optimizer, without
        computing the report; `Conflict` while one is incomplete."""
        path = f"/api/experiments/{_experiment_id(experiment)}/tables"
        return self._api.get(path, list[GridTable])

    # ---- waiting ---------------------------------------------------------------------

    def wait(
        self,
        target: StudyOut | ExperimentOut | int,
        *,
        timeout: float | None = None,
        progress: bool = True,
        interval: float = 1.0,
        report: bool = True,
    ) -> StudyOut | ExperimentOut:
        """Poll a study (a record or its id) until it is done, failed or cancelled, or an
        experiment (its record; by id: `wait_experiment`) until it is cancelled or done
        with its report stored (`report=False`: until its grids finish). A progress bar
        (trainings done of budget) on stderr unless `progress=False`; the final record;
        WaitTimeout after `timeout` seconds."""
        if isinstance(target, ExperimentOut):
            return self.wait_experiment(
                target, timeout=timeout, progress=progress, interval=interval, report=report
            )
        return self.wait_study(target, timeout=timeout, progress=progress, interval=interval)

    def wait_study(
        self,
        study: StudyRef,
        *,
        timeout: float | None = None,
        progress: bool = True,
        interval: float = 1.0,
    ) -> StudyOut:
        """`wait` for a study."""
        return wait_study(
            self, _study_id(study), timeout=timeout, progress=progress, interval=interval
        )

    def wait_experiment(
        self,
        experiment: ExperimentRef,
        *,
        timeout: float | None = None,
        progress: bool = True,
        interval: float = 1.0,
        report: bool = True,
    ) -> ExperimentOut:
        """`wait` for an experiment."""
        return wait_experiment(
            self,
            _experiment_id(experiment),
            timeout=timeout,
            progress=progress,
            interval=interval,
            report=report,
        )

    # ---- your own training loop as a worker ------------------------------------------

    def trials(
        self,
        study: StudyRef,
        *,
        max_trials: int | None = None,
        worker_id: str | None = None,
        signals: bool = True,
    ) -> TrialStream:
        """Lease the study's trials one at a time, for a loop of your own::

            for trial in client.trials(study):
                trial.report(train(trial.alpha, trial.eps))

        Each `TrialHandle` is heartbeated in the background until it is reported,
        failed or released; one left unsettled (the body ends, `break`, an exception,
        SIGTERM, Ctrl-C) is handed back without using an attempt. Ends when the study is
        finished, or after `max_trials` trials. `signals`: on the main thread, SIGTERM
        raises `Terminated` (SystemExit 143) for the time of the loop.
        """
        return TrialStream(
            self, _study_id(study), max_trials=max_trials, worker_id=worker_id, signals=signals
        )

    def run_trials(
        self,
        study: StudyRef,
        train_fn: Callable[[TrialHandle], float | Result | None],
        *,
        max_trials: int | None = None,
        stop_on_error: bool = False,
        worker_id: str | None = None,
        signals: bool = True,
    ) -> RunSummary:
        """Train the study's trials one at a time with `train_fn(trial)`, which returns
        the objective (a number; lower is better) or a `Result`, until the study is
        finished or `max_trials` trials ran. An exception in `train_fn` is reported as
        the trial's failure with its traceback, and the loop goes on (`stop_on_error`:
        raised after reporting). SIGTERM and Ctrl-C hand the trial back and stop (as in
        `trials`). What happened: the `RunSummary`."""
        stream = self.trials(study, max_trials=max_trials, worker_id=worker_id, signals=signals)
        return _run_trials(stream, train_fn, stop_on_error=stop_on_error)

    def _service_client(self) -> ServiceClient:
        """A lease-protocol client of this server (its own connection pool)."""
        return ServiceClient(
            self.url,
            self._api.token,
            timeout=min(self._timeout, 30.0),
            backoff=self.backoff,
            on_retry=_log_retry,
        )


def _log_retry(reason: str, delay: float) -> None:
    log.warning("server unreachable (%s); retrying in %.1f s", reason, delay)
