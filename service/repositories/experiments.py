"""Experiments: one grid study per optimizer, their progress, grid tables and stored report."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, delete, select, update

from service import lifecycle
from service.db import lock
from service.errors import Conflict, Invalid, NotFound
from service.models import (
    SEED_COLUMNS,
    VALUED_STATES,
    Experiment,
    Study,
    StudyState,
    Trial,
    TrialState,
)
from service.repositories.studies import create_study, delete_study, list_studies
from studies.schemas import ExperimentOut
from studies.specs import ExperimentSpec, StudySpec, unknown_names
from studies.table import GridTable

log = logging.getLogger("avatune.experiments")


def create_experiment(conn: Connection, spec: ExperimentSpec, now: datetime) -> int:
    """Insert an experiment and queue one full grid study per optimizer (ValueError, a 422,
    when a plain task or optimizer name names nothing installed here)."""
    issues = unknown_names(spec)
    if issues:
        raise ValueError("; ".join(str(issue) for issue in issues))
    experiment_id = conn.execute(
        Experiment.__table__.insert()
        .values(
            name=spec.name,
            state=StudyState.running,
            task=spec.task.name,
            spec=spec.model_dump(mode="json"),
            created_at=now,
        )
        .returning(Experiment.id)
    ).scalar_one()
    ids = [
        create_study(conn, study, now, experiment_id=experiment_id) for study in spec.study_specs()
    ]
    log.info(
        "experiment %d created: %r on %s, grid studies %s",
        experiment_id,
        spec.name,
        spec.task.name,
        ids,
        extra={"experiment": experiment_id, "task": spec.task.name, "studies": ids},
    )
    return experiment_id


def _row(conn: Connection, experiment_id: int) -> Row:
    row = conn.execute(select(Experiment).where(Experiment.id == experiment_id)).first()
    if row is None:
        raise NotFound(f"experiment {experiment_id} does not exist")
    return row


def get_experiment(conn: Connection, experiment_id: int) -> ExperimentOut:
    """An experiment with its studies' progress."""
    row = _row(conn, experiment_id)
    studies = list_studies(conn, experiment_id=experiment_id, limit=1000)
    budget = sum(s.budget for s in studies)
    finished = sum(s.trainings_done for s in studies)
    return ExperimentOut(
        id=row.id,
        name=row.name,
        state=row.state,
        task=row.task,
        progress=finished / budget if budget else 1.0,
        studies=studies,
        report_ready=row.report is not None,
        created_at=row.created_at,
        spec=ExperimentSpec.model_validate(row.spec),
    )


def list_experiments(conn: Connection, *, limit: int = 100) -> list[ExperimentOut]:
    """Experiments, newest first."""
    ids = conn.execute(select(Experiment.id).order_by(Experiment.id.desc()).limit(limit)).scalars()
    return [get_experiment(conn, i) for i in ids]


def grid_tables(conn: Connection, experiment_id: int) -> list[GridTable]:
    """The complete grid of every study of the experiment (format avatune-grid/2, with each
    trial's seeds); `Conflict` while one is missing."""
    row = _row(conn, experiment_id)
    if row.state == StudyState.cancelled:
        raise Conflict(
            f"experiment {experiment_id} was cancelled before its grids were complete, so it "
            "has no report; submit it again to get one"
        )
    studies = conn.execute(
        select(Study.id, Study.spec, Study.state)
        .where(Study.experiment_id == experiment_id)
        .order_by(Study.id)
    ).all()
    spec = ExperimentSpec.model_validate(row.spec)
    return [_grid_table(conn, spec, study) for study in studies]


_GRID_TRIALS = select(
    Trial.i_alpha,
    Trial.j_eps,
    Trial.value,
    Trial.test_value,
    Trial.diverged,
    *(Trial.__table__.c[name] for name in SEED_COLUMNS),
)


def _grid_table(conn: Connection, spec: ExperimentSpec, study: Row) -> GridTable:
    """One study's grid from its trials' per-seed values; S = 1 from `value` unless every
    trial has the same number of seeds."""
    study_spec = StudySpec.model_validate(study.spec)
    alphas, epsilons = study_spec.space.grid_axes()
    if not study_spec.searches_eps:  # an α line (sgd): one column, at the first ε
        epsilons = epsilons[:1]
    cells: dict[tuple[int, int], Row] = {}
    for t in conn.execute(
        _GRID_TRIALS.where(
            Trial.study_id == study.id,
            Trial.state.in_(VALUED_STATES),
            Trial.source_trial_id.is_(None),
        )
    ).all():
        cells[t.i_alpha, t.j_eps] = t
    missing = len(alphas) * len(epsilons) - len(cells)
    if missing:
        raise Conflict(
            f"the grid of study {study.id} ({study_spec.optimizer.name}) lacks {missing} "
            f"of {len(alphas) * len(epsilons)} points ({study.state}); the report comes "
            "once every grid is complete"
        )
    trials = list(cells.values())
    counts = {None if t.seed_values is None else len(t.seed_values) for t in trials}
    per_seed = None not in counts and len(counts) == 1

    def seeds_of(t: Row) -> tuple[list[float], list[float] | None, list[bool]]:
        if per_seed:
            flags = t.seed_diverged or [False] * len(t.seed_values)  # none: no seed diverged
            return t.seed_values, t.seed_test_values, flags
        tests = None if t.test_value is None else [t.test_value]
        return [t.value], tests, [t.diverged]

    grid = [[seeds_of(cells[i, j]) for j in range(len(epsilons))] for i in range(len(alphas))]
    n_seeds = len(grid[0][0][0])

    def stack(k: int) -> list[list[list[Any]]]:
        return [[[cell[k][s] for cell in r] for r in grid] for s in range(n_seeds)]

    full_test = all(cell[1] is not None for r in grid for cell in r)
    return GridTable.from_seeds(
        error_seeds=stack(0),
        diverged_seeds=stack(2),
        test_error_seeds=stack(1) if full_test else None,
        chance=_chance(trials, per_seed),
        task=spec.task.name,
        optimizer=study_spec.optimizer.name,
        fidelity=spec.fidelity.model_dump(),
        settings=study_spec.optimizer.train_settings(),
        alphas=alphas,
        epsilons=epsilons,
    )


def _chance(trials: list[Row], per_seed: bool) -> float | None:
    """The task's chance level as the workers reported it; else the highest value of a
    diverged seed (or, without per-seed values, of a diverged trial); else unknown."""
    reported = [t.chance for t in trials if t.chance is not None]
    if reported:
        return max(reported)
    if per_seed:
        diverged = [
            v
            for t in trials
            if t.seed_diverged is not None
            for v, d in zip(t.seed_values, t.seed_diverged, strict=True)
            if d
        ]
    else:
        diverged = [t.value for t in trials if t.diverged]
    return max(diverged, default=None)


def stored_report(conn: Connection, experiment_id: int) -> tuple[dict[str, Any], datetime] | None:
    """The report computed earlier, if any."""
    row = _row(conn, experiment_id)
    return None if row.report is None else (row.report, row.report_at)


def store_report(
    conn: Connection, experiment_id: int, report: dict[str, Any], now: datetime
) -> None:
    """Keep a computed report."""
    conn.execute(
        update(Experiment)
        .where(Experiment.id == experiment_id)
        .values(report=report, report_at=now, state=StudyState.done)
    )


#: action → (experiment states that allow it, the state it leads to, the study states it
#: changes): an experiment's grids move together; finished grids stay as they are.
_TRANSITIONS: dict[str, tuple[tuple[str, ...], str, tuple[str, ...]]] = {
    "pause": ((StudyState.running,), StudyState.paused, (StudyState.running,)),
    "resume": ((StudyState.paused,), StudyState.running, (StudyState.paused,)),
    "cancel": (
        (StudyState.running, StudyState.paused),
        StudyState.cancelled,
        (StudyState.running, StudyState.paused),
    ),
}
_ALLOWED = {
    "pause": "only a running experiment can be paused",
    "resume": "only a paused experiment can be resumed",
    "cancel": "only a running or paused experiment can be cancelled",
}


def change_state(conn: Connection, experiment_id: int, action: str, now: datetime) -> None:
    """Pause, resume or cancel an experiment and its unfinished grid studies, in one
    transaction; `Conflict` when the experiment's state does not allow it.

    Cancelling drops the queued trials of its grids (leased ones may still report); the
    experiment is then `cancelled` and has no report.
    """
    if action not in _TRANSITIONS:
        raise Invalid(f"unknown action {action!r}; use pause, resume or cancel")
    allowed, target, moved = _TRANSITIONS[action]
    studies = select(Study.id).where(Study.experiment_id == experiment_id).order_by(Study.id)
    # the order lifecycle.settle takes them in (study, then experiment): no deadlock
    lock(conn, studies)
    lock(conn, select(Experiment.id).where(Experiment.id == experiment_id))
    row = _row(conn, experiment_id)
    if row.state not in allowed:
        raise Conflict(
            f"cannot {action} experiment {experiment_id}: it is {row.state} ({_ALLOWED[action]})"
        )
    ids = conn.execute(studies.where(Study.state.in_(moved)).order_by(None)).scalars().all()
    values: dict[str, Any] = dict(state=target, updated_at=now)
    if target == StudyState.cancelled:
        values["finished_at"] = now
    if ids:
        conn.execute(update(Study).where(Study.id.in_(ids)).values(**values))
    if target == StudyState.cancelled and ids:
        conn.execute(
            update(Trial)
            .where(
                Trial.study_id.in_(ids),
                Trial.state.in_((TrialState.queued, TrialState.waiting)),
            )
            .values(state=TrialState.cancelled, finished_at=now)
        )
    conn.execute(update(Experiment).where(Experiment.id == experiment_id).values(state=target))
    log.info(
        "experiment %d %s (grid studies %s)",
        experiment_id,
        {"pause": "paused", "resume": "resumed", "cancel": "cancelled"}[action],
        list(ids),
        extra={"experiment": experiment_id, "state": str(target), "studies": list(ids)},
    )
    if target == StudyState.running:  # grids resumed one by one may all have finished
        lifecycle.settle_experiment(conn, experiment_id)


def delete_experiment(conn: Connection, experiment_id: int) -> None:
    """Delete an experiment, its studies and their trials."""
    _row(conn, experiment_id)
    for study_id in (
        conn.execute(select(Study.id).where(Study.experiment_id == experiment_id)).scalars().all()
    ):
        delete_study(conn, study_id, force=True)
    conn.execute(delete(Experiment).where(Experiment.id == experiment_id))
    log.info("experiment %d deleted", experiment_id, extra={"experiment": experiment_id})
