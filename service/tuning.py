"""The tuner of a study, run on the server: rebuilt from the database on every ask.

Tuner state never lives only in process memory. On each ask an in-memory Optuna study is
rebuilt from the study's trials as stored (params, values, states and the samplers'
system attrs, where GLD and CMA-ES keep their state), the sampler is recreated from the
study's seed and the number of trials so far, and `study.ask()` proposes the next
points. A restarted server, or a second API process, therefore continues the same run.
Asks for one study are serialised by the caller's lock on the study row (PostgreSQL
``SELECT … FOR UPDATE``; SQLite's ``BEGIN IMMEDIATE`` already serialises writers).

A proposal of a point the study already evaluated becomes a repeat that copies the stored
result (no training); one of a point still being trained becomes a `waiting` repeat that
takes the original's result when it arrives. Only new points are trainings (numbered in
`Trial.training`).

Feedback by design: a study never has more unfinished proposals (queued, leased, waiting)
than its tuner's in-flight limit (studies.tuners.inflight), and GLD begins no iteration
while the last one is unfinished; the replay simulates the same limit.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState as OptunaState
from optuna.trial import create_trial
from sqlalchemy import Connection, bindparam, insert, select, update

from service.models import PENDING_STATES, SEED_COLUMNS, VALUED_STATES, Study, Trial, TrialState
from studies.specs import StudySpec
from studies.tuners import make_sampler
from studies.tuners.domain import Domain
from studies.tuners.inflight import InFlightLimit, in_flight_limit, iteration_end

optuna.logging.set_verbosity(optuna.logging.WARNING)
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)

#: A tuner that has asked this many times the grid size (or budget) without finishing its
#: budget has stopped proposing new points (ALGORITHMS.md: censored).
ASK_CAP_FACTOR = 20
#: Asks per lease call before giving up for now (duplicates do not train).
ASKS_PER_CALL = 200
STOPPED = "the tuner stopped proposing new points"

_OPTUNA_STATE = {
    TrialState.complete: OptunaState.COMPLETE,
    TrialState.diverged: OptunaState.COMPLETE,
    TrialState.failed: OptunaState.FAIL,
    TrialState.cancelled: OptunaState.FAIL,
    TrialState.queued: OptunaState.RUNNING,
    TrialState.leased: OptunaState.RUNNING,
    TrialState.waiting: OptunaState.RUNNING,
}


def distributions(spec: StudySpec) -> dict[str, BaseDistribution]:
    """The Optuna search space of a study: grid indices, or log10 α and ε."""
    space = spec.space
    names = space.param_names()
    if space.is_grid:
        shape = space.grid_shape
        assert shape is not None
        dists: dict[str, BaseDistribution] = {
            name: IntDistribution(0, n - 1) for name, n in zip(names, shape, strict=True)
        }
    else:
        bounds = space.log10_bounds()
        dists = {name: FloatDistribution(*b) for name, b in zip(names, bounds, strict=True)}
    if not spec.searches_eps:  # ε does nothing for this optimizer: search α alone
        dists.pop(names[1])
    return dists


def make_tuner(spec: StudySpec, seed: int) -> optuna.samplers.BaseSampler:
    """The study's sampler with `seed`; ValueError (a message for the user) on a bad config."""
    config: dict[str, Any] = dict(spec.tuner.config)
    shape = spec.space.grid_shape
    if spec.tuner.name in ("gld", "cgld") and (shape is None or not spec.searches_eps):
        config.setdefault("search_space", distributions(spec))
    try:
        return make_sampler(
            spec.tuner.name,
            seed=seed,
            grid_shape=shape,
            parallelism=spec.tuner.parallelism,
            **config,
        )
    except (TypeError, ValueError) as error:
        raise ValueError(f"bad config for tuner {spec.tuner.name!r}: {error}") from None


def in_flight(spec: StudySpec | dict[str, Any], seed: int) -> InFlightLimit:
    """The study's limit on unfinished proposals (none for the grid tuner: all are queued)."""
    spec = StudySpec.model_validate(spec)
    if spec.tuner.name == "grid":
        return InFlightLimit(None)
    domain = Domain.from_distributions(distributions(spec))
    return in_flight_limit(make_tuner(spec, seed), domain, spec.tuner.parallelism)


def ask_cap(spec: StudySpec) -> int:
    """Asks after which the tuner counts as having stopped proposing new points."""
    return ASK_CAP_FACTOR * (spec.points or spec.budget or 1)


def _seed(study_seed: int, n_trials: int) -> int:
    return (study_seed * 1_000_003 + n_trials * 7_919) % (2**31 - 1)


@dataclass
class _Known:
    trial_id: int
    state: str
    value: float | None
    test_value: float | None
    diverged: bool


def _point_key(spec: StudySpec, params: dict[str, Any]) -> tuple[Any, ...]:
    alpha, eps, i, j = spec.space.point(params)
    return (i, j) if spec.space.is_grid else (alpha, eps)


@dataclass
class AskOutcome:
    """What one round of asks produced."""

    fresh: list[int]
    asks: int
    exhausted: bool


def ask(conn: Connection, study: Any, n: int, now: datetime) -> AskOutcome:
    """Ask the tuner of `study` (a locked studies row) for up to `n` points needing training,
    within its in-flight limit.

    Inserts the new trials (queued trainings, repeats, waiting repeats) and returns the
    queued ones' ids.
    """
    spec = StudySpec.model_validate(study.spec)
    rows = conn.execute(
        select(
            Trial.id,
            Trial.state,
            Trial.params,
            Trial.tuner_attrs,
            Trial.value,
            Trial.test_value,
            Trial.diverged,
            Trial.source_trial_id,
        )
        .where(Trial.study_id == study.id)
        .order_by(Trial.number)
    ).all()
    dists = distributions(spec)
    sampler = make_tuner(spec, _seed(study.seed, len(rows)))
    tuner = optuna.create_study(direction="minimize", sampler=sampler)
    known: dict[tuple[Any, ...], _Known] = {}
    for row in rows:
        state = _OPTUNA_STATE[TrialState(row.state)]
        tuner.add_trial(
            create_trial(
                state=state,
                params=row.params,
                distributions=dists,
                value=row.value if state == OptunaState.COMPLETE else None,
                system_attrs=row.tuner_attrs or {},
            )
        )
        if row.source_trial_id is None:
            known[_point_key(spec, row.params)] = _Known(
                row.id, row.state, row.value, row.test_value, row.diverged
            )
    number = len(rows)
    budget_left = study.budget - study.n_trained
    want = min(n, budget_left)
    cap = ask_cap(spec)
    limit = in_flight_limit(sampler, Domain.from_distributions(dists), spec.tuner.parallelism)
    flying = sum(row.state in PENDING_STATES for row in rows)
    last_attrs = rows[-1].tuner_attrs if rows else None
    fresh: list[int] = []
    asks = 0
    while (
        len(fresh) < want
        and asks < ASKS_PER_CALL
        and study.n_asks + asks < cap
        and limit.allows(flying, iteration_end(last_attrs))
    ):
        trial = tuner.ask(dists)
        asks += 1
        attrs = last_attrs = tuner._storage.get_trial(trial._trial_id).system_attrs
        params = {name: _plain(trial.params[name]) for name in dists}
        alpha, eps, i, j = spec.space.point(params)
        key = _point_key(spec, params)
        base = dict(
            study_id=study.id,
            number=number,
            alpha=alpha,
            eps=eps,
            i_alpha=i,
            j_eps=j,
            params=params,
            tuner_attrs=_jsonable(attrs),
            batch_key=study.batch_key,
            created_at=now,
            attempts=0,
            diverged=False,
        )
        number += 1
        original = known.get(key)
        if original is not None and original.state in PENDING_STATES:
            original = known[key] = _recheck(conn, original)  # it may have finished meanwhile
        if original is not None and original.state in VALUED_STATES:
            base["diverged"] = original.diverged
            seeds = conn.execute(_SEEDS, {"tid": original.trial_id}).one()._asdict()
            conn.execute(
                insert(Trial).values(
                    **base,
                    **seeds,
                    state=original.state,
                    value=original.value,
                    test_value=original.test_value,
                    source_trial_id=original.trial_id,
                    finished_at=now,
                )
            )
            tuner.tell(trial, original.value)
        elif original is not None and original.state in PENDING_STATES:
            conn.execute(
                insert(Trial).values(
                    **base, state=TrialState.waiting, source_trial_id=original.trial_id
                )
            )
            flying += 1
        else:
            training = study.n_trained + len(fresh)
            new_id = conn.execute(
                insert(Trial)
                .values(**base, state=TrialState.queued, training=training)
                .returning(Trial.id)
            ).scalar_one()
            known[key] = _Known(new_id, TrialState.queued, None, None, False)
            fresh.append(new_id)
            flying += 1
    exhausted = not fresh and study.n_asks + asks >= cap
    conn.execute(
        update(Study)
        .where(Study.id == study.id)
        .values(
            n_asks=Study.n_asks + asks,
            n_trained=Study.n_trained + len(fresh),
            updated_at=now,
            stop_reason=STOPPED if exhausted else Study.stop_reason,
        )
    )
    return AskOutcome(fresh, asks, exhausted)


_SEEDS = select(*(Trial.__table__.c[name] for name in SEED_COLUMNS)).where(
    Trial.id == bindparam("tid")
)
_RECHECK = select(Trial.state, Trial.value, Trial.test_value, Trial.diverged).where(
    Trial.id == bindparam("tid")
)


def _recheck(conn: Connection, known: _Known) -> _Known:
    """The original's current state, its row locked: a result committing concurrently then
    either shows here, or its mirroring of waiting trials runs after this transaction."""
    query = _RECHECK.with_for_update() if conn.dialect.name == "postgresql" else _RECHECK
    row = conn.execute(query, {"tid": known.trial_id}).one()
    return _Known(known.trial_id, row.state, row.value, row.test_value, row.diverged)


def _plain(value: Any) -> Any:
    if isinstance(value, float):
        return value
    return int(value) if isinstance(value, int) else value


def _jsonable(value: Any) -> Any:
    """System attrs as JSON: non-finite floats become None (they never steer a sampler)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value
