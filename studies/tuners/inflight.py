"""How many of a study's proposals a tuner may have unfinished: feedback by design.

A tuner asked for its whole budget before any result returns is random search. Each
tuner therefore declares a limit on proposals in flight (queued, training, or waiting on
an identical proposal), which the server applies to live studies and the replay
simulates, so both measure the same tuner:

- GLD / CGLD: one iteration's candidates (K + 1), and no new iteration while any
  candidate of the current one is unfinished (its x ← argmin needs them all);
- TPE: 1 by default, with Optuna's constant liar when raised;
- CMA-ES: its population (4 + ⌊3 ln d⌋ unless configured);
- random and grid: unlimited (they never read a result).

A study's ``tuner.parallelism`` lowers or raises the limit (as Katib's parallelTrialCount
and Vizier's suggestion count do); for GLD the iteration barrier still holds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from optuna.samplers import BaseSampler, CmaEsSampler, TPESampler

from studies.tuners.domain import Domain
from studies.tuners.gld import STATE_ATTR, GLDSampler


@dataclass(frozen=True)
class InFlightLimit:
    """The most unfinished proposals (None: no limit), and GLD's iteration barrier."""

    limit: int | None
    iteration_barrier: bool = False

    def allows(self, in_flight: int, iteration_end: bool) -> bool:
        """Whether one more proposal may be asked for, with `in_flight` unfinished now;
        `iteration_end`: the newest proposal was the last of its GLD iteration."""
        if self.limit is not None and in_flight >= self.limit:
            return False
        return not (self.iteration_barrier and in_flight > 0 and iteration_end)


def iteration_end(attrs: Mapping[str, Any] | None) -> bool:
    """Whether the proposal with these (stored) tuner attrs handed out its GLD iteration's
    last candidate, so that the next proposal begins a new iteration."""
    record = (attrs or {}).get(STATE_ATTR)
    if not record:
        return False
    state = record["state"]
    return int(state["handed"]) >= len(state["candidates"])


def cmaes_population(dim: int) -> int:
    """CMA-ES's default population for `dim` parameters (Hansen's 4 + ⌊3 ln d⌋)."""
    return 4 + math.floor(3 * math.log(max(dim, 1)))


def default_limit(sampler: BaseSampler, domain: Domain) -> int | None:
    """The tuner's own limit on proposals in flight over `domain`."""
    if isinstance(sampler, GLDSampler):
        return len(sampler.config.radii(domain))
    if isinstance(sampler, CmaEsSampler):
        popsize = getattr(sampler, "_popsize", None)
        return int(popsize) if popsize else cmaes_population(domain.dim)
    if isinstance(sampler, TPESampler):
        return 1
    return None


def in_flight_limit(
    sampler: BaseSampler, domain: Domain, parallelism: int | None = None
) -> InFlightLimit:
    """The limit a study applies: `parallelism` when given, else the tuner's default."""
    limit = parallelism if parallelism is not None else default_limit(sampler, domain)
    return InFlightLimit(limit, iteration_barrier=isinstance(sampler, GLDSampler))
