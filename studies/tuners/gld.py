"""`GLDSampler` and `CoordinateGLDSampler`: gradientless descent as Optuna samplers.

State persistence: every trial GLD proposes carries the system attr ``avatune:gld`` =
``{"it": iteration, "point": search coordinates, "state": PlanState}`` — the planner's state
right after proposing it, seed included. On each ask the sampler rebuilds its history from
the study's trials (values of completed trials, points of all trials) and continues from
the newest trial's state, so it is a deterministic function of (seed, trial history) and a
restarted server (or a new sampler object with any seed) continues the same run.
Several asks before any tell are fine: an iteration's candidates are handed out in turn,
then the next iteration begins from the best point completed so far. Asks are serialised
per process by a lock; callers that ask from several processes must serialise them too.

The search space comes from ``search_space`` or, when not given, from the distributions of
the study's earlier trials; the very first trial of a study without one is sampled
uniformly at random (its value still counts) and GLD starts at the next ask.
"""

from __future__ import annotations

import math
import random
import threading
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from optuna.distributions import BaseDistribution, FloatDistribution, IntDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from studies.tuners.domain import Domain, Point
from studies.tuners.gld_plan import GLDConfig, PlanState, next_point
from studies.tuners.history import MemoryHistory

if TYPE_CHECKING:
    from optuna.study import Study

STATE_ATTR = "avatune:gld"


class GLDSampler(BaseSampler):
    """Gradientless descent (Golovin et al. 2020, GLD-Search) in index or log10 space."""

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
    ) -> None:
        self._seed = seed
        self._search_space = dict(search_space) if search_space else None
        self.config = GLDConfig(self.coordinate, radius, min_radius, resolution, patience)
        self._random = RandomSampler(seed=seed)
        self._lock = threading.Lock()
        if self._search_space is not None:
            Domain.from_distributions(self._search_space)  # fail early on a bad space

    @property
    def search_space(self) -> dict[str, BaseDistribution] | None:
        """The space given at construction, if any."""
        return None if self._search_space is None else dict(self._search_space)

    def run_seed(self) -> int:
        """The seed a new run starts from: the given one, or a fresh random one."""
        return self._seed if self._seed is not None else random.SystemRandom().getrandbits(63)

    def propose(
        self, domain: Domain, state: PlanState | None, history: MemoryHistory
    ) -> tuple[Point, PlanState]:
        """The next point and the state after it: the one proposal step both paths run."""
        seed = self.run_seed() if state is None else state.seed
        return next_point(domain, self.config, state, history, seed)

    def reseed_rng(self) -> None:
        self._random.reseed_rng()

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        if self._search_space is not None:
            return dict(self._search_space)
        for past in study._storage.get_all_trials(study._study_id, deepcopy=False):
            if past.number != trial.number and past.distributions:
                space = {
                    name: d
                    for name, d in past.distributions.items()
                    if isinstance(d, IntDistribution | FloatDistribution)
                }
                try:
                    Domain.from_distributions(space)
                except ValueError:
                    warnings.warn(
                        f"GLD cannot search {sorted(space)} (mixed int and float); "
                        "pass search_space. Sampling at random.",
                        stacklevel=2,
                    )
                    return {}
                return space
        return {}

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        if not search_space:
            return {}
        domain = Domain.from_distributions(search_space)
        with self._lock:
            history, state = self.load(study, domain, exclude=trial.number)
            point, state = self.propose(domain, state, history)
            record = {"it": state.it, "point": list(point), "state": state.to_dict()}
            study._storage.set_trial_system_attr(trial._trial_id, STATE_ATTR, record)
        return domain.to_params(point)

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        return self._random.sample_independent(study, trial, param_name, param_distribution)

    @staticmethod
    def load(
        study: Study, domain: Domain, exclude: int | None = None
    ) -> tuple[MemoryHistory, PlanState | None]:
        """GLD's history and newest state, rebuilt from the study's trials."""
        sign = -1.0 if study.direction == StudyDirection.MAXIMIZE else 1.0
        history = MemoryHistory()
        state: PlanState | None = None
        trials = study._storage.get_all_trials(study._study_id, deepcopy=False)
        for past in sorted(trials, key=lambda t: t.number):
            if past.number == exclude:
                continue
            record = past.system_attrs.get(STATE_ATTR)
            if record is not None:
                point = _point(domain, record["point"])
                index = history.propose(point, record["it"])
                state = PlanState.from_dict(record["state"])
            else:
                found = domain.from_params(past.params)
                if found is None:
                    continue
                index = history.propose(found)
            value = past.value if past.state == TrialState.COMPLETE else None
            if value is not None and math.isfinite(value):
                history.complete(index, sign * value)
        return history, state


class CoordinateGLDSampler(GLDSampler):
    """Coordinate GLD (paper §7): GLD moving one axis per iteration, alternating α and ε."""

    coordinate = True


def _point(domain: Domain, values: list[float]) -> Point:
    if domain.discrete:
        return tuple(int(v) for v in values)
    return tuple(float(v) for v in values)
