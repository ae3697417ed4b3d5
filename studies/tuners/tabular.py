"""One tuner run on a complete grid table, until δ-success (ALGORITHMS.md "Tuning cost").

The cost is the number of distinct grid points evaluated; asking again for a known point
is free. A run is censored when the tuner stops proposing new points: no new point in
``stall_asks`` consecutive asks (grid size by default; **choice**, so that a converged
CMA-ES is not simulated for thousands of asks), or ``max_asks`` asks in all (20 × grid
size, ALGORITHMS.md). A sampler that raises (CMA-ES can overflow on a plateau) ends its
run censored, with the error recorded. The samplers that run are the ones `make_sampler` builds:

- GLD / CGLD: the sampler's own `propose` step with an in-memory history — the very code
  `sample_relative` runs inside a study, minus rebuilding the history from trials;
- grid / random: the sampler's `before_trial` and `sample_independent`, called as a study
  calls them, on a minimal in-memory stand-in for the study and trial;
- TPE / CMA-ES: a real Optuna study (in-memory storage), ask and tell.

Feedback follows the tuner's in-flight limit (studies.tuners.inflight), as a live study
with one worker sees it: proposals are asked until the limit (or GLD's iteration barrier)
stops them, then trained together and told in ask order. A repeat of a known point is
answered at once; a repeat of one in flight waits for it (and counts as in flight).
Tuners without a limit never read results, so they run one proposal at a time.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import count
from typing import Any, Generic, TypeVar

import numpy as np
import optuna

from studies.tuners import GRID_PARAMS, GLDSampler, grid_distributions, make_sampler
from studies.tuners.domain import Domain
from studies.tuners.history import MemoryHistory
from studies.tuners.inflight import InFlightLimit, in_flight_limit

Handle = TypeVar("Handle")

MAX_ASKS_FACTOR = 20


@dataclass
class TabularRun:
    """One run: cost (distinct evaluations), censoring, restarts, asks, best-so-far trace."""

    cost: int
    censored: bool
    restarts: int
    asks: int
    trace: list[float]
    error: str | None = None


@dataclass
class _Evaluator:
    values: list[list[float]]
    target: float
    max_asks: int
    stall_asks: int
    asks: int = 0
    last_new: int = 0
    best: float = float("inf")
    trace: list[float] = field(default_factory=list)
    seen: set[tuple[int, int]] = field(default_factory=set)

    def __call__(self, point: tuple[int, int]) -> float:
        self.asks += 1
        value = self.values[point[0]][point[1]]
        if point not in self.seen:
            self.seen.add(point)
            self.last_new = self.asks
            self.best = min(self.best, value)
            self.trace.append(self.best)
        return value

    @property
    def success(self) -> bool:
        return self.best <= self.target

    @property
    def done(self) -> bool:
        return (
            self.success
            or self.asks >= self.max_asks
            or self.asks - self.last_new >= self.stall_asks
        )


def run_tabular(
    tuner: str,
    values: np.ndarray,
    *,
    seed: int,
    target: float,
    max_asks: int | None = None,
    stall_asks: int | None = None,
    parallelism: int | None = None,
    **config: Any,
) -> TabularRun:
    """Run `tuner` (seeded) on the value table until best ≤ target, or censor it;
    `parallelism` overrides the tuner's limit on proposals in flight."""
    table = np.asarray(values, dtype=float)
    if table.ndim != 2:
        raise ValueError("a grid table must be 2-D (alphas × epsilons)")
    shape = (int(table.shape[0]), int(table.shape[1]))
    limit = max_asks if max_asks is not None else MAX_ASKS_FACTOR * table.size
    stall = stall_asks if stall_asks else table.size
    evaluate = _Evaluator(table.tolist(), target, limit, stall)
    sampler = make_sampler(tuner, seed=seed, grid_shape=shape, parallelism=parallelism, **config)
    distributions = grid_distributions(shape)
    limit = in_flight_limit(sampler, Domain.from_distributions(distributions), parallelism)
    restarts = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if isinstance(sampler, GLDSampler):
            restarts = _drive_gld(sampler, evaluate, limit)
        elif isinstance(sampler, optuna.samplers.GridSampler | optuna.samplers.RandomSampler):
            _drive_independent(sampler, shape, evaluate)
        else:
            _drive_study(sampler, shape, evaluate, limit)
    return TabularRun(
        len(evaluate.trace), not evaluate.success, restarts, evaluate.asks, evaluate.trace
    )


@dataclass
class _Batches(Generic[Handle]):
    """Proposals in flight under a limit: asked until it binds, then trained together."""

    evaluate: _Evaluator
    limit: InFlightLimit
    tell: Callable[[Handle, float], None]
    pending: list[tuple[Handle, tuple[int, int]]] = field(default_factory=list)

    def room(self, iteration_end: bool = False) -> bool:
        """Whether another proposal may be asked for now (else `flush` first)."""
        if self.limit.limit is None:  # no limit: the tuner reads no result, so go one by one
            return not self.pending
        return self.limit.allows(len(self.pending), iteration_end)

    def add(self, handle: Handle, point: tuple[int, int]) -> None:
        """A new proposal: answered at once when known, else in flight."""
        if point in self.evaluate.seen:
            self.tell(handle, self.evaluate(point))
        else:
            self.pending.append((handle, point))

    def flush(self) -> None:
        """Train everything in flight, telling results in ask order (until the run ends)."""
        pending, self.pending = self.pending, []
        for handle, point in pending:
            if self.evaluate.done:
                return
            self.tell(handle, self.evaluate(point))


def _drive_gld(sampler: GLDSampler, evaluate: _Evaluator, limit: InFlightLimit) -> int:
    space = sampler.search_space
    assert space is not None
    domain = Domain.from_distributions(space)
    history = MemoryHistory()
    batches: _Batches[int] = _Batches(evaluate, limit, history.complete)
    state = None
    while not evaluate.done:
        if not batches.room(state is not None and state.handed >= len(state.candidates)):
            batches.flush()
            continue
        point, state = sampler.propose(domain, state, history)
        batches.add(history.propose(point, state.it), (int(point[0]), int(point[1])))
    return 0 if state is None else state.restarts


class _StandInStorage:
    def __init__(self, trial: _StandInTrial) -> None:
        self.trial = trial

    def set_trial_system_attr(self, trial_id: int, key: str, value: Any) -> None:
        self.trial.system_attrs[key] = value


@dataclass
class _StandInTrial:
    number: int
    _trial_id: int
    system_attrs: dict[str, Any] = field(default_factory=dict)


@dataclass
class _StandInStudy:
    _storage: _StandInStorage
    _study_id: int = 0


def _drive_independent(
    sampler: optuna.samplers.BaseSampler, shape: tuple[int, int], evaluate: _Evaluator
) -> None:
    distributions = grid_distributions(shape)
    for number in count():
        if evaluate.done:
            return
        if isinstance(sampler, optuna.samplers.GridSampler) and number >= shape[0] * shape[1]:
            raise RuntimeError("the grid sampler ran past its grid")  # cannot: all distinct
        trial = _StandInTrial(number, number)
        study: Any = _StandInStudy(_StandInStorage(trial))
        sampler.before_trial(study, trial)  # type: ignore[arg-type]
        params = {
            name: sampler.sample_independent(study, trial, name, dist)  # type: ignore[arg-type]
            for name, dist in distributions.items()
        }
        evaluate((int(params[GRID_PARAMS[0]]), int(params[GRID_PARAMS[1]])))


def _drive_study(
    sampler: optuna.samplers.BaseSampler,
    shape: tuple[int, int],
    evaluate: _Evaluator,
    limit: InFlightLimit,
) -> None:
    optuna.logging.set_verbosity(logging.WARNING)
    study = optuna.create_study(sampler=sampler)
    distributions = grid_distributions(shape)
    batches: _Batches[optuna.trial.Trial] = _Batches(evaluate, limit, study.tell)
    while not evaluate.done:
        if not batches.room():
            batches.flush()
            continue
        trial = study.ask(distributions)
        batches.add(trial, (int(trial.params[GRID_PARAMS[0]]), int(trial.params[GRID_PARAMS[1]])))
