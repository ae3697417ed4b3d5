"""A study's tuner as a pure policy: the history records in, the next proposals out.

In the shape of OSS Vizier's ``Policy.suggest`` (and like `studies.tuners.gld_plan`):
`propose` rebuilds an in-memory Optuna study from the study's trials as stored (params,
states, values and the samplers' system attrs, where GLD and CMA-ES keep their state),
recreates the sampler from the study's seed and the number of trials so far, and asks it
within the tuner's in-flight limit. It touches no database: the server reads the records
and writes the proposals (`service.tuning`), so a restarted server, or a second API
process, continues the same run.

A proposal of a point the study already evaluated is a `copy` of the stored result (no
training); one of a point still being trained is a `wait` for the original's result; only
new points are `train` proposals.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState as OptunaState
from optuna.trial import create_trial

from studies.specs import StudySpec
from studies.tuners import make_sampler
from studies.tuners.domain import Domain
from studies.tuners.inflight import in_flight_limit, iteration_end

optuna.logging.set_verbosity(optuna.logging.WARNING)
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)

#: A tuner that has asked this many times the grid size (or budget) without finishing its
#: budget has stopped proposing new points (ALGORITHMS.md: censored).
ASK_CAP_FACTOR = 20
#: Asks per call before giving up for now (duplicates do not train).
ASKS_PER_CALL = 200


class Status(StrEnum):
    """A stored trial as the tuner sees it: it has a value, is unfinished, or has none."""

    valued = "valued"
    pending = "pending"
    failed = "failed"


_OPTUNA_STATE = {
    Status.valued: OptunaState.COMPLETE,
    Status.pending: OptunaState.RUNNING,
    Status.failed: OptunaState.FAIL,
}


@dataclass(frozen=True)
class Record:
    """One stored trial of the study, in proposal order (`id` is the store's)."""

    id: int
    status: Status
    params: dict[str, Any]
    value: float | None = None
    attrs: dict[str, Any] | None = None
    repeat: bool = False


class Kind(StrEnum):
    """What a proposal asks for: a training, a copy of a stored result, or a wait for one."""

    train = "train"
    copy = "copy"
    wait = "wait"


@dataclass(frozen=True)
class Proposal:
    """One asked point; a copy or wait names its original (stored, or earlier this call)."""

    params: dict[str, Any]
    alpha: float
    eps: float
    i_alpha: int | None
    j_eps: int | None
    attrs: dict[str, Any]
    kind: Kind
    source_id: int | None = None
    source_index: int | None = None


@dataclass(frozen=True)
class Ask:
    """Up to `n` trainings within `budget_left`, and at most `asks_left` asks (the cap's rest)."""

    n: int
    budget_left: int
    asks_left: int


@dataclass
class Proposals:
    """The proposals of one call, in order (every ask makes one)."""

    items: list[Proposal] = field(default_factory=list)

    @property
    def asks(self) -> int:
        """Asks made."""
        return len(self.items)

    @property
    def trainings(self) -> int:
        """New points to train."""
        return sum(p.kind == Kind.train for p in self.items)


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


def ask_cap(spec: StudySpec) -> int:
    """Asks after which the tuner counts as having stopped proposing new points."""
    return ASK_CAP_FACTOR * (spec.points or spec.budget or 1)


def sampler_seed(study_seed: int, n_trials: int) -> int:
    """The sampler's seed for an ask after `n_trials` stored trials of a study."""
    return (study_seed * 1_000_003 + n_trials * 7_919) % (2**31 - 1)


def point_key(spec: StudySpec, params: dict[str, Any]) -> tuple[Any, ...]:
    """What makes two proposals the same point: grid indices, or (α, ε)."""
    alpha, eps, i, j = spec.space.point(params)
    return (i, j) if spec.space.is_grid else (alpha, eps)


def propose(
    spec: StudySpec,
    study_seed: int,
    records: Sequence[Record],
    ask: Ask,
    *,
    max_asks: int = ASKS_PER_CALL,
) -> Proposals:
    """The study's next proposals after `records`, within its in-flight limit and `ask`."""
    dists = distributions(spec)
    sampler = make_tuner(spec, sampler_seed(study_seed, len(records)))
    tuner = optuna.create_study(direction="minimize", sampler=sampler)
    known: dict[tuple[Any, ...], tuple[Status, float | None, int]] = {}
    for record in records:
        state = _OPTUNA_STATE[record.status]
        tuner.add_trial(
            create_trial(
                state=state,
                params=record.params,
                distributions=dists,
                value=record.value if state == OptunaState.COMPLETE else None,
                system_attrs=record.attrs or {},
            )
        )
        if not record.repeat:
            known[point_key(spec, record.params)] = (record.status, record.value, record.id)
    want = min(ask.n, ask.budget_left)
    limit = in_flight_limit(sampler, Domain.from_distributions(dists), spec.tuner.parallelism)
    flying = sum(r.status == Status.pending for r in records)
    last_attrs = records[-1].attrs if records else None
    out = Proposals()
    batch: dict[tuple[Any, ...], int] = {}  # points of this call's trainings: their index
    trainings = 0
    while (
        trainings < want
        and out.asks < max_asks
        and out.asks < ask.asks_left
        and limit.allows(flying, iteration_end(last_attrs))
    ):
        trial = tuner.ask(dists)
        attrs = last_attrs = tuner._storage.get_trial(trial._trial_id).system_attrs
        params = {name: _plain(trial.params[name]) for name in dists}
        alpha, eps, i, j = spec.space.point(params)
        key = point_key(spec, params)
        where = dict(params=params, alpha=alpha, eps=eps, i_alpha=i, j_eps=j)
        where["attrs"] = _jsonable(attrs)
        if key in batch:
            out.items.append(Proposal(**where, kind=Kind.wait, source_index=batch[key]))
            flying += 1
            continue
        status, value, source = known.get(key, (Status.failed, None, None))
        if source is not None and status == Status.valued:
            out.items.append(Proposal(**where, kind=Kind.copy, source_id=source))
            tuner.tell(trial, value)
        elif source is not None and status == Status.pending:
            out.items.append(Proposal(**where, kind=Kind.wait, source_id=source))
            flying += 1
        else:
            batch[key] = len(out.items)
            out.items.append(Proposal(**where, kind=Kind.train))
            trainings += 1
            flying += 1
    return out


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
