"""`GLDSampler` and `CoordinateGLDSampler`: gradientless descent as Optuna samplers.

State persistence: every trial GLD proposes carries the system attr ``avatune:gld`` =
``{"it": iteration, "point": search coordinates, "state": PlanState, "domain": signature}``
— the planner's state right after proposing it, seed included, and the domain it is in.
On each ask the sampler rebuilds its history from the study's trials and continues from
the newest state of the current domain, so it is a deterministic function of (seed, trial
history) and a restarted server (or a new sampler object with any seed) continues the
same run. A domain without a state yet (the first ask, or a search space that changed)
starts a run. Several asks before any tell are fine: an iteration's candidates are handed
out in turn, then the next iteration begins from the best point completed so far. Asks
are serialised per process by a lock; callers that ask from several processes must
serialise them too. The sampler pickles (the lock is recreated).

History comes from what was evaluated: a completed trial's value is credited to its
``trial.params`` mapped into the current domain, whoever proposed it (GLD, an enqueued or
partially fixed trial, another sampler). A trial whose params do not lie in the domain (a
param missing, out of range) credits nothing; if GLD proposed it, it still counts as
that proposal of its iteration, at the proposed point.

The search space is ``search_space`` when given; else, as for Optuna's CmaEsSampler, the
intersection of the completed trials' distributions, less categorical and single-value
ones, so it follows the study (until a trial completes, every param is sampled
independently). Int and float params are searched together (studies.tuners.domain);
anything GLD cannot search goes to the independent sampler (RandomSampler by default).
Single-objective only: a multi-objective study gets a ValueError at its first suggest.
The seed starts runs; after `reseed_rng` new runs take their seed from GLD's own RNG.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.samplers._lazy_random_state import LazyRandomState  # what Optuna's tests look for
from optuna.search_space import intersection_search_space
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from studies.tuners.domain import Domain, Numeric, Point, searchable
from studies.tuners.gld_plan import GLDConfig, PlanState, next_point
from studies.tuners.history import MemoryHistory

if TYPE_CHECKING:
    from optuna.study import Study

STATE_ATTR = "avatune:gld"


class GLDSampler(BaseSampler):
    """Gradientless descent (Golovin et al. 2020, GLD-Search) on an index grid or a box."""

    coordinate = False

    def __init__(
        self,
        *,
        seed: int | None = None,
        search_space: Mapping[str, BaseDistribution] | None = None,
        radius: float | None = None,
        min_radius: float | None = None,
        resolution: float = 0.05,
        patience: int | None = None,
        independent_sampler: BaseSampler | None = None,
    ) -> None:
        self._seed = seed
        self._search_space = dict(search_space) if search_space else None
        self.config = GLDConfig(self.coordinate, radius, min_radius, resolution, patience)
        self._rng = LazyRandomState(seed)
        self._independent_sampler = independent_sampler or RandomSampler(seed=seed)
        self._lock = threading.Lock()
        if self._search_space is not None:
            Domain.from_distributions(self._search_space)  # fail early on a bad space

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    @property
    def search_space(self) -> dict[str, BaseDistribution] | None:
        """The space given at construction, if any."""
        return None if self._search_space is None else dict(self._search_space)

    def run_seed(self) -> int:
        """The seed a new run starts from: the given one, else one from GLD's own RNG."""
        if self._seed is not None:
            return self._seed
        return int(self._rng.rng.randint(0, 2**63 - 1, dtype="int64"))

    def propose(
        self, domain: Domain, state: PlanState | None, history: MemoryHistory
    ) -> tuple[Point, PlanState]:
        """The next point and the state after it: the one proposal step both paths run."""
        seed = self.run_seed() if state is None else state.seed
        return next_point(domain, self.config, state, history, seed)

    def reseed_rng(self) -> None:
        """Fresh randomness: new runs no longer start from the given seed."""
        self._seed = None
        self._rng.rng.seed()
        self._independent_sampler.reseed_rng()

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        _single_objective(self, study)
        if self._search_space is not None:
            return dict(self._search_space)
        space = intersection_search_space(study.get_trials(deepcopy=False))
        return {name: d for name, d in space.items() if searchable(d)}

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        _single_objective(self, study)
        ours = {name: d for name, d in search_space.items() if isinstance(d, Numeric)}
        params: dict[str, Any] = {}
        if ours:
            domain = Domain.from_distributions(ours)
            with self._lock:
                history, state = self.load(study, domain, exclude=trial.number)
                point, state = self.propose(domain, state, history)
                record = {
                    "it": state.it,
                    "point": list(point),
                    "state": state.to_dict(),
                    "domain": domain.signature,
                }
                study._storage.set_trial_system_attr(trial._trial_id, STATE_ATTR, record)
            params = domain.to_params(point)
        for name, d in search_space.items():
            if name not in params:
                params[name] = self._independent_sampler.sample_independent(study, trial, name, d)
        return params

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        _single_objective(self, study)
        return self._independent_sampler.sample_independent(
            study, trial, param_name, param_distribution
        )

    @staticmethod
    def load(
        study: Study, domain: Domain, exclude: int | None = None
    ) -> tuple[MemoryHistory, PlanState | None]:
        """GLD's history in `domain` and its newest state there, rebuilt from the trials."""
        sign = -1.0 if study.direction == StudyDirection.MAXIMIZE else 1.0
        history = MemoryHistory()
        state: PlanState | None = None
        for past in study.get_trials(deepcopy=False):
            if past.number == exclude:
                continue
            record = past.system_attrs.get(STATE_ATTR)
            evaluated = domain.from_params(past.params)
            if record is not None and record.get("domain", domain.signature) == domain.signature:
                point = evaluated if evaluated is not None else _point(domain, record["point"])
                index = history.propose(point, record["it"])
                state = PlanState.from_dict(record["state"])
            elif evaluated is not None:
                index = history.propose(evaluated)
            else:
                continue
            value = past.value if past.state == TrialState.COMPLETE else None
            if evaluated is not None and value is not None and math.isfinite(value):
                history.complete(index, sign * value)
        return history, state


class CoordinateGLDSampler(GLDSampler):
    """Coordinate GLD (paper §7): GLD moving one axis per iteration, alternating α and ε."""

    coordinate = True


def _single_objective(sampler: BaseSampler, study: Study) -> None:
    if len(study.directions) > 1:
        raise ValueError(
            f"{type(sampler).__name__} supports single-objective studies only; this study "
            f"has {len(study.directions)} objectives (use e.g. optuna's NSGAIISampler)"
        )


def _point(domain: Domain, values: list[float]) -> Point:
    if domain.discrete:
        return tuple(int(v) for v in values)
    return tuple(float(v) for v in values)
