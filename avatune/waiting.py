"""Waiting for a study or an experiment to finish, with a progress bar (trainings done of
budget) on stderr.

A study is finished when it is done, failed or cancelled; an experiment when it is
cancelled, or done and (unless `report=False`) its report is stored: the server computes
the report when first asked for it, so waiting asks for it once the grids are complete.
While the server is unreachable (e.g. restarting) the wait keeps polling.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, TypeVar

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from avatune.errors import ReportNotReady, ServerUnreachable, WaitTimeout
from studies.schemas import ExperimentOut, StudyOut

if TYPE_CHECKING:
    from avatune.client import Client

FINISHED_STUDY = ("done", "failed", "cancelled")
FINISHED_EXPERIMENT = ("done", "cancelled")
R = TypeVar("R", StudyOut, ExperimentOut)
#: Called with (description, done, total) after each poll.
Show = Callable[[str, int, int], None]


@contextmanager
def _bar(enabled: bool) -> Iterator[Show]:
    """A one-bar rich progress display (nothing when not `enabled`)."""
    if not enabled:
        yield lambda description, done, total: None
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("trainings"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=Console(stderr=True)) as progress:
        task = progress.add_task("", total=None)

        def show(description: str, done: int, total: int) -> None:
            progress.update(task, description=description, completed=done, total=total or None)

        yield show


def _poll(
    fetch: Callable[[], R],
    finished: Callable[[R], bool],
    describe: Callable[[R], tuple[str, int, int]],
    *,
    timeout: float | None,
    progress: bool,
    interval: float,
    what: str,
) -> R:
    """Fetch until `finished`; WaitTimeout after `timeout` seconds (None: no limit)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    record = fetch()  # errors here (no such id, wrong server) are the caller's to see
    with _bar(progress) as show:
        while True:
            show(*describe(record))
            if finished(record):
                return record
            if deadline is not None and time.monotonic() >= deadline:
                raise WaitTimeout(f"{what} not finished after {timeout:g} s", last=record)
            wait = interval if deadline is None else min(interval, deadline - time.monotonic())
            time.sleep(max(0.0, wait))
            try:
                record = fetch()
            except ServerUnreachable:
                description, done, total = describe(record)
                show(f"{description} (server unreachable: retrying)", done, total)


def wait_study(
    client: Client,
    study_id: int,
    *,
    timeout: float | None = None,
    progress: bool = True,
    interval: float = 1.0,
) -> StudyOut:
    """Poll the study until it is done, failed or cancelled; its final record."""

    def describe(study: StudyOut) -> tuple[str, int, int]:
        return f"study {study.id} ({study.name}): {study.state}", study.trainings_done, study.budget

    return _poll(
        lambda: client.study(study_id),
        lambda study: study.state in FINISHED_STUDY,
        describe,
        timeout=timeout,
        progress=progress,
        interval=interval,
        what=f"study {study_id}",
    )


def wait_experiment(
    client: Client,
    experiment_id: int,
    *,
    timeout: float | None = None,
    progress: bool = True,
    interval: float = 1.0,
    report: bool = True,
) -> ExperimentOut:
    """Poll the experiment until it is cancelled, or done with its report stored (asking
    for the report starts its computation); with `report=False`, until its grids finish."""

    def finished(experiment: ExperimentOut) -> bool:
        if experiment.state == "cancelled" or not report:
            return experiment.state in FINISHED_EXPERIMENT
        if experiment.state != "done":
            return False
        if not experiment.report_ready:
            try:
                client.report(experiment_id, wait=False)  # 409/503 say why there is none
            except ReportNotReady:
                return False
        return True

    def describe(experiment: ExperimentOut) -> tuple[str, int, int]:
        done = sum(s.trainings_done for s in experiment.studies)
        total = sum(s.budget for s in experiment.studies)
        state = experiment.state
        if state == "done" and report and not experiment.report_ready:
            state = "computing the report"
        return f"experiment {experiment.id} ({experiment.name}): {state}", done, total

    last = _poll(
        lambda: client.experiment(experiment_id),
        finished,
        describe,
        timeout=timeout,
        progress=progress,
        interval=interval,
        what=f"experiment {experiment_id}",
    )
    return client.experiment(experiment_id) if report and not last.report_ready else last
