"""What happens when trials end: duplicates take their original's result, the best value
moves, and a study (and its experiment) finishes when nothing is left to run."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, exists, or_, select, update

from service.db import lock
from service.models import (
    PENDING_STATES,
    SEED_COLUMNS,
    VALUED_STATES,
    Experiment,
    Study,
    StudyState,
    Trial,
    TrialState,
)

log = logging.getLogger("avatune.lifecycle")
ACTIVE_STUDY_STATES = (StudyState.running, StudyState.paused)
FINISHED_STUDY_STATES = (StudyState.done, StudyState.failed, StudyState.cancelled)


_NOW = bindparam("now")
_MIRROR = (
    update(Trial)
    .where(Trial.source_trial_id == bindparam("original"), Trial.state == TrialState.waiting)
    .values(
        state=bindparam("state"),
        value=bindparam("value"),
        test_value=bindparam("test_value"),
        diverged=bindparam("diverged"),
        error=bindparam("error"),
        finished_at=_NOW,
        **{name: bindparam(name) for name in SEED_COLUMNS},
    )
)
_BEST = (
    update(Study)
    .where(
        Study.id == bindparam("sid"),
        or_(Study.best_value.is_(None), Study.best_value > bindparam("value")),
    )
    .values(best_value=bindparam("value"), best_trial_id=bindparam("tid"))
)
_STUDY = select(
    Study.state,
    Study.tuner,
    Study.budget,
    Study.n_trained,
    Study.stop_reason,
    Study.experiment_id,
).where(Study.id == bindparam("sid"))
_PENDING = select(
    exists().where(Trial.study_id == bindparam("sid"), Trial.state.in_(PENDING_STATES))
)
_VALUED = select(exists().where(Trial.study_id == bindparam("sid"), Trial.state.in_(VALUED_STATES)))
# On PostgreSQL two transactions finishing a study's last two trials would each see the
# other's trial still pending (write skew) and neither would finish the study: the study
# row is locked first, so the second one looks after the first has committed.
_LOCK_STUDY = select(Study.id).where(Study.id == bindparam("sid"))
_LOCK_EXPERIMENT = select(Experiment.id).where(Experiment.id == bindparam("eid"))
_FINISH_STUDY = (
    update(Study)
    .where(Study.id == bindparam("sid"), Study.state.in_(ACTIVE_STUDY_STATES))
    .values(state=bindparam("state"), finished_at=_NOW, updated_at=_NOW)
)


def mirror(
    conn: Connection,
    original_id: int,
    now: datetime,
    *,
    state: str,
    value: float | None = None,
    test_value: float | None = None,
    diverged: bool = False,
    error: str | None = None,
    seeds: dict[str, Any] | None = None,
) -> None:
    """Give the outcome of trial `original_id` (with its `SEED_COLUMNS`) to the trials
    waiting on it."""
    conn.execute(
        _MIRROR,
        {
            "original": original_id,
            "state": state,
            "value": value,
            "test_value": test_value,
            "diverged": diverged,
            "error": error,
            "now": now,
            **dict.fromkeys(SEED_COLUMNS),
            **(seeds or {}),
        },
    )


def record_best(conn: Connection, study_id: int, trial_id: int, value: float) -> None:
    """Make `value` the study's best when it is lower than the best so far."""
    conn.execute(_BEST, {"sid": study_id, "tid": trial_id, "value": value})


def settle(conn: Connection, study_id: int, now: datetime) -> str | None:
    """Finish the study when no trial is pending and the tuner has nothing left to ask.

    Returns the new state (done, or failed when no trial produced a value), else None.
    """
    lock(conn, _LOCK_STUDY, {"sid": study_id})
    if conn.execute(_PENDING, {"sid": study_id}).scalar():
        return None
    study = conn.execute(_STUDY, {"sid": study_id}).one_or_none()
    if study is None or study.state not in ACTIVE_STUDY_STATES:
        return None
    if study.tuner != "grid" and study.n_trained < study.budget and study.stop_reason is None:
        return None
    valued = conn.execute(_VALUED, {"sid": study_id}).scalar()
    state = StudyState.done if valued else StudyState.failed
    finished = conn.execute(_FINISH_STUDY, {"sid": study_id, "state": state, "now": now})
    if finished.rowcount:
        log.info(
            "study %d finished: %s (%s, %d trials)",
            study_id,
            state.value,
            study.tuner,
            study.n_trained,
            extra={"study": study_id, "state": state.value, "experiment": study.experiment_id},
        )
    if study.experiment_id is not None:
        settle_experiment(conn, study.experiment_id)
    return state


def settle_experiment(conn: Connection, experiment_id: int) -> None:
    """Finish an experiment once every one of its studies has: cancelled when one of its
    grids was cancelled (that grid stays incomplete, so there is no report), else done."""
    lock(conn, _LOCK_EXPERIMENT, {"eid": experiment_id})
    unfinished = conn.execute(
        select(
            exists().where(
                Study.experiment_id == experiment_id, Study.state.not_in(FINISHED_STUDY_STATES)
            )
        )
    ).scalar()
    if not unfinished:
        cancelled = conn.execute(
            select(
                exists().where(
                    Study.experiment_id == experiment_id, Study.state == StudyState.cancelled
                )
            )
        ).scalar()
        state = StudyState.cancelled if cancelled else StudyState.done
        finished = conn.execute(
            update(Experiment)
            .where(Experiment.id == experiment_id, Experiment.state.in_(ACTIVE_STUDY_STATES))
            .values(state=state)
        )
        if finished.rowcount:
            log.info(
                "experiment %d finished: %s",
                experiment_id,
                state.value,
                extra={"experiment": experiment_id, "state": state.value},
            )
